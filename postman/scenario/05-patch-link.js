pm.test("200 with the link changed", () => {
    pm.response.to.have.status(200);
    const link = pm.response.json();
    pm.expect(link.uri).to.equal(pm.collectionVariables.get("linkUri"));
    pm.expect(link.title).to.equal("Changed by Postman");
    pm.expect(link.target).to.equal(pm.collectionVariables.get("target"));
});
pm.test("a new ETag", () => {
    pm.response.to.have.header("ETag");
    pm.expect(pm.response.headers.get("ETag")).to.not.equal(pm.collectionVariables.get("linkEtag"));
});
pm.collectionVariables.set("linkEtag", pm.response.headers.get("ETag"));
pm.collectionVariables.set("historyUri", pm.response.json().history);
