"""``shortener import``: our CSV and JSON, and Bitly's, YOURLS', Kutt's and Shlink's exports
(the sample files in tests/import_samples/), checked by the API's own rules, through the CLI
and read back through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PASSWORD

from shortener.cli import main
from shortener.services.actors import OPERATOR
from shortener.services.links import LinkService

SAMPLES = Path(__file__).with_name("import_samples")
LINKS = "/api/v1.0/links"


@pytest.fixture
def run(app, alice):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(main, [str(arg) for arg in args])

    return invoke


@pytest.fixture
def api(client, alice):
    """GET of one of alice's links, as she sees it."""

    def get(slug: str) -> dict:
        response = client.get(f"{LINKS}/{slug}", auth=alice)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return get


def slugs_of(client, user) -> set[str]:
    response = client.get(f"{LINKS}?limit=1000", auth=user)
    return {link["slug"] for link in response.get_json()["links"]}


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def import_sample(run, name: str, fmt: str, *more: str):
    return run("import", SAMPLES / name, "--format", fmt, "--owner", "alice", *more)


def test_our_csv_keeps_slugs_targets_titles_tags_times_and_visits(run, api, client, alice):
    result = import_sample(run, "links.csv", "csv")
    assert result.exit_code == 0, result.output
    assert last_line(result.output) == "imported: 3, skipped: 0, failed: 0"
    docs = api("docs")
    assert docs["target"] == "https://example.com/docs"
    assert docs["title"] == "Our docs"
    assert docs["redirect_status"] == 301
    assert docs["created_at"] == "2024-03-01T10:00:00.000Z"
    assert docs["visit_count"] == 42
    if "tags" in docs:
        assert docs["tags"] == ["work", "reading"]
    assert api("sale")["visit_count"] == 7
    assert len(slugs_of(client, alice)) == 3  # the row without a slug got a generated one


def test_imported_visits_add_to_recorded_ones_and_stats_hold_only_recorded(run, api, client, alice):
    import_sample(run, "links.csv", "csv")
    assert client.get("/docs").status_code == 301
    client.application.extensions["shortener"].recorder.flush()
    assert api("docs")["visit_count"] == 43
    visits = client.get(f"{LINKS}/docs/visits", auth=alice).get_json()
    assert len(visits["visits"]) == 1


def test_a_bad_row_is_reported_by_its_line_and_the_others_go_on(run, client, alice, row_counts):
    result = import_sample(run, "bad_rows.csv", "csv")
    lines = result.output.rstrip("\n").splitlines()
    assert result.exit_code == 1
    assert any(line.startswith("line 3: target: ") for line in lines), result.output
    assert any(line.startswith("line 4: redirect_status: ") for line in lines), result.output
    assert lines[-1] == "imported: 2, skipped: 0, failed: 2"
    assert slugs_of(client, alice) == {"good-one", "good-two"}
    assert row_counts()["links"] == 2


def test_running_it_twice_imports_nothing_twice(run, client, alice):
    first = import_sample(run, "links.csv", "csv")
    assert last_line(first.output) == "imported: 3, skipped: 0, failed: 0"
    before = slugs_of(client, alice)
    again = import_sample(run, "links.csv", "csv")
    assert again.exit_code == 0, again.output
    assert last_line(again.output) == "imported: 0, skipped: 3, failed: 0"
    assert slugs_of(client, alice) == before


def test_on_conflict_fail_reports_each_existing_slug(run):
    import_sample(run, "links.csv", "csv")
    result = import_sample(run, "links.csv", "csv", "--on-conflict", "fail")
    assert result.exit_code == 1
    assert "line 2: " in result.output and "already" in result.output
    assert last_line(result.output) == "imported: 0, skipped: 0, failed: 3"


def test_on_conflict_overwrite_replaces_fields_times_and_imported_visits(run, api, tmp_path):
    import_sample(run, "links.csv", "csv")
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "slug,target,title,visit_count,created_at\n"
        "docs,https://example.com/new-docs,New docs,5,2020-01-01T00:00:00Z\n"
    )
    result = run("import", changed, "--format", "csv", "--owner", "alice", "--on-conflict",
                 "overwrite")  # fmt: skip
    assert last_line(result.output) == "imported: 1, skipped: 0, failed: 0", result.output
    docs = api("docs")
    assert (docs["target"], docs["title"], docs["visit_count"]) == (
        "https://example.com/new-docs",
        "New docs",
        5,
    )
    assert docs["created_at"] == "2020-01-01T00:00:00.000Z"


def test_dry_run_checks_every_row_and_stores_nothing(run, row_counts):
    result = import_sample(run, "bad_rows.csv", "csv", "--dry-run")
    assert "line 3: target: " in result.output
    assert last_line(result.output) == "imported: 2, skipped: 0, failed: 2"
    assert "dry run" in result.output
    assert row_counts()["links"] == 0


