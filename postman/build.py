"""Builds the Postman collection and environment from the OpenAPI document (``make postman``).

The document is the app's own (built in-process, no server needed). Every operation becomes one
request, in a folder per tag, with ``{{baseUrl}}`` and the collection's Basic auth
(``{{username}}``/``{{password}}``); a last folder, "Scenario", walks the API from its root by
the URIs its answers carry, with the test scripts of postman/scenario/*.js.

The output is deterministic (ids are uuid5 of what they name, order follows the document), so
``build.py --check`` (and tests/integration/test_postman.py) can tell a committed collection
that is stale against the document.

We build the collection ourselves rather than with ``openapi-to-postmanv2``: that converter
gives random ids and random example values (faker) on every run, a ``baseUrl`` of ``/`` for a
document without servers, and about 1.2 MB of example responses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLLECTION_PATH = HERE / "shortener.postman_collection.json"
ENVIRONMENT_PATH = HERE / "shortener.postman_environment.json"
SCRIPTS = HERE / "scenario"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/shortener/postman")
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
DEFAULT_USERNAME = "admin"
# Folders in this order; a tag not listed comes after them, by name.
TAG_ORDER = ("root", "links", "visits", "users", "tokens", "redirect", "health")
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
EXAMPLE_STRINGS = {
    "uri": "https://example.com/",
    "date-time": "2026-01-01T00:00:00Z",
    "password": "a long passphrase",
}


def ident(*parts: str) -> str:
    """A stable id for what ``parts`` name."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


# -- the operations ----------------------------------------------------------------------------
def example(schema: dict[str, Any]) -> Any:
    """A value a person can edit: the document's example, the default, the first allowed one,
    or one of the type."""
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((name for name in kind if name != "null"), "null")
    if kind == "array":
        return [example(schema.get("items", {}))]
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return EXAMPLE_STRINGS.get(schema.get("format", ""), "example")


def example_body(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The required fields and those with a default or an example; every writable field if
    that is none."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    writable = {
        name: prop
        for name, prop in schema.get("properties", {}).items()
        if not prop.get("readOnly")
    }
    required = set(schema.get("required", ()))
    chosen = [
        name
        for name, prop in writable.items()
        if name in required or "default" in prop or "example" in prop
    ]
    return {name: example(writable[name]) for name in chosen or writable}


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def response_lines(operation: dict[str, Any], document: dict[str, Any]) -> list[str]:
    lines = []
    for status, answer in operation["responses"].items():
        if "$ref" in answer:
            answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        lines.append(f"- `{status}` {answer.get('description', '')}".rstrip())
    return lines


def query_value(value: Any) -> str:
    """A default as it is written in a query string (``false``, not ``False``)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def operation_item(path: str, method: str, operation: dict[str, Any], document: dict) -> dict:
    operation_id = operation["operationId"]
    parameters = operation.get("parameters", [])
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}" + path.replace("{", ":").replace("}", ""),
        "host": ["{{baseUrl}}"],
        "path": [
            segment.replace("{", ":").replace("}", "")
            for segment in path.strip("/").split("/")
            if segment
        ]
        or [""],
    }
    query = [
        {
            "key": parameter["name"],
            "value": query_value(parameter["schema"].get("default", "")),
            "description": parameter.get("description", ""),
            "disabled": not parameter.get("required", False),
        }
        for parameter in parameters
        if parameter["in"] == "query"
    ]
    if query:
        url["query"] = query
    variables = [
        {"key": parameter["name"], "value": "", "description": parameter.get("description", "")}
        for parameter in parameters
        if parameter["in"] == "path"
    ]
    if variables:
        url["variable"] = variables
    headers = [
        {
            "key": parameter["name"],
            "value": "",
            "description": parameter.get("description", ""),
            "disabled": True,
        }
        for parameter in parameters
        if parameter["in"] == "header"
    ]
    request: dict[str, Any] = {"method": method.upper(), "header": headers, "url": url}
    body = operation.get("requestBody")
    if body is not None:
        schema = body["content"]["application/json"]["schema"]
        headers.insert(0, {"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json_text(example_body(schema, document["components"]["schemas"])),
            "options": {"raw": {"language": "json"}},
        }
    if operation.get("security") == []:
        request["auth"] = {"type": "noauth"}
    text = [operation.get("description") or operation["summary"], ""]
    text += [f"`{method.upper()} {path}` (operationId `{operation_id}`)", ""]
    text += ["Answers:", *response_lines(operation, document)]
    request["description"] = "\n".join(text)
    item: dict[str, Any] = {
        "id": ident("operation", operation_id),
        "name": operation["summary"],
        "request": request,
        "response": [],
    }
    if any(status.startswith("3") and status != "304" for status in operation["responses"]):
        item["protocolProfileBehavior"] = {"followRedirects": False}
    return item


def operation_folders(document: dict[str, Any]) -> list[dict[str, Any]]:
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, operation))
    known = [tag for tag in TAG_ORDER if tag in by_tag]
    order = known + sorted(set(by_tag) - set(known))
    folders = []
    for tag in order:
        operations = sorted(
            by_tag[tag],
            key=lambda entry: (entry[0], METHOD_ORDER.index(entry[1].upper())),
        )
        folders.append(
            {
                "id": ident("folder", tag),
                "name": tag,
                "description": f"The operations tagged `{tag}` in the OpenAPI document.",
                "item": [operation_item(*entry, document) for entry in operations],
            }
        )
    return folders


# -- the scenario ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One request of the scenario; ``script`` names postman/scenario/<script>.js (the tests)
    and, when it exists, <script>.pre.js (run before the request)."""

    name: str
    method: str
    url: str
    script: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    public: bool = False  # no credentials: what anyone on the web does
    follow_redirects: bool = True


