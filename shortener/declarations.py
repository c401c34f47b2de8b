"""What an operation is: one declaration per method of a resource (or plain view) that the
request handling (resources/operations.py) and the OpenAPI document (resources/openapi.py)
both read, so nothing about an operation is written twice.

Resources declare with ``@operation`` (resources/operations.py); plain Flask views that
answer on their own (the redirect, health checks) with ``@described``, for the document only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from marshmallow import Schema

from .schemas.pages import PageSchema


class _Public:
    """The scope of an operation that needs no credentials."""

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Any = _Public()
# Credentials are read when sent (e.g. the root's "me"), never required.
OPTIONAL: Any = type("_Optional", (), {"__repr__": lambda self: "OPTIONAL"})()
ANY_CREDENTIAL = None  # authenticated, no particular scope

# Statuses every operation under the API can answer: rate limits and database faults.
ALWAYS = (429, 503)
# Statuses every request can get before any view runs: a request line (414) or a header (431)
# over the server's limits (serving.py renders gunicorn's refusals as problems).
REFUSED_BY_THE_SERVER = (414, 431)


@dataclass(frozen=True)
class Operation:
    """Everything a client and the document need to know about one method of one resource."""

    operation_id: str
    summary: str
    description: str | None = None
    scope: Any = ANY_CREDENTIAL
    query: Schema | None = None
    body: Schema | None = None
    partial: bool = False
    response: Schema | None = None
    response_description: str | None = None
    status: int = 200
    # Other success statuses with the same response schema: {201: "Created at this slug."}
    other_statuses: Mapping[int, str] = field(default_factory=dict)
    # Error statuses the operation itself can answer, beyond those its parts imply.
    errors: tuple[int, ...] = ()
    # Headers of the success answer besides the always-present ones.
    headers: tuple[str, ...] = ()
    # Runs with the path values (and ``query``) before the body is read.
    guard: Callable[..., None] | None = None
    tags: tuple[str, ...] = ()
    # Links to other operations from a success answer: {"getLink": "the created link"}; the
    # target operation takes the answer's "uri" (see openapi.py).
    links: Mapping[str, str] = field(default_factory=dict)
    # The success answer's media type; several when the client chooses (e.g. by Accept).
    content_type: str | tuple[str, ...] = "application/json"
    # Under the API: rate limited and backed by the database (429, 503 on every operation).
    api: bool = True
    # Conditional requests (resources/conditional.py): a strong ETag from the record (a weak
    # one on a page); GET answers 304 to If-None-Match; PUT, PATCH and DELETE hand the view
    # its If-Match as ``precondition`` (412, 428).
    etag: bool = False
    # POST with Idempotency-Key: run once, replay the kept answer (400, 409, 422);
    # ``replayable`` False keeps no body (a token's secret), so a repeat answers 409.
    idempotent: bool = False
    replayable: bool = True

    @property
    def authenticated(self) -> bool:
        return self.scope is not PUBLIC and self.scope is not OPTIONAL

    @property
    def is_page(self) -> bool:
        return isinstance(self.response, PageSchema)

    def error_statuses(self) -> list[int]:
        """Every error status this operation can answer, derived from its parts."""
        statuses = set(self.errors) | set(REFUSED_BY_THE_SERVER)
        if self.api:
            statuses |= set(ALWAYS)
        if self.authenticated:
            statuses |= {401, 403}
        if self.query is not None:
            statuses.add(400)
        if self.body is not None:
            statuses |= {400, 413, 415, 422}
        return sorted(statuses)

    def success_statuses(self) -> dict[int, str]:
        statuses = {self.status: self.response_description or HTTPStatus(self.status).phrase}
        statuses.update(self.other_statuses)
        return statuses


def declared_operation(view_function: Callable[..., Any], method: str) -> Operation | None:
    """The declaration behind a Flask view function for ``method``, if it has one."""
    view_class = getattr(view_function, "view_class", None)
    if view_class is not None:
        return getattr(getattr(view_class, method.lower(), None), "operation", None)
    declarations = getattr(view_function, "operations", None) or {}
    return declarations.get(method.upper())


def described(method: str, operation_id: str, summary: str, **declared: Any):
    """Declares a plain Flask view (the redirect, health checks) for the document only: such
    views parse and answer on their own, as fast as they can."""
    declaration = Operation(operation_id, summary, api=False, **declared)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view.operations = {**getattr(view, "operations", {}), method.upper(): declaration}
        return view

    return decorate
