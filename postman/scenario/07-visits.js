// Visits are written in batches, so the one of the short URL may not be here yet.
pm.test("200 with a page of the link's visits", () => {
    pm.response.to.have.status(200);
    const page = pm.response.json();
    pm.expect(page.uri).to.equal(pm.collectionVariables.get("visitsUri"));
    pm.expect(page.visits).to.be.an("array");
    pm.expect(page).to.have.property("next");
    for (const visit of page.visits) {
        pm.expect(visit.link).to.equal(pm.collectionVariables.get("linkUri"));
    }
});
