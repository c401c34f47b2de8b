pm.test("200 with an ETag", () => {
    pm.response.to.have.status(200);
    pm.response.to.have.header("ETag");
});
const link = pm.response.json();
pm.test("the link is the one created", () => {
    pm.expect(link.uri).to.equal(pm.collectionVariables.get("linkUri"));
    pm.expect(link.target).to.equal(pm.collectionVariables.get("target"));
    pm.expect(link.title).to.equal("Made by Postman");
});
pm.collectionVariables.set("linkEtag", pm.response.headers.get("ETag"));
