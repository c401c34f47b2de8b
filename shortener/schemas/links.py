"""The link representation, and what a client may send to create or change one."""

from __future__ import annotations

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..services.links import DEFAULT_REDIRECT_STATUS, REDIRECT_STATUSES, TITLE_MAX_LENGTH
from ..services.slugs import SLUG_PATTERN, slug_problems
from ..services.targets import TargetRejected, normalize_target
from ..services.users import USERNAME_PATTERN, USERNAME_RULE
from ..storage.records import LinkRecord
from .fields import Timestamp, absolute_uri, uri_to
from .pages import PageQuery


def short_url_of(link: LinkRecord) -> str:
    """The public redirect URL: under SHORTENER_PUBLIC_URL when set, else this host."""
    public_url = current_app.extensions["shortener.settings"].public_url
    if public_url:
        return f"{public_url}/{link.slug}"
    return absolute_uri("redirects.follow", slug=link.slug)


def _check_slug(slug: str) -> None:
    """The service's slug rules, so every field's problems come back in one answer."""
    problems = slug_problems(slug, current_app.extensions["shortener"].links.reserved_slugs)
    if problems:
        raise ValidationError(problems)


class TargetUrl(fields.String):
    """An absolute http(s) URL, normalized (IDN hosts to punycode) by the service's rules."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        max_length = current_app.extensions["shortener.settings"].max_target_length
        try:
            return normalize_target(text, max_length=max_length)
        except TargetRejected as rejected:
            raise ValidationError(str(rejected)) from None


class LinkSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = uri_to("link", slug="slug")
    slug = fields.String(
        validate=_check_slug,
        metadata={
            "description": "Case-sensitive; generated when omitted; fixed once created.",
            "pattern": SLUG_PATTERN.pattern,
        },
    )
    short_url = fields.Function(short_url_of, dump_only=True, metadata={"format": "uri"})
    target = TargetUrl(
        required=True,
        metadata={"format": "uri", "description": "Absolute http or https URL."},
    )
    title = fields.String(
        allow_none=True,
        load_default=None,
        validate=[
            validate.Length(max=TITLE_MAX_LENGTH),
            validate.Regexp(
                r"[^\x00-\x1f\x7f-\x9f]*\Z", error="Must not contain control characters."
            ),
        ],
    )
    redirect_status = fields.Integer(
        strict=True,
        load_default=DEFAULT_REDIRECT_STATUS,
        validate=validate.OneOf(REDIRECT_STATUSES),
    )
    visit_count = fields.Integer(dump_only=True)
    owner = uri_to("user", username="owner_username")
    visits = uri_to("link_visits", slug="slug")
    stats = uri_to("link_stats", slug="slug")
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class LinkListQuery(PageQuery):
    class Meta:
        unknown = RAISE

    owner = fields.String(
        load_default=None,
        # A name no user can have (e.g. with NUL, which PostgreSQL refuses) is a bad parameter.
        validate=validate.Regexp(rf"(?:{USERNAME_PATTERN.pattern})\Z", error=USERNAME_RULE),
        metadata={"description": "Admins: only this user's links."},
    )
