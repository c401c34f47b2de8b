"""The filters that select links: the one schema GET /api/v1.0/links, the bulk operations'
``{"filter": {...}}`` and the export read, loaded into a ``LinkFilter`` (storage/link_filters.py).

    from shortener.schemas.link_filters import LinkFilterSchema, link_filter_of
    link_filter = link_filter_of(LinkFilterSchema().load({"tag": ["news"], "q": "sale"}))

In a query string ``tag`` and ``exclude_tag`` repeat (``?tag=a&tag=b``); in a JSON body they
are lists (a single string is taken as a list of one).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..services.lifetime import STATUSES
from ..services.tags import tag_key
from ..storage.link_filters import DEFAULT_SORT, SORTS, LinkFilter
from .fields import Instant, Username, label
from .pages import PageQuery
from .tags import TagName
from .targets import TargetUrl


class _Repeatable(fields.List):
    """A parameter given once or more: a list, or one value (a list of one)."""

    def _deserialize(self, value, attr, data, **kwargs) -> list:
        if isinstance(value, str):
            value = [value]
        return super()._deserialize(value, attr, data, **kwargs)


class LinkFilterSchema(Schema):
    class Meta:
        unknown = RAISE

    tag = _Repeatable(
        TagName(),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "Only links with this tag; repeat it: links with all of them."},
    )
    exclude_tag = _Repeatable(
        TagName(),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "Only links without this tag; repeatable (none of them)."},
    )
    q = fields.String(
        load_default=None,
        validate=label(200, min_length=1),
        metadata={
            "description": "Only links with this text in their slug, title or target, "
            "case-insensitively (on SQLite for ASCII letters only)."
        },
    )
    target = TargetUrl(
        load_default=None,
        metadata={
            "format": "uri",
            "description": "Only links to exactly this target, compared as stored (after the "
            "same normalisation as a link's target).",
        },
    )
    created_since = Instant(
        dates=True,
        load_default=None,
        metadata={"description": "Only links created at or after this time (or date, UTC)."},
    )
    created_until = Instant(
        dates=True,
        load_default=None,
        metadata={"description": "Only links created before this time (or date, UTC)."},
    )
    status = fields.String(  # no load_default: a None would show as an allowed value
        validate=validate.OneOf(STATUSES),
        metadata={"description": "Only the links in this status now."},
    )
    owner = Username(load_default=None, metadata={"description": "Admins: only this user's links."})

    @validates_schema
    def _since_before_until(self, data, **kwargs) -> None:
        since, until = data.get("created_since"), data.get("created_until")
        if since is not None and until is not None and since > until:
            raise ValidationError("Must not be after created_until.", field_name="created_since")


def link_filter_of(loaded: dict[str, Any]) -> LinkFilter:
    """The ``LinkFilter`` for what ``LinkFilterSchema`` (or a schema extending it) loaded."""
    return LinkFilter(
        tag_keys=tuple(tag_key(name) for name in loaded.get("tag") or ()),
        exclude_tag_keys=tuple(tag_key(name) for name in loaded.get("exclude_tag") or ()),
        q=loaded.get("q"),
        target=loaded.get("target"),
        created_since=loaded.get("created_since"),
        created_until=loaded.get("created_until"),
        status=loaded.get("status"),
        owner=loaded.get("owner"),
    )


class LinkListQuery(LinkFilterSchema, PageQuery):
    """GET /api/v1.0/links: the filters, a sort, and a page."""

    class Meta:
        unknown = RAISE

    sort = fields.String(
        load_default=DEFAULT_SORT,
        validate=validate.OneOf(SORTS),
        metadata={
            "description": "created, visits, slug or title; '-' first for descending (ties by "
            "id, the same way). Links without a title sort as an empty title."
        },
    )
