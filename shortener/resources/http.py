"""Request parsing and response building shared by every Resource."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, request
from marshmallow import Schema, ValidationError, fields
from werkzeug.exceptions import RequestEntityTooLarge

from ..services.errors import InvalidInput, InvalidParameter, MalformedBody, UnsupportedMediaType

JSON = "application/json"


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"the key '{key}' appears more than once")
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_json() -> Any:
    """The body as JSON: 415 for another media type, 400 for anything JSON would not parse."""
    mimetype = request.mimetype
    if mimetype != JSON and not (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Send the body as {JSON}"
            + (f", not {mimetype}." if mimetype else "; the Content-Type header is missing.")
        )
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    _refuse_cut_off_body(raw)
    try:
        data = json.loads(
            raw, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
        # A lone surrogate escape ("\ud800") parses but is not Unicode text: refuse it here
        # rather than fail with a 500 when it is stored or sent back.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        return data
    except (ValueError, UnicodeError) as error:
        raise MalformedBody(f"The body is not valid JSON: {error}.") from None
    except RecursionError:  # e.g. 60,000 nested '[' fit in MAX_CONTENT_LENGTH
        raise MalformedBody("The body is nested too deeply.") from None


def _refuse_cut_off_body(raw: bytes) -> None:
    """413 for a body without Content-Length (chunked) that goes past MAX_CONTENT_LENGTH.

    Werkzeug stops reading such a body at the limit and returns what it read, without an
    error: a valid JSON document there would be taken and the rest silently ignored.
    """
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()


def load_body(schema: Schema, *, partial: bool = False) -> dict[str, Any]:
    """The body loaded through ``schema``; 422 with a message per field otherwise."""
    return loaded(schema, read_json(), partial=partial)


def loaded(
    schema: Schema, data: Any, *, partial: bool = False, what: str = "The body"
) -> dict[str, Any]:
    """``data`` (a body, or one item of a batch) loaded through ``schema``; InvalidInput
    (422) with a message per field otherwise."""
    try:
        return schema.load(data, partial=partial)
    except ValidationError as error:
        raise InvalidInput(
            f"{what} has invalid fields.",
            errors=_field_errors(schema, error.normalized_messages()),
        ) from None


def load_query(schema: Schema) -> dict[str, Any]:
    """Query parameters loaded through ``schema``; 400 naming each bad parameter otherwise.
    A parameter the schema declares as a list may repeat (``?tag=a&tag=b``); others may not."""
    lists = repeatable(schema)
    repeated = [
        name for name, values in request.args.lists() if len(values) > 1 and name not in lists
    ]
    if repeated:
        raise InvalidParameter(
            "Give each query parameter once: " + ", ".join(repeated) + ".",
            errors={name: ["Given more than once."] for name in repeated},
        )
    given = {name: values if name in lists else values[0] for name, values in request.args.lists()}
    try:
        return schema.load(given)
    except ValidationError as error:
        messages = {
            name: ["Unknown parameter."] if problems == ["Unknown field."] else problems
            for name, problems in error.normalized_messages().items()
        }
        raise InvalidParameter(
            "Invalid query parameter: " + ", ".join(sorted(messages)) + ".", errors=messages
        ) from None


def repeatable(schema: Schema) -> frozenset[str]:
    """The query parameters of ``schema`` that may be given more than once (its lists)."""
    return frozenset(
        field.data_key or name
        for name, field in schema.fields.items()
        if isinstance(field, fields.List)
    )


def _field_errors(schema: Schema, messages: dict[str, Any]) -> dict[str, Any]:
    """Say plainly when a field is the server's to set, and where a wrong shape went wrong."""
    server_owned = {name for name, field in schema.fields.items() if field.dump_only}
    result: dict[str, Any] = {}
    for name, problems in messages.items():
        if name == "_schema":
            result["body"] = (
                ["Must be a JSON object."] if problems == ["Invalid input type."] else problems
            )
        elif name in server_owned:
            result[name] = ["Is set by the server and cannot be sent."]
        else:
            result.update(_flattened(name, problems))
    return result


def _flattened(name: str, problems: Any) -> dict[str, Any]:
    """Nested messages (lists of objects: a link's rules) under dotted names such as
    ``rules.0.conditions.1.value``. A list of plain values keeps its messages by index under
    its own name (``{"scopes": {"0": [...]}}``)."""
    if not isinstance(problems, dict):
        return {name: problems}
    if all(isinstance(key, int) and isinstance(inner, list) for key, inner in problems.items()):
        return {name: problems}
    result: dict[str, Any] = {}
    for key, inner in problems.items():
        result.update(_flattened(name if key == "_schema" else f"{name}.{key}", inner))
    return result


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False) + "\n", status=status, mimetype=JSON)
    if headers:
        response.headers.update(headers)
    return response


def services():
    return current_app.extensions["shortener"]
