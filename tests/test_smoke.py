from support import JSON_HEADERS


def test_create_and_follow(client, admin):
    response = client.post(
        "/api/v1.0/links", json={"target": "https://example.com/", "slug": "ex"}, auth=admin
    )
    assert response.status_code == 201
    assert client.get("/ex").headers["Location"] == "https://example.com/"
    assert JSON_HEADERS
