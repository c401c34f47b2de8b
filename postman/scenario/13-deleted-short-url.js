pm.test("404: the short URL no longer redirects", () => {
    pm.response.to.have.status(404);
    pm.response.to.not.have.header("Location");
});
