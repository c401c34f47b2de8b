"""The OpenAPI 3.1 document, made once at start-up from the operations' declarations and the
app's URL map: nothing in it is written by hand a second time.

Served public at ``/api/v1.0/openapi.json`` with a strong ``ETag`` (a digest of its bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http import HTTPStatus
from importlib.metadata import version
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Response, current_app, request
from flask_restful import Resource
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from ..declarations import OPTIONAL, PUBLIC, Operation, declared_operation
from ..schemas.batches import BatchItemSchema
from ..services.idempotency import KEY_PATTERN
from .operations import operation

OPENAPI_VERSION = "3.1.0"
PROBLEM_JSON = "application/problem+json"
DOCUMENT_EXTENSION = "shortener.openapi"
_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

DESCRIPTION = """\
A URL shortener whose product is this hypermedia API. Start at `/api/v1.0/`, follow the URIs
it returns (every id is an absolute URI), and read errors as RFC 9457 problem details.
Authenticate with HTTP Basic (a user's password) or an API token (`Authorization: Bearer`);
a token carries only its scopes.
"""

SECURITY_SCHEMES = {
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "A user's name and password. A password carries all of the user's rights.",
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`shr_...`) from POST /api/v1.0/tokens or "
        "`shortener tokens create`; it carries only its scopes (listed per operation).",
    },
}

PARAMETER_DESCRIPTIONS = {
    "slug": "The short link's slug (case-sensitive).",
    "username": "A user name.",
    "token_id": "A token's number, as in its URI.",
    "name": "A problem type's name.",
    "filename": "A file of the documentation page.",
}

# Headers by name: what each means, and its schema.
HEADERS = {
    "Location": ("The URI of the resource this answer is about.", {"format": "uri"}),
    "Link": ('RFC 8288: the next page, as `<uri>; rel="next"`; absent on the last page.', {}),
    "RateLimit-Limit": ("Requests allowed in the current window.", {"type": "integer"}),
    "RateLimit-Remaining": ("Requests left in the current window.", {"type": "integer"}),
    "RateLimit-Reset": ("Seconds until the window starts again.", {"type": "integer"}),
    "Retry-After": ("Seconds to wait before trying again.", {"type": "integer"}),
    "WWW-Authenticate": ("The schemes to authenticate with: Basic and Bearer.", {}),
    "Allow": ("The methods this resource supports.", {}),
    "Cache-Control": ("Who may cache the answer, and for how long.", {}),
    "Vary": ("The request headers the answer depends on.", {}),
    "Content-Disposition": ("A file name for the download, e.g. `attachment; filename=...`.", {}),
    "ETag": (
        "The representation's entity tag: strong for a link, user, token or QR code, weak "
        "for a page.",
        {},
    ),
    "Idempotency-Replayed": (
        "`true` when this is the kept answer to an earlier request with the same Idempotency-Key.",
        {"enum": ["true"]},
    ),
}
# Request headers of conditional and idempotent operations (resources/conditional.py).
CONDITION_HEADERS = {
    "If-None-Match": "Entity tags you hold; 304 with no body if one matches (weak comparison).",
    "If-Match": "The ETag you read (or `*`): the change is made only if it still matches "
    "(else 412; a visit never makes it fail). Required with SHORTENER_REQUIRE_IF_MATCH "
    "(else 428).",
    "Idempotency-Key": "1-255 printable ASCII characters, e.g. a UUID: a repeat with the same "
    "key and request within 24 hours replays the first answer instead of creating again.",
}
# What the server refuses (400) besides: the key's own rule (services/idempotency.py).
CONDITION_HEADER_SCHEMAS = {"Idempotency-Key": {"pattern": KEY_PATTERN}}
WRITE_METHODS = ("PUT", "PATCH", "DELETE")
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
ERROR_HEADERS = {
    401: ("WWW-Authenticate",),
    405: ("Allow",),
    429: ("Retry-After", *RATE_LIMIT_HEADERS),
    503: ("Retry-After",),
}
# Headers present on every answer of that status (the rest may be absent).
REQUIRED_HEADERS = {"Location", "WWW-Authenticate", "Allow", "Retry-After"}


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error."""

    type = fields.String(
        required=True,
        metadata={
            "format": "uri",
            "description": "about:blank, or a URI under /problems/ that describes the problem.",
        },
    )
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(metadata={"description": "What went wrong, for a person."})
    errors = fields.Dict(
        metadata={"description": "Per field or parameter: a list of what is wrong with it."}
    )
    results = fields.List(
        fields.Nested(BatchItemSchema),
        metadata={
            "description": 'A refused "atomic" batch (/links/batch): each failing item, with '
            "its own problem; nothing was stored."
        },
    )


def path_of(rule: Rule) -> str:
    """``/api/v1.0/links/<string:slug>`` -> ``/api/v1.0/links/{slug}``."""
    return _VARIABLE.sub(lambda match: f"{{{match.group(1)}}}", rule.rule)


def served_operations(app: Flask) -> Iterator[tuple[Rule, str, Operation | None]]:
    """Every (rule, method) the app serves, with its declaration (None: undeclared).

    HEAD and OPTIONS that Flask adds by itself are left out; they follow from GET and Allow.
    """
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        declared_head = declared_operation(view, "HEAD") is not None
        for method in sorted(rule.methods or ()):
            if method == "OPTIONS" or (method == "HEAD" and not declared_head):
                continue
            yield rule, method, declared_operation(view, method)


class DocumentBuilder:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.spec = APISpec(
            title="shortener",
            version=version("shortener"),
            openapi_version=OPENAPI_VERSION,
            plugins=[MarshmallowPlugin(schema_name_resolver=self._schema_name)],
            info={"description": DESCRIPTION},
        )
        self.spec.components.schema("Problem", schema=ProblemSchema)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)
        for status in (400, 401, 403, 404, 405, 406, 409, 410, 412, 413, 414, 415, 422, 428, 429,
                       431, 503):  # fmt: skip
            self.spec.components.response(self._error_name(status), self._error(status))
        self.by_id: dict[str, tuple[Rule, Operation]] = {}

    @staticmethod
    def _schema_name(schema: Any) -> str:
        cls = schema if isinstance(schema, type) else type(schema)
        name = cls.__name__.removesuffix("Schema")
        return name + ("Patch" if getattr(schema, "partial", False) is True else "")

    @staticmethod
    def _error_name(status: int) -> str:
        return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "")

    def _error(self, status: int) -> dict[str, Any]:
        return {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "headers": self._headers(ERROR_HEADERS.get(status, ())),
        }

    @staticmethod
    def _headers(names: tuple[str, ...] | list[str]) -> dict[str, Any]:
        headers = {}
        for name in names:
            description, schema = HEADERS[name]
            headers[name] = {
                "description": description,
                "required": name in REQUIRED_HEADERS,
                "schema": {"type": "string", **schema},
            }
        return headers

    def build(self) -> dict[str, Any]:
        served = list(served_operations(self.app))
        for rule, method, declared in served:
            if declared is None:
                raise RuntimeError(f"{method} {rule.rule} is served but not declared")
            if self.by_id.setdefault(declared.operation_id, (rule, declared))[1] is not declared:
                raise RuntimeError(f"two operations are named {declared.operation_id}")
        paths: dict[str, dict[str, Any]] = {}
        for rule, method, declared in served:
            paths.setdefault(path_of(rule), {})[method.lower()] = self._operation(
                rule, declared, method
            )
        for path, item in sorted(paths.items()):
            self.spec.path(path=path, operations=item)
        document = self.spec.to_dict()
        for item in document["paths"].values():
            for declared in item.values():
                for parameter in declared.get("parameters", []):
                    _never_null(parameter)
        return document

    def _operation(self, rule: Rule, declared: Operation, method: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "operationId": declared.operation_id,
            "summary": declared.summary,
            "tags": list(declared.tags),
            "parameters": self._parameters(rule, declared, method),
            "responses": self._responses(declared, method),
        }
        if declared.description:
            body["description"] = declared.description
        security = self._security(declared)
        if security is not None:
            body["security"] = security
        if declared.body is not None:
            schema = type(declared.body)(partial=True) if declared.partial else declared.body
            body["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        return body

    def _parameters(self, rule: Rule, declared: Operation, method: str) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": PARAMETER_DESCRIPTIONS.get(name, ""),
                "schema": {"type": "string"},
            }
            for name in _VARIABLE.findall(rule.rule)
        ]
        if declared.query is not None:
            parameters.append({"in": "query", "schema": declared.query})
        for name in self._condition_headers(declared, method):
            parameters.append(
                {
                    "name": name,
                    "in": "header",
                    "required": False,
                    "description": CONDITION_HEADERS[name],
                    "schema": {"type": "string", **CONDITION_HEADER_SCHEMAS.get(name, {})},
                }
            )
        return parameters

    @staticmethod
    def _condition_headers(declared: Operation, method: str) -> list[str]:
        names = []
        if declared.etag and method == "GET":
            names.append("If-None-Match")
        if declared.etag and method in WRITE_METHODS:
            names.append("If-Match")
        if declared.idempotent:
            names.append("Idempotency-Key")
        return names

    @staticmethod
    def _security(declared: Operation) -> list[dict[str, list[str]]] | None:
        if declared.scope is PUBLIC:
            return []
        if declared.scope is OPTIONAL:
            return [{}, {"basicAuth": []}, {"bearerAuth": []}]
        scopes = [declared.scope] if declared.scope else []
        return [{"basicAuth": []}, {"bearerAuth": scopes}]

    def _responses(self, declared: Operation, method: str) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        for status, description in declared.success_statuses().items():
            headers = list(declared.headers)
            if status == 201:
                headers.append("Location")
            if declared.etag and status != 204:
                headers.append("ETag")
            if declared.idempotent:
                headers.append("Idempotency-Replayed")
            if declared.is_page:
                headers.append("Link")
            if declared.authenticated:
                headers.extend(RATE_LIMIT_HEADERS)
            answer: dict[str, Any] = {"description": description}
            if headers:
                answer["headers"] = self._headers(headers)
            media_types = declared.content_type
            if isinstance(media_types, str):
                media_types = (media_types,) if media_types else ()
            if declared.response is not None:
                answer["content"] = {kind: {"schema": declared.response} for kind in media_types}
            elif status != 204 and media_types:
                answer["content"] = {kind: {"schema": {}} for kind in media_types}
            links = self._links(declared)
            if links and status in (200, 201):
                answer["links"] = links
            responses[str(status)] = answer
        if declared.etag and method == "GET":
            responses["304"] = {
                "description": "Not Modified: If-None-Match matched; no body.",
                "headers": self._headers(["ETag"]),
            }
        errors = set(declared.error_statuses())
        if declared.etag and method in WRITE_METHODS:
            errors |= {412, 428}
        if declared.idempotent:
            errors |= {400, 409, 422}
        for status in sorted(errors):
            responses[str(status)] = {"$ref": f"#/components/responses/{self._error_name(status)}"}
        return responses

    def _links(self, declared: Operation) -> dict[str, Any]:
        """OpenAPI links to the operations on the resource just answered, by its path values
        (``slug``, ``username``): stateful tools chain create -> get/patch/delete with them."""
        links = {}
        response_fields = declared.response.fields if declared.response is not None else {}
        for target_id, description in declared.links.items():
            target = self.by_id.get(target_id)
            if target is None:
                raise RuntimeError(f"{declared.operation_id} links to unknown {target_id}")
            variables = _VARIABLE.findall(target[0].rule)
            if not all(name in response_fields for name in variables):
                continue
            links[target_id[0].upper() + target_id[1:]] = {
                "operationId": target_id,
                "parameters": {name: f"$response.body#/{name}" for name in variables},
                "description": description,
            }
        return links


