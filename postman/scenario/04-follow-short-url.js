// Sent without credentials and not followed: what a browser receives.
pm.test("302 to the target", () => {
    pm.response.to.have.status(302);
    pm.expect(pm.response.headers.get("Location")).to.equal(pm.collectionVariables.get("target"));
});
