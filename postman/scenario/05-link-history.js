pm.test("200 with the link's revisions, newest first", () => {
    pm.response.to.have.status(200);
    const page = pm.response.json();
    pm.expect(page.history).to.be.an("array").with.lengthOf(2);
    pm.expect(page.next).to.equal(null);
    const [changed, created] = page.history;
    pm.expect(changed.event).to.equal("link.updated");
    pm.expect(changed.changes.title).to.eql(["Made by Postman", "Changed by Postman"]);
    pm.expect(changed.via).to.equal("password");
    pm.expect(changed.by).to.be.a("string");
    pm.expect(created.event).to.equal("link.created");
    pm.expect(created.changes.target).to.eql([null, pm.collectionVariables.get("target")]);
});
