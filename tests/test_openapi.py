"""GET /api/v1.0/openapi.json: the contract, made from the operations' declarations."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from shortener.resources.openapi import path_of, served_operations

DOCUMENT = "/api/v1.0/openapi.json"
ERROR_STATUSES = {"400", "401", "403", "404", "405", "409", "412", "413", "415", "422", "428"}


@pytest.fixture
def document(client) -> dict:
    response = client.get(DOCUMENT)
    assert response.status_code == 200
    return response.get_json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, declared in item.items():
            yield path, method, declared


def test_the_document_is_public_openapi_3_1_and_valid(client, document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_root_links_to_it(client):
    assert client.get("/api/v1.0/").get_json()["openapi"] == f"http://localhost{DOCUMENT}"


def test_it_is_cached_with_an_etag(client):
    first = client.get(DOCUMENT)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get(DOCUMENT, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert client.get(DOCUMENT, headers={"If-None-Match": '"other"'}).status_code == 200


def test_every_served_route_is_documented_and_every_operation_is_served(app, document):
    served = {(path_of(rule), method.lower()) for rule, method, _ in served_operations(app)}
    documented = {(path, method) for path, method, _ in operations(document)}
    assert served == documented
    flask_paths = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"OPTIONS", "HEAD"}
    }
    assert flask_paths <= documented


def test_every_operation_has_an_id_a_summary_and_problem_answers(document):
    ids = set()
    for path, method, declared in operations(document):
        assert declared["operationId"] not in ids
        ids.add(declared["operationId"])
        assert declared["summary"]
        for status, answer in declared["responses"].items():
            if status in ERROR_STATUSES or status in ("429", "503"):
                name = answer["$ref"].rsplit("/", 1)[1]
                content = document["components"]["responses"][name]["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)


def test_authenticated_operations_name_both_schemes_and_their_scope(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
        "description": schemes["basicAuth"]["description"],
    }
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    create = document["paths"]["/api/v1.0/links"]["post"]
    assert create["security"] == [{"basicAuth": []}, {"bearerAuth": ["links:write"]}]
    assert {"401", "403", "422", "413", "415", "400", "409", "429", "503"} <= set(
        create["responses"]
    )
    assert document["paths"]["/api/v1.0/openapi.json"]["get"]["security"] == []
    assert {} in document["paths"]["/api/v1.0/"]["get"]["security"]


def test_parameters_carry_their_limits(document):
    listing = document["paths"]["/api/v1.0/links"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert limit["in"] == "query"
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 1000
    stats = document["paths"]["/api/v1.0/links/{slug}/stats"]["get"]
    interval = next(p for p in stats["parameters"] if p["name"] == "interval")
    assert set(interval["schema"]["enum"]) >= {"hour", "day"}
    since = next(p for p in stats["parameters"] if p["name"] == "since")
    assert since["schema"]["format"] == "date-time"
    slug = next(p for p in stats["parameters"] if p["name"] == "slug")
    assert slug["in"] == "path" and slug["required"] is True


def test_header_and_cursor_patterns_are_the_servers_rules(document):
    """schemathesis sent schema-valid keys and cursors the server refused: the document now
    says what the server takes (a pattern is ECMA-262, these ones read the same in Python)."""
    posting = document["paths"]["/api/v1.0/links"]["post"]
    key = next(p for p in posting["parameters"] if p["name"] == "Idempotency-Key")
    pattern = re.compile(key["schema"]["pattern"])
    assert all(pattern.fullmatch(k) for k in ("k", "a b", "k" * 255))
    assert not any(pattern.fullmatch(k) for k in ("", " k", "k ", "k" * 256, "caf\u00e9"))
    listing = document["paths"]["/api/v1.0/links"]["get"]
    cursor = next(p for p in listing["parameters"] if p["name"] == "cursor")
    assert not re.fullmatch(cursor["schema"]["pattern"], "")


def test_bodies_refuse_unknown_fields_and_mark_server_owned_ones(document):
    schemas = document["components"]["schemas"]
    link = schemas["Link"]
    assert link["additionalProperties"] is False
    assert link["required"] == ["target"]
    for name in ("uri", "short_url", "visit_count", "owner", "created_at", "updated_at"):
        assert link["properties"][name]["readOnly"] is True, name
    for name in ("uri", "short_url", "owner", "visits", "stats"):
        assert link["properties"][name]["format"] == "uri", name
    assert link["properties"]["redirect_status"]["enum"] == [301, 302, 303, 307, 308]
    assert schemas["User"]["properties"]["password"]["writeOnly"] is True
    patch = document["paths"]["/api/v1.0/links/{slug}"]["patch"]
    patched = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "required" not in schemas[patched.rsplit("/", 1)[1]]


def test_success_answers_document_their_headers(document):
    create = document["paths"]["/api/v1.0/links"]["post"]["responses"]["201"]
    assert create["headers"]["Location"]["required"] is True
    assert "RateLimit-Remaining" in create["headers"]
    listing = document["paths"]["/api/v1.0/links"]["get"]["responses"]["200"]
    assert "Link" in listing["headers"]
    follow = document["paths"]["/{slug}"]["get"]["responses"]
    assert {"301", "302", "303", "307", "308", "404"} <= set(follow)
    assert follow["302"]["headers"]["Location"]["required"] is True


def test_create_links_to_the_operations_on_what_it_created(document):
    links = document["paths"]["/api/v1.0/links"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "getLink",
        "updateLink",
        "replaceLink",
        "deleteLink",
        "listLinkHistory",
    }
    for link in links.values():
        assert link["parameters"] == {"slug": "$response.body#/slug"}


def test_the_root_templates_are_documented(document):
    root = document["components"]["schemas"]["Root"]["properties"]
    assert root["link"]["format"] == "uri-template"
    assert root["user"]["format"] == "uri-template"


def test_options_answers_204_with_allow_and_no_html(client):
    for path in ("/api/v1.0/", "/api/v1.0/links", "/api/v1.0/links/x", "/api/v1.0/openapi.json"):
        response = client.options(path)
        assert response.status_code == 204, path
        assert "GET" in response.headers["Allow"]
        assert "text/html" not in response.headers.get("Content-Type", "")
        assert response.get_data() == b""