SCENARIO = (
    Step("Start at the root", "GET", "{{baseUrl}}/api/v1.0/", "01-root"),
    Step(
        "Create a link",
        "POST",
        "{{linksUri}}",
        "02-create-link",
        body={"target": "https://example.com/from-postman", "title": "Made by Postman"},
    ),
    Step("Follow Location to the link", "GET", "{{linkUri}}", "03-get-link"),
    Step(
        "Follow the short URL",
        "GET",
        "{{shortUrl}}",
        "04-follow-short-url",
        public=True,
        follow_redirects=False,
    ),
    Step(
        "Change the link's title",
        "PATCH",
        "{{linkUri}}",
        "05-patch-link",
        body={"title": "Changed by Postman"},
        headers={"If-Match": "{{linkEtag}}"},
    ),
    Step("Read the link's history", "GET", "{{historyUri}}", "05-link-history"),
    Step("Find the link in the links collection", "GET", "{{linksUri}}", "06-list-links"),
    Step("Read the link's visits", "GET", "{{visitsUri}}", "07-visits"),
    Step("Read the link's stats", "GET", "{{statsUri}}", "08-stats"),
    Step(
        "A bad body is refused",
        "POST",
        "{{linksUri}}",
        "09-bad-body",
        body={"target": "not a url"},
    ),
    Step("An unknown link is not found", "GET", "{{missingLinkUri}}", "10-unknown-link"),
    Step(
        "Delete the link",
        "DELETE",
        "{{linkUri}}",
        "11-delete-link",
        headers={"If-Match": "{{linkEtag}}"},
    ),
    Step("The deleted link is gone", "GET", "{{linkUri}}", "12-deleted-link"),
    Step(
        "Its short URL is gone too",
        "GET",
        "{{shortUrl}}",
        "13-deleted-short-url",
        public=True,
        follow_redirects=False,
    ),
)
# Collection variables the scenario sets from the answers (declared empty, for people to see).
SCENARIO_VARIABLES = (
    ("linksUri", "The links collection, from the root's `links`."),
    ("linkTemplate", "The root's `link`: an RFC 6570 template of a link's URI."),
    ("linkUri", "The created link: the `Location` of the 201."),
    ("linkEtag", "The link's current ETag, sent back as If-Match."),
    ("shortUrl", "The created link's `short_url`."),
    ("target", "The created link's `target`."),
    ("visitsUri", "The created link's `visits`."),
    ("statsUri", "The created link's `stats`."),
    ("historyUri", "The created link's `history`."),
    ("missingLinkUri", "The `link` template filled with a slug nobody has."),
)


