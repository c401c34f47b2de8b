pm.test("204 with no body", () => {
    pm.response.to.have.status(204);
    pm.expect(pm.response.text()).to.equal("");
});
