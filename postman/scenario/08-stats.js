pm.test("200 with the link's counts", () => {
    pm.response.to.have.status(200);
    const stats = pm.response.json();
    pm.expect(stats.link).to.equal(pm.collectionVariables.get("linkUri"));
    pm.expect(stats.total).to.be.a("number");
    for (const name of ["series", "referrers", "browsers", "operating_systems"]) {
        pm.expect(stats[name], name).to.be.an("array");
    }
});
