// The root is the only URI the scenario knows; every other one comes from an answer.
pm.test("200 with JSON", () => {
    pm.response.to.have.status(200);
    pm.expect(pm.response.headers.get("Content-Type")).to.include("application/json");
});
const root = pm.response.json();
pm.test("links to the links collection and a link's URI template", () => {
    pm.expect(root.uri).to.equal(pm.request.url.toString());
    pm.expect(root.links).to.match(/^https?:\/\//);
    pm.expect(root.link).to.match(/^https?:\/\/.*\{slug\}/);
});
pm.test("knows who is asking", () => {
    pm.expect(root.me).to.match(/^https?:\/\//);
});
pm.collectionVariables.set("linksUri", root.links);
pm.collectionVariables.set("linkTemplate", root.link);
