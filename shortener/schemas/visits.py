"""Visits and statistics, and the parameters that filter them."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..services.stats import BOTS_CHOICES, INTERVALS
from .fields import Instant, uri_to
from .pages import PageQuery
from .tags import TagName

_BOTS = fields.String(
    load_default="include",
    validate=validate.OneOf(BOTS_CHOICES),
    metadata={"description": "include (default), exclude or only bots."},
)


class _Window(Schema):
    since = Instant(dates=True, load_default=None)
    until = Instant(dates=True, load_default=None)

    @validates_schema
    def _since_before_until(self, data, **kwargs) -> None:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("Must not be after until.", field_name="since")


class VisitListQuery(_Window, PageQuery):
    class Meta:
        unknown = RAISE

    bots = _BOTS


class StatsQuery(_Window):
    class Meta:
        unknown = RAISE

    interval = fields.String(load_default="day", validate=validate.OneOf(INTERVALS))
    bots = _BOTS


class AllStatsQuery(StatsQuery):
    """GET /stats: every link's (admins), or those with a tag (anyone: their own links)."""

    class Meta:
        unknown = RAISE

    tag = fields.List(
        TagName(),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={
            "description": "Only the links with this tag (repeat it: with all of them): your "
            "own links, an administrator's everyone's. Without it, administrators only."
        },
    )


class VisitSchema(Schema):
    visited_at = Instant()
    referrer = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    browser = fields.String(allow_none=True)
    os = fields.String(allow_none=True)
    ip = fields.String(
        allow_none=True, metadata={"description": "Anonymized to /24 (IPv4) or /48 (IPv6)."}
    )
    is_bot = fields.Boolean()
    target_used = fields.String(
        allow_none=True,
        metadata={"description": "Where the visitor was sent (null: visits before it was kept)."},
    )
    rule = fields.Integer(
        allow_none=True, metadata={"description": "Index of the rule that chose the target."}
    )
    variant = fields.Integer(
        allow_none=True, metadata={"description": "Index of the variant that chose the target."}
    )
    country = fields.String(
        allow_none=True,
        metadata={"description": "ISO 3166-1 alpha-2, from SHORTENER_GEOIP_DB; null without."},
    )
    link = uri_to("link", slug="link_slug")


class _Bucket(Schema):
    start = Instant()
    visits = fields.Integer()


class _Referrer(Schema):
    host = fields.String(allow_none=True, metadata={"description": "null: no Referer."})
    visits = fields.Integer()


class _Family(Schema):
    family = fields.String(allow_none=True, metadata={"description": "null: not recognized."})
    visits = fields.Integer()


class _Target(Schema):
    target = fields.String(allow_none=True, metadata={"description": "null: not recorded."})
    visits = fields.Integer()


class _Index(Schema):
    index = fields.Function(
        lambda row: None if row["index"] is None else int(row["index"]),
        allow_none=True,
        metadata={"type": "integer", "description": "null: none chose the target."},
    )
    visits = fields.Integer()


class _Country(Schema):
    country = fields.String(allow_none=True, metadata={"description": "null: unknown."})
    visits = fields.Integer()


class StatsSchema(Schema):
    uri = fields.String(metadata={"format": "uri"})
    link = fields.String(metadata={"format": "uri"})
    since = Instant()
    until = Instant()
    interval = fields.String()
    total = fields.Integer()
    bots = fields.Integer()
    series = fields.List(fields.Nested(_Bucket))
    referrers = fields.List(fields.Nested(_Referrer))
    browsers = fields.List(fields.Nested(_Family))
    operating_systems = fields.List(fields.Nested(_Family))
    targets = fields.List(fields.Nested(_Target))
    rules = fields.List(fields.Nested(_Index))
    variants = fields.List(fields.Nested(_Index))
    countries = fields.List(fields.Nested(_Country))
