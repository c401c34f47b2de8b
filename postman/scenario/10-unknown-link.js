pm.test("404 as problem+json", () => {
    pm.response.to.have.status(404);
    pm.expect(pm.response.headers.get("Content-Type")).to.include("application/problem+json");
    pm.expect(pm.response.json().status).to.equal(404);
});
