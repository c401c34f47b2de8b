"""Field types shared by the schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import url_for
from marshmallow import ValidationError, fields, validate

from ..instants import rfc3339

# Slugs and usernames only ever hold these, so they need no escaping in a URI.
_URL_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_PLACEHOLDER = "zqvalueqz"
_TEMPLATES: ContextVar[dict[tuple[str, str], tuple[str, ...]] | None] = ContextVar(
    "shortener_uri_templates", default=None
)


@contextmanager
def uri_templates(templates: dict | None = None) -> Iterator[None]:
    """While dumping one answer, ``absolute_uri`` builds each endpoint's URI through the URL
    map once and fills it in for every other object (a page of 50 links needs 250 URIs;
    building each through the URL map cost more than the query). An answer dumped in parts
    (a streamed export) hands the same ``templates`` to each part."""
    token = _TEMPLATES.set({} if templates is None else templates)
    try:
        yield
    finally:
        _TEMPLATES.reset(token)


def absolute_uri(endpoint: str, **values: str) -> str:
    """``url_for(endpoint, **values, _external=True)``; inside ``uri_templates()`` a template
    per endpoint, filled by plain concatenation, only with URL-safe values."""
    templates = _TEMPLATES.get()
    if templates is None or len(values) != 1:
        return url_for(endpoint, **values, _external=True)
    ((name, value),) = values.items()
    if not (isinstance(value, str) and _URL_SAFE.fullmatch(value)):
        return url_for(endpoint, **values, _external=True)
    key = (endpoint, name)
    template = templates.get(key)
    if template is None:
        template = tuple(
            url_for(endpoint, **{name: _PLACEHOLDER}, _external=True).split(_PLACEHOLDER)
        )
        templates[key] = template
    if len(template) != 2:  # the placeholder also appears elsewhere (say, in the host name)
        return url_for(endpoint, **values, _external=True)
    return value.join(template)


class StrictBoolean(fields.Boolean):
    """Only JSON true and false; marshmallow's Boolean would take "yes", 1 and "on"."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class QueryInteger(fields.Integer):
    """A whole number written in ASCII digits only, as query strings carry it."""

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBoolean(fields.Boolean):
    """``true`` or ``false`` (also 1/0) in a query string."""

    truthy = {"true", "1"}
    falsy = {"false", "0"}


# A Function field has no type of its own: say what its URIs are, for the document.
URI = {"type": "string", "format": "uri"}


def uri_to(endpoint: str, **values_of):
    """A dump-only field holding the absolute URI of ``endpoint``.

    ``values_of`` maps URL variables to attribute names of the object being dumped.
    """

    def build(obj) -> str:
        values = {name: getattr(obj, attribute) for name, attribute in values_of.items()}
        return absolute_uri(endpoint, **values)

    return fields.Function(build, dump_only=True, metadata=URI)


class Instant(fields.DateTime):
    """An RFC 3339 date and time with ``Z`` or an offset, sent back in UTC with ``Z``.

    ``dates=True`` (query parameters) also takes a plain date, meaning midnight UTC. The years
    stop short of 9999 so that a window widened to whole buckets still fits in a datetime.
    """

    default_error_messages = {
        "invalid": "Must be an RFC 3339 timestamp with a time zone, such as 2026-11-21T09:30:00Z.",
        "invalid_or_date": "Must be an RFC 3339 timestamp such as 2026-11-21T09:30:00Z, or a "
        "date such as 2026-11-21.",
    }

    def __init__(self, *, dates: bool = False, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).setdefault("format", "date-time")
        super().__init__(**kwargs)
        self.dates = dates

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        return rfc3339(value)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        error = "invalid_or_date" if self.dates else "invalid"
        if not isinstance(value, str) or not value.isascii() or len(value) > 40:
            raise self.make_error(error)
        try:
            if self.dates and len(value) == 10:
                moment = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            else:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None or "T" not in value.upper():
                    raise ValueError("not a timestamp with an offset")
                # OverflowError: e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
                moment = moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise self.make_error(error) from None
        if moment.year >= 9999:
            raise self.make_error(error)
        return moment


class Matches(validate.Regexp):
    """The whole value matches ``pattern``; documented as the anchored ``^(?:pattern)$``.

    marshmallow's Regexp uses re.match (a prefix), and a JSON Schema pattern is a search: the
    anchors make both mean the whole string. ``$`` would accept a trailing newline in Python,
    so the check itself is a fullmatch.
    """

    def __init__(self, pattern: str, *, error: str) -> None:
        super().__init__(f"^(?:{pattern})$", error=error)
        self.whole = re.compile(pattern)

    def __call__(self, value: str) -> str:
        if self.whole.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


USERNAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
USERNAME_RULE = (
    "Must be 1 to 64 characters: letters A-Z or a-z, digits, '.', '-' or '_', "
    "starting with a letter or digit."
)


class Username(fields.String):
    """A user name: the one place its rule is written."""

    def __init__(self, **kwargs) -> None:
        super().__init__(validate=Matches(USERNAME_PATTERN, error=USERNAME_RULE), **kwargs)


# PostgreSQL cannot store NUL, and no control character belongs in a one-line label.
NO_CONTROL_CHARACTERS = Matches(
    r"[^\x00-\x1f\x7f-\x9f]*", error="Must not contain control characters."
)


def label(max_length: int, *, min_length: int = 0) -> list[validate.Validator]:
    """The rules of a one-line label for people (a title, a token's name)."""
    return [validate.Length(min_length, max_length), NO_CONTROL_CHARACTERS]
