pm.test("422 as problem+json", () => {
    pm.response.to.have.status(422);
    pm.expect(pm.response.headers.get("Content-Type")).to.include("application/problem+json");
    const problem = pm.response.json();
    pm.expect(problem.status).to.equal(422);
    pm.expect(problem.type).to.be.a("string");
    pm.expect(problem.title).to.be.a("string");
});
pm.test("a message for the target", () => {
    const errors = pm.response.json().errors;
    pm.expect(errors.target).to.be.an("array").that.is.not.empty;
});
