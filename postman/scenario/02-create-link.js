pm.test("201 Created with Location", () => {
    pm.response.to.have.status(201);
    pm.response.to.have.header("Location");
});
const link = pm.response.json();
pm.test("the body is the link at Location", () => {
    pm.expect(link.uri).to.equal(pm.response.headers.get("Location"));
    pm.expect(link.target).to.equal("https://example.com/from-postman");
    pm.expect(link.title).to.equal("Made by Postman");
    pm.expect(link.slug).to.match(/^[A-Za-z0-9_-]+$/);
    pm.expect(link.visit_count).to.equal(0);
});
pm.test("links to its short URL, visits and stats", () => {
    for (const name of ["short_url", "visits", "stats", "owner"]) {
        pm.expect(link[name], name).to.match(/^https?:\/\//);
    }
});
pm.collectionVariables.set("linkUri", pm.response.headers.get("Location"));
pm.collectionVariables.set("shortUrl", link.short_url);
pm.collectionVariables.set("target", link.target);
pm.collectionVariables.set("visitsUri", link.visits);
pm.collectionVariables.set("statsUri", link.stats);
