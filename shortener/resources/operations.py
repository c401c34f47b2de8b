"""Serving a declared operation: the declaration (shortener/declarations.py) parses the
request and dumps the answer.

    class LinkItem(Resource):
        @operation("getLink", "A link", scope=LINKS_READ, response=LinkSchema, errors=(404,))
        def get(self, slug):
            return services().links.get(current_user(), slug)

The view receives its path values, plus ``query`` and ``body`` when the operation declares
those schemas, and returns what ``response`` dumps (a record, or a ``Page`` for a
``page_of`` schema), a ``(value, status)`` pair for one of its other success statuses, or a
ready ``Response``. Order of checks: authentication (401), scope (403), query (400),
``guard`` (e.g. 403 before a body is even read), body (415, 400, 413, 422), the view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from flask import Response, request, url_for
from marshmallow import Schema

from ..auth import current_credential, login_required
from ..declarations import ANY_CREDENTIAL, OPTIONAL, PUBLIC, Operation
from ..schemas.fields import uri_templates
from ..services.link_events import acting_as
from ..services.pagination import Page
from .conditional import WRITES, idempotent, not_modified, precondition, tag_page, tag_record
from .http import json_response, load_body, load_query, repeatable


def handle(
    declared: Operation, view: Callable[..., Any], resource: Any, path: dict[str, Any]
) -> Response:
    arguments = dict(path)
    query: Mapping[str, Any] = {}
    if declared.query is not None:
        query = arguments["query"] = load_query(declared.query)
    if declared.guard is not None:
        declared.guard(**arguments)
    if declared.etag and request.method in WRITES:
        arguments["precondition"] = precondition()

    def run() -> Response:
        if declared.body is not None:
            arguments["body"] = load_body(declared.body, partial=declared.partial)
        return respond(declared, view(resource, **arguments), query)

    credential = current_credential() if declared.authenticated else None
    if credential is None:
        return _run(declared, run)
    # Changes made by the view (link events: history, webhooks) are this credential's.
    with acting_as(credential.user, token_id=credential.token_id):
        return _run(declared, run)


def _run(declared: Operation, run: Callable[[], Response]) -> Response:
    if declared.idempotent:
        return idempotent(run, replayable=declared.replayable)
    return run()


def respond(declared: Operation, result: Any, query: Mapping[str, Any]) -> Response:
    if isinstance(result, Response):
        return result
    status = declared.status
    if isinstance(result, tuple):
        result, status = result
        if status not in declared.success_statuses():
            raise RuntimeError(f"{declared.operation_id} answered an undeclared {status}")
    if declared.response is None:
        return Response(status=status)
    if declared.is_page:
        response = _page(declared, result, query)
        if declared.etag:
            tag_page(response)
            return not_modified(response)
        return response
    with uri_templates():
        body = declared.response.dump(result)
    located = status == 201 or "Location" in declared.headers  # e.g. find_if_exists's 200
    headers = {"Location": body["uri"]} if located and "uri" in body else None
    response = json_response(body, status, headers)
    if declared.etag:
        tag_record(response, result)
        return not_modified(response)
    return response


def _page(declared: Operation, page: Page, query: Mapping[str, Any]) -> Response:
    """The envelope, with the next page also in an RFC 8288 ``Link`` header. Its URIs
    keep the query parameters the client gave."""
    endpoint = request.endpoint
    values = {**(request.view_args or {})}
    if declared.query is not None:
        lists = repeatable(declared.query)
        for name, parameter in declared.query.fields.items():
            key = parameter.data_key or name
            given = request.args.getlist(key) if key in lists else request.args.get(key)
            if given:
                values[key] = given
    next_uri = None
    if page.next_cursor is not None:
        next_uri = url_for(endpoint, **{**values, "cursor": page.next_cursor}, _external=True)
    with uri_templates():
        body = declared.response.dump(
            {
                "uri": url_for(endpoint, **values, _external=True),
                declared.response.plural: page.items,
                "next": next_uri,
            }
        )
    headers = {"Link": f'<{next_uri}>; rel="next"'} if next_uri else None
    return json_response(body, headers=headers)


def _instance(schema: Schema | type[Schema] | None) -> Schema | None:
    return schema() if isinstance(schema, type) else schema


def operation(
    operation_id: str,
    summary: str,
    *,
    scope: Any = ANY_CREDENTIAL,
    query: Schema | type[Schema] | None = None,
    body: Schema | type[Schema] | None = None,
    response: Schema | type[Schema] | None = None,
    **declared: Any,
):
    """Declares a Resource method; see the module's docstring."""
    declaration = Operation(
        operation_id,
        summary,
        scope=scope,
        query=_instance(query),
        body=_instance(body),
        response=_instance(response),
        **declared,
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        @wraps(view)
        def serve(resource: Any, **path: Any) -> Response:
            return handle(declaration, view, resource, path)

        if declaration.scope is OPTIONAL:
            serve = login_required(optional=True)(serve)
        elif declaration.scope is not PUBLIC:
            serve = login_required(declaration.scope)(serve)
        serve.operation = declaration  # read by openapi.py and auth.required_scope
        return serve

    return decorate
