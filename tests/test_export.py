"""``shortener export`` and ``GET /api/v1.0/links/export``: every link the collection's filters
select, as CSV or JSON, streamed a page at a time; an export imports back to the same set of
links, through the CLI and through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest
from support import assert_problem

from shortener.cli import main
from shortener.services import exporting

LINKS = "/api/v1.0/links"
EXPORT = "/api/v1.0/links/export"
# What an import cannot give back the same: written by the server when the link is written.
SERVER_WRITTEN = ("updated_at",)


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(main, [str(arg) for arg in args])

    return invoke


@pytest.fixture
def some_links(client, alice):
    """Three links of alice's with titles, tags, options and visits, one of bob's."""
    bodies = [
        {"slug": "docs", "target": "https://example.com/docs", "title": "Docs, \"quoted\"",
         "tags": ["work", "reading list"], "redirect_status": 301},
        {"slug": "sale", "target": "https://shop.example.com/sale?x=1", "tags": ["shop"],
         "utm_source": "mail", "valid_until": "2031-01-01T00:00:00Z", "max_visits": 10},
        {"slug": "plain", "target": "https://example.com/plain", "crawlable": True,
         "rules": [{"target": "https://example.com/fr", "conditions": [
             {"type": "language", "value": "fr"}]}]},
    ]  # fmt: skip
    for body in bodies:
        response = client.post(LINKS, json=body, auth=alice)
        assert response.status_code == 201, response.get_data(as_text=True)
    for _ in range(2):
        assert client.get("/docs").status_code == 301
    client.application.extensions["shortener"].recorder.flush()
    return [body["slug"] for body in bodies]


def comparable(links: list[dict]) -> dict[str, dict]:
    return {
        link["slug"]: {name: value for name, value in link.items() if name not in SERVER_WRITTEN}
        for link in links
    }


def delete_all(client, user, slugs) -> None:
    for slug in slugs:
        assert client.delete(f"{LINKS}/{slug}", auth=user).status_code == 204


def test_api_export_json_is_the_collection_envelope_streamed(client, alice, some_links):
    response = client.get(f"{EXPORT}?with_visits=true", auth=alice)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    exported = response.get_json()["links"]
    listed = client.get(LINKS, auth=alice).get_json()["links"]
    assert exported == listed
    assert {link["slug"]: link["visit_count"] for link in exported}["docs"] == 2


def test_api_export_csv_has_a_header_and_one_row_a_link(client, alice, some_links):
    response = client.get(f"{EXPORT}?format=csv", auth=alice)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(rows[0]) == [
        "slug",
        "target",
        "title",
        "tags",
        "redirect_status",
        "created_at",
    ]
    docs = next(row for row in rows if row["slug"] == "docs")
    assert docs["title"] == 'Docs, "quoted"'
    assert docs["tags"] == "work|reading list"
    assert docs["redirect_status"] == "301"
    with_visits = client.get(f"{EXPORT}?format=csv&with_visits=true", auth=alice)
    assert "visit_count" in with_visits.get_data(as_text=True).splitlines()[0]


def test_api_export_takes_the_collections_filters(client, alice, bob, some_links):
    client.post(LINKS, json={"slug": "bobs", "target": "https://bob.example/"}, auth=bob)
    tagged = client.get(f"{EXPORT}?tag=shop", auth=alice).get_json()["links"]
    assert [link["slug"] for link in tagged] == ["sale"]
    searched = client.get(f"{EXPORT}?q=plain", auth=alice).get_json()["links"]
    assert [link["slug"] for link in searched] == ["plain"]
    by_slug = client.get(f"{EXPORT}?sort=slug", auth=alice).get_json()["links"]
    assert [link["slug"] for link in by_slug] == ["docs", "plain", "sale"]
    # a user sees only their own links; an admin everyone's, or one owner's
    assert "bobs" not in {link["slug"] for link in by_slug}


def test_admin_exports_everyones_links_or_one_owners(client, admin, alice, bob, some_links):
    client.post(LINKS, json={"slug": "bobs", "target": "https://bob.example/"}, auth=bob)
    everyone = client.get(EXPORT, auth=admin).get_json()["links"]
    assert {link["slug"] for link in everyone} == {"docs", "sale", "plain", "bobs"}
    bobs = client.get(f"{EXPORT}?owner=bob", auth=admin).get_json()["links"]
    assert [link["slug"] for link in bobs] == ["bobs"]


@pytest.mark.parametrize(
    "query, field",
    [("format=xml", "format"), ("sort=colour", "sort"), ("limit=5", "limit"),
     ("with_visits=maybe", "with_visits")],
)  # fmt: skip
def test_bad_export_parameters_are_400_problems(client, alice, query, field):
    assert_problem(client.get(f"{EXPORT}?{query}", auth=alice), 400, field=field)


def test_export_needs_credentials_with_links_read(client, alice):
    assert_problem(client.get(EXPORT), 401)


def test_export_reads_a_page_at_a_time(client, alice, monkeypatch):
    """Pages of 2 links: every one of 7 links comes out once, in the collection's order."""
    monkeypatch.setattr(exporting, "BATCH_SIZE", 2)
    seen_pages = []
    original = exporting.LinkService.list

    def counting(self, *args, **kwargs):
        page = original(self, *args, **kwargs)
        seen_pages.append(len(page.items))
        return page

    monkeypatch.setattr(exporting.LinkService, "list", counting)
    for number in range(7):
        client.post(LINKS, json={"slug": f"n{number}", "target": "https://example.com/"},
                    auth=alice)  # fmt: skip
    exported = client.get(EXPORT, auth=alice).get_json()["links"]
    assert [link["slug"] for link in exported] == [f"n{number}" for number in range(6, -1, -1)]
    assert max(seen_pages) <= 2 and len(seen_pages) >= 4