def test_a_link_taken_by_another_user_is_never_overwritten(run, client, make_user):
    bob = make_user("bob")
    client.post(LINKS, json={"slug": "docs", "target": "https://bob.example/"}, auth=bob)
    result = import_sample(run, "links.csv", "csv", "--on-conflict", "overwrite")
    assert "line 2: " in result.output and "another user" in result.output
    assert client.get(f"{LINKS}/docs", auth=bob).get_json()["target"] == "https://bob.example/"


def revisions(client, user, slug: str) -> list[str]:
    answer = client.get(f"{LINKS}/{slug}/history", auth=user)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [revision["event"] for revision in answer.get_json()["history"]]


def test_a_slug_or_a_target_twice_in_one_file_is_imported_once(run, client, alice, tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text(
        "slug,target\n"
        "one,https://example.com/1\n"
        ",https://example.com/plain\n"
        "one,https://example.com/other\n"
        ",https://example.com/plain\n"
        "two,https://example.com/2\n"
    )
    result = run("import", twice, "--format", "csv", "--owner", "alice")
    assert last_line(result.output) == "imported: 3, skipped: 2, failed: 0", result.output
    links = client.get(f"{LINKS}?limit=100", auth=alice).get_json()["links"]
    assert sorted(link["target"] for link in links) == [
        "https://example.com/1",
        "https://example.com/2",
        "https://example.com/plain",
    ]
    for link in links:  # each created once, with its one revision
        assert revisions(client, alice, link["slug"]) == ["link.created"]
    failing = run("import", twice, "--format", "csv", "--owner", "alice", "--on-conflict", "fail")
    assert "line 2: " in failing.output and "line 3: " in failing.output, failing.output
    assert last_line(failing.output) == "imported: 0, skipped: 0, failed: 5"


def test_a_slug_taken_after_the_chunk_was_checked_fails_that_row_alone(
    run, client, alice, monkeypatch
):
    """The chunk's one check of slugs misses a link made meanwhile: its INSERT fails, the
    chunk is undone and written again row by row, where that row alone is skipped."""
    client.post(LINKS, json={"slug": "docs", "target": "https://example.com/mine"}, auth=alice)
    monkeypatch.setattr(LinkService, "taken_slugs", staticmethod(lambda connection, slugs: set()))
    result = import_sample(run, "links.csv", "csv")
    assert last_line(result.output) == "imported: 2, skipped: 1, failed: 0", result.output
    assert (
        client.get(f"{LINKS}/docs", auth=alice).get_json()["target"] == "https://example.com/mine"
    )
    assert revisions(client, alice, "sale") == ["link.created"]
    assert revisions(client, alice, "docs") == ["link.created"]


FOREIGN = [
    # (file, format, slug, target, title, created_at, visit_count, tags)
    (
        "bitly.json",
        "bitly",
        "3xYzAbC",
        "https://example.com/launch",
        "Launch post",
        "2021-06-14T09:12:44.000Z",
        0,
        ["launch", "blog"],
    ),
    (
        "bitly.csv",
        "bitly",
        "3xYzAbC",
        "https://example.com/launch",
        "Launch post",
        "2021-06-14T09:12:44.000Z",
        120,
        ["launch", "blog"],
    ),
    (
        "yourls.csv",
        "yourls",
        "ozh",
        "http://ozh.org/",
        "Ozh RICHARD",
        "2009-10-05T13:10:51.000Z",
        12,
        [],
    ),
    (
        "kutt.json",
        "kutt",
        "kt-docs",
        "https://docs.example.com/kutt",
        "Kutt docs",
        "2023-02-10T12:00:00.000Z",
        31,
        [],
    ),
    (
        "shlink.csv",
        "shlink",
        "abc123",
        "https://example.com/shlink-one",
        "First",
        "2022-08-01T10:00:00.000Z",
        17,
        ["foo", "bar baz"],
    ),
    (
        "shlink.json",
        "shlink",
        "abc123",
        "https://example.com/shlink-one",
        "First",
        "2022-08-01T10:00:00.000Z",
        17,
        ["foo", "bar baz"],
    ),
]


@pytest.mark.parametrize(
    "sample, fmt, slug, target, title, created_at, visit_count, tags",
    FOREIGN,
    ids=[f"{row[1]}-{row[0]}" for row in FOREIGN],
)
def test_other_shorteners_exports(
    run, api, sample, fmt, slug, target, title, created_at, visit_count, tags
):
    result = import_sample(run, sample, fmt)
    assert result.exit_code == 0, result.output
    assert last_line(result.output).endswith("skipped: 0, failed: 0")
    link = api(slug)
    assert (link["target"], link["title"], link["created_at"], link["visit_count"]) == (
        target,
        title,
        created_at,
        visit_count,
    )
    if "tags" in link:
        assert link["tags"] == tags


def test_shlink_api_json_keeps_its_meta(run, api):
    import_sample(run, "shlink.json", "shlink")
    link = api("abc123")
    assert link["valid_until"] == "2031-01-01T00:00:00.000Z"
    assert link["max_visits"] == 100
    assert link["crawlable"] is True and link["forward_query"] is True


def test_our_json_reads_past_server_fields_and_keeps_the_rest(run, api):
    result = import_sample(run, "links.json", "json")
    assert last_line(result.output) == "imported: 2, skipped: 0, failed: 0", result.output
    assert api("docs")["visit_count"] == 42
    later = api("later")
    assert later["valid_until"] == "2030-01-01T00:00:00.000Z"
    assert later["utm_source"] == "newsletter"


def test_json_rows_name_their_owner_when_no_owner_is_given(app, run, client, make_user, tmp_path):
    make_user("bob")
    rows = tmp_path / "owners.json"
    rows.write_text(
        '[{"slug": "for-bob", "target": "https://example.com/b",\n'
        '  "owner": "http://localhost/api/v1.0/users/bob"},\n'
        ' {"slug": "nobody", "target": "https://example.com/n"},\n'
        ' {"slug": "ghost", "target": "https://example.com/g",\n'
        '  "owner": "http://localhost/api/v1.0/users/ghost"}]\n'
    )
    result = run("import", rows, "--format", "json")
    assert "line 3: " in result.output and "--owner" in result.output
    assert "line 4: " in result.output and "ghost" in result.output
    assert last_line(result.output) == "imported: 1, skipped: 0, failed: 2"
    link = app.extensions["shortener"].links.get(OPERATOR, "for-bob")
    assert link.owner_username == "bob"


def test_a_bad_json_item_is_reported_by_its_line(run, tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(
        '{"links": [\n'
        '  {"slug": "ok", "target": "https://example.com/ok"},\n'
        '  {"slug": "bad slug", "target": "https://example.com/x"},\n'
        '  {"slug": "unknown", "target": "https://example.com/u", "colour": "red"}\n'
        "]}\n"
    )
    result = run("import", rows, "--format", "json", "--owner", "alice")
    assert "line 3: slug: " in result.output, result.output
    assert "line 4: colour: " in result.output, result.output
    assert last_line(result.output) == "imported: 1, skipped: 0, failed: 2"


@pytest.mark.parametrize(
    "content, fmt, words",
    [
        ("slug,destination\nx,https://example.com\n", "csv", ["target", "destination"]),
        ('{"links": [', "json", ["line 1", "JSON"]),
        ("", "csv", ["empty"]),
        ("keyword,title\nx,y\n", "yourls", ["url"]),
    ],
)
def test_a_file_that_is_not_the_format_is_refused_whole(run, tmp_path, row_counts, content, fmt,
                                                        words):  # fmt: skip
    path = tmp_path / "file"
    path.write_text(content)
    result = run("import", path, "--format", fmt, "--owner", "alice")
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output
    assert row_counts()["links"] == 0


def test_owner_is_needed_for_other_formats_and_must_exist(run):
    assert run("import", SAMPLES / "links.csv", "--format", "csv").exit_code == 2
    result = run("import", SAMPLES / "links.csv", "--format", "csv", "--owner", "nobody")
    assert result.exit_code == 1 and "nobody" in result.output


def test_the_format_comes_from_the_extension_when_not_given(run):
    result = run("import", SAMPLES / "links.csv", "--owner", "alice")
    assert last_line(result.output) == "imported: 3, skipped: 0, failed: 0"


def test_imported_links_redirect(run, client):
    import_sample(run, "yourls.csv", "yourls")
    response = client.get("/ozh")
    assert response.status_code == 302
    assert response.headers["Location"] == "http://ozh.org/"


def test_progress_bar_shows_rate_and_eta(run):
    result = import_sample(run, "links.csv", "csv")
    assert "rows/s" in result.output and "ETA" in result.output


def test_passwords_given_to_the_import_are_hashed(run, tmp_path, client):
    rows = tmp_path / "secret.json"
    rows.write_text(
        '[{"slug": "secret", "target": "https://example.com/s", "password": "opensesame"}]'
    )
    assert last_line(run("import", rows, "--owner", "alice").output).startswith("imported: 1")
    assert client.get("/secret").status_code == 401
    assert client.get("/secret", auth=("x", "opensesame")).status_code == 302
    assert PASSWORD  # the fixture users' password is not the link's
