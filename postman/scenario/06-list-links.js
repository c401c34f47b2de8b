pm.test("200 with a page of links", () => {
    pm.response.to.have.status(200);
    const page = pm.response.json();
    pm.expect(page.links).to.be.an("array");
    pm.expect(page).to.have.property("next");
});
pm.test("the changed link is in it (newest first)", () => {
    const uri = pm.collectionVariables.get("linkUri");
    const found = pm.response.json().links.find((link) => link.uri === uri);
    pm.expect(found, uri).to.be.an("object");
    pm.expect(found.title).to.equal("Changed by Postman");
});