def test_round_trip_through_the_api_json_export(client, alice, run, some_links, tmp_path):
    before = client.get(f"{EXPORT}?with_visits=true", auth=alice).get_data(as_text=True)
    path = tmp_path / "links.json"
    path.write_text(before)
    delete_all(client, alice, some_links)
    result = run("import", path, "--format", "json", "--owner", "alice")
    assert result.output.rstrip().splitlines()[-1] == "imported: 3, skipped: 0, failed: 0", (
        result.output
    )
    after = client.get(f"{EXPORT}?with_visits=true", auth=alice).get_json()["links"]
    assert comparable(after) == comparable(json.loads(before)["links"])


def test_round_trip_through_the_api_csv_export(client, alice, run, tmp_path):
    for slug, title in (("a", "First"), ("b", None), ("c", "Third, with comma")):
        body = {"slug": slug, "target": f"https://example.com/{slug}", "title": title,
                "tags": ["x", "y z"] if slug != "b" else []}  # fmt: skip
        assert client.post(LINKS, json=body, auth=alice).status_code == 201
    before = client.get(f"{EXPORT}?format=csv&with_visits=true", auth=alice)
    path = tmp_path / "links.csv"
    path.write_bytes(before.get_data())
    listed_before = client.get(LINKS, auth=alice).get_json()["links"]
    delete_all(client, alice, ["a", "b", "c"])
    result = run("import", path, "--format", "csv", "--owner", "alice")
    assert result.output.rstrip().splitlines()[-1] == "imported: 3, skipped: 0, failed: 0", (
        result.output
    )
    again = client.get(f"{EXPORT}?format=csv&with_visits=true", auth=alice)
    assert again.get_data(as_text=True) == before.get_data(as_text=True)
    listed_after = client.get(LINKS, auth=alice).get_json()["links"]
    assert comparable(listed_after) == comparable(listed_before)


def test_round_trip_through_the_cli(client, alice, run, some_links, tmp_path):
    for fmt in ("json", "csv"):
        exported = run("export", "--owner", "alice", "--format", fmt, "--with-visits")
        assert exported.exit_code == 0, exported.output
        path = tmp_path / f"links.{fmt}"
        path.write_text(exported.output)
        listed_before = client.get(LINKS, auth=alice).get_json()["links"]
        delete_all(client, alice, [link["slug"] for link in listed_before])
        result = run("import", path, "--owner", "alice")
        assert result.output.rstrip().splitlines()[-1] == "imported: 3, skipped: 0, failed: 0", (
            result.output
        )
        listed_after = client.get(LINKS, auth=alice).get_json()["links"]
        if fmt == "json":  # csv holds only its columns: the rules, UTM and window are json's
            assert comparable(listed_after) == comparable(listed_before)
        again = run("export", "--owner", "alice", "--format", fmt, "--with-visits")
        if fmt == "csv":
            assert again.output == exported.output
        else:
            assert comparable(json.loads(again.output)["links"]) == comparable(
                json.loads(exported.output)["links"]
            )


def test_cli_export_without_visits_leaves_the_counts_out(run, alice, some_links):
    exported = run("export", "--format", "json")
    links = json.loads(exported.output)["links"]
    assert links and all("visit_count" not in link for link in links)
    assert "visit_count" not in run("export", "--format", "csv").output.splitlines()[0]


def test_cli_export_of_an_unknown_owner_fails_cleanly(run):
    result = run("export", "--owner", "nobody")
    assert result.exit_code == 1 and "nobody" in result.output


def test_export_is_in_the_openapi_document(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    operation = document["paths"]["/api/v1.0/links/export"]["get"]
    assert operation["operationId"] == "exportLinks"
    assert set(operation["responses"]["200"]["content"]) == {
        "text/csv; charset=utf-8",
        "application/json",
    }
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"format", "with_visits", "tag", "q", "sort", "owner"} <= names
    assert not {"limit", "cursor"} & names


def test_export_is_a_reserved_slug(client, alice):
    response = client.post(LINKS, json={"slug": "export", "target": "https://example.com/"},
                           auth=alice)  # fmt: skip
    assert_problem(response, 422, field="slug")


def test_an_api_page_imports_as_it_is(client, alice, run, some_links, tmp_path):
    """GET /links's envelope ({"uri", "links", "next"}) is a json import file as it stands."""
    page = client.get(f"{LINKS}?limit=2", auth=alice)
    path = tmp_path / "page.json"
    path.write_bytes(page.get_data())
    listed = page.get_json()["links"]
    delete_all(client, alice, [link["slug"] for link in listed])
    result = run("import", path, "--owner", "alice")
    assert result.output.rstrip().splitlines()[-1] == "imported: 2, skipped: 0, failed: 0"
    again = [client.get(f"{LINKS}/{link['slug']}", auth=alice).get_json() for link in listed]
    assert comparable(again) == comparable(listed)