def script_lines(name: str) -> list[str]:
    return (SCRIPTS / name).read_text().rstrip("\n").split("\n")


def event(listen: str, script: str) -> dict[str, Any]:
    return {"listen": listen, "script": {"type": "text/javascript", "exec": script_lines(script)}}


def step_item(step: Step) -> dict[str, Any]:
    headers = [{"key": key, "value": value} for key, value in step.headers.items()]
    request: dict[str, Any] = {"method": step.method, "header": headers, "url": step.url}
    if step.body is not None:
        headers.insert(0, {"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json_text(step.body),
            "options": {"raw": {"language": "json"}},
        }
    if step.public:
        request["auth"] = {"type": "noauth"}
    events = [event("test", f"{step.script}.js")]
    if (SCRIPTS / f"{step.script}.pre.js").exists():
        events.insert(0, event("prerequest", f"{step.script}.pre.js"))
    item: dict[str, Any] = {
        "id": ident("scenario", step.script),
        "name": step.name,
        "event": events,
        "request": request,
        "response": [],
    }
    if not step.follow_redirects:
        item["protocolProfileBehavior"] = {"followRedirects": False}
    return item


def scenario_folder() -> dict[str, Any]:
    return {
        "id": ident("folder", "Scenario"),
        "name": "Scenario",
        "description": (
            "Run in order (Runner, or newman): starts at the root and uses only URIs taken "
            "from the answers (collection variables): create a link, follow `Location` and the "
            "short URL, patch, list, read visits and stats, a bad body (422) and an unknown "
            "link (404) as problem+json, delete, and check it is gone. Leaves nothing behind."
        ),
        "item": [step_item(step) for step in SCENARIO],
    }


# -- the files ---------------------------------------------------------------------------------
def collection(document: dict[str, Any]) -> dict[str, Any]:
    info = document["info"]
    return {
        "info": {
            "_postman_id": ident("collection"),
            "name": info["title"],
            "description": info.get("description", "")
            + "\nMade from the OpenAPI document by `make postman` (postman/build.py); "
            "do not edit by hand.",
            "schema": SCHEMA,
        },
        "auth": {
            "type": "basic",
            "basic": [
                {"key": "username", "value": "{{username}}", "type": "string"},
                {"key": "password", "value": "{{password}}", "type": "string"},
            ],
        },
        "variable": [
            {"key": "baseUrl", "value": DEFAULT_BASE_URL, "description": "Where it is served."},
            {"key": "username", "value": DEFAULT_USERNAME, "description": "Basic auth user."},
            {"key": "password", "value": "", "description": "Basic auth password."},
            *(
                {"key": key, "value": "", "description": description}
                for key, description in SCENARIO_VARIABLES
            ),
        ],
        "item": [*operation_folders(document), scenario_folder()],
    }


def environment() -> dict[str, Any]:
    return {
        "id": ident("environment"),
        "name": "shortener (local)",
        "values": [
            {"key": "baseUrl", "value": DEFAULT_BASE_URL, "type": "default", "enabled": True},
            {"key": "username", "value": DEFAULT_USERNAME, "type": "default", "enabled": True},
            {"key": "password", "value": "", "type": "secret", "enabled": True},
        ],
        "_postman_variable_scope": "environment",
    }


def served_document() -> dict[str, Any]:
    """The document as shipped: the app on its defaults (no SHORTENER_* of the shell), on an
    in-memory database."""
    for name in [name for name in os.environ if name.startswith("SHORTENER_")]:
        del os.environ[name]
    from shortener import create_app
    from shortener.resources.openapi import served_document as served

    app = create_app({"DATABASE_URL": "sqlite://"})
    try:
        return served(app).document
    finally:
        app.extensions["shortener"].close()


def rendered(document: dict[str, Any]) -> dict[Path, str]:
    return {
        COLLECTION_PATH: json_text(collection(document)) + "\n",
        ENVIRONMENT_PATH: json_text(environment()) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is stale"
    )
    arguments = parser.parse_args(argv)
    stale = []
    for path, text in rendered(served_document()).items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(HERE.parent))
        if not arguments.check:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if arguments.check and stale:
        names = ", ".join(str(path) for path in stale)
        print(f"{names}: stale against the OpenAPI document; run `make postman`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