def _never_null(parameter: dict[str, Any]) -> None:
    """A query parameter is absent or a string, never JSON null: an optional parameter's
    ``load_default=None`` must not read as "null is a value you may send"."""
    schema = parameter.get("schema", {})
    if isinstance(schema.get("type"), list):
        kinds = [kind for kind in schema["type"] if kind != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if schema.get("default", 0) is None:
        del schema["default"]


def build_document(app: Flask) -> dict[str, Any]:
    return DocumentBuilder(app).build()


class OpenApiDocument(Resource):
    @operation(
        "getOpenApiDocument",
        "This API's OpenAPI 3.1 document",
        scope=PUBLIC,
        tags=("root",),
        response_description="The document (application/json).",
    )
    def get(self):
        served = served_document(current_app)
        response = Response(served.body, mimetype="application/json")
        response.set_etag(served.etag)
        return response.make_conditional(request)


class _Served:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.body = json.dumps(document, indent=1, ensure_ascii=False).encode() + b"\n"
        self.etag = hashlib.sha256(self.body).hexdigest()[:32]


_building = threading.Lock()


def served_document(app: Flask) -> _Served:
    """The document, built once per process: at start-up under ``shortener serve`` (wsgi.py
    asks for it), else on first use, so a test app that never serves it never builds it."""
    served = app.extensions.get(DOCUMENT_EXTENSION)
    if served is None:
        with _building:
            served = app.extensions.get(DOCUMENT_EXTENSION)
            if served is None:
                with app.test_request_context():
                    served = app.extensions[DOCUMENT_EXTENSION] = _Served(build_document(app))
    return served
