"""The link representation, and what a client may send to create or change one."""

from __future__ import annotations

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..services.forwarding import UTM_MAX_LENGTH
from ..services.lifetime import MAX_VISITS_LIMIT, STATUSES
from ..services.links import DEFAULT_REDIRECT_STATUS, REDIRECT_STATUSES, TITLE_MAX_LENGTH
from ..services.slugs import SLUG_PATTERN, slug_problems
from ..storage.records import LinkRecord
from .fields import URI, Instant, StrictBoolean, absolute_uri, label, uri_to
from .link_filters import LinkListQuery  # noqa: F401 - re-exported (GET /links' query)
from .rules import rules_field, variants_field
from .tags import tags_field
from .targets import TargetUrl, own_hosts  # noqa: F401 - own_hosts is re-exported
from .users import password_field


def utm_field(name: str) -> fields.String:
    """A UTM field: a one-line label, appended to the target as ``name=value`` when set."""
    return fields.String(
        allow_none=True,
        load_default=None,
        validate=label(UTM_MAX_LENGTH, min_length=1),
        metadata={
            "description": f"Appended to the target as {name}=<value, percent-encoded> at "
            f"redirect time, unless the target has its own {name}."
        },
    )


def short_url_of(link: LinkRecord) -> str:
    """The public redirect URL: under SHORTENER_PUBLIC_URL when set, else this host."""
    public_url = current_app.extensions["shortener.settings"].public_url
    if public_url:
        return f"{public_url}/{link.slug}"
    return absolute_uri("redirects.follow", slug=link.slug)


def check_slug(slug: str) -> None:
    """The slug rules (pattern and reserved words), so every problem comes back in one 422."""
    problems = slug_problems(slug, current_app.extensions["shortener"].links.reserved_slugs)
    if problems:
        raise ValidationError(problems)


class LinkSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = uri_to("link", slug="slug")
    slug = fields.String(
        validate=check_slug,
        metadata={
            "description": "Case-sensitive; generated when omitted; fixed once created. "
            "Reserved words (the API's own paths) are refused.",
            "pattern": f"^{SLUG_PATTERN.pattern}$",
        },
    )
    short_url = fields.Function(short_url_of, dump_only=True, metadata=URI)
    target = TargetUrl(
        required=True,
        metadata={
            "format": "uri",
            "description": "Absolute http or https URL, not pointing at this shortener.",
        },
    )
    title = fields.String(allow_none=True, load_default=None, validate=label(TITLE_MAX_LENGTH))
    redirect_status = fields.Integer(
        strict=True,
        load_default=DEFAULT_REDIRECT_STATUS,
        validate=validate.OneOf(REDIRECT_STATUSES),
    )
    # Lifetime and visit cap (services/lifetime.py, README "Link lifetime and visit caps").
    valid_since = Instant(
        allow_none=True,
        load_default=None,
        metadata={"description": "Redirects from then on; before it, GET /<slug> is 404."},
    )
    valid_until = Instant(
        allow_none=True,
        load_default=None,
        metadata={"description": "Expires then: after valid_since; 410 or expired_target."},
    )
    max_visits = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(1, MAX_VISITS_LIMIT),
        metadata={"description": "Redirects to target this many times at most, exactly."},
    )
    expired_target = TargetUrl(
        allow_none=True,
        load_default=None,
        metadata={
            "format": "uri",
            "description": "Where an expired or exhausted link redirects (302) instead of "
            "410; the same rules as target.",
        },
    )
    status = fields.String(
        dump_only=True,
        validate=validate.OneOf(STATUSES),
        metadata={"description": "scheduled, expired (dates), exhausted (max_visits), active."},
    )
    # Redirect rules and A/B splits (services/rules.py, schemas/rules.py).
    rules = rules_field(load_default=None)
    variants = variants_field(load_default=None)
    crawlable = StrictBoolean(
        load_default=False,
        metadata={"description": "Listed as allowed in GET /robots.txt (everything else is not)."},
    )
    # Query forwarding, UTM fields and passwords (services/forwarding.py, README "Query
    # forwarding and UTM", "Password-protected links").
    forward_query = StrictBoolean(
        load_default=False,
        metadata={
            "description": "The visitor's query parameters are added to the target's (the "
            "target's own win on a clash), exactly as sent."
        },
    )
    utm_source = utm_field("utm_source")
    utm_medium = utm_field("utm_medium")
    utm_campaign = utm_field("utm_campaign")
    utm_term = utm_field("utm_term")
    utm_content = utm_field("utm_content")
    # No load_default: a PUT without it keeps the stored password (it is never sent back).
    password = password_field(
        allow_none=True,
        metadata={
            "description": "Visitors must give it (a form, or HTTP Basic with any user name). "
            "Write-only; null removes it; a PUT without it keeps it."
        },
    )
    has_password = fields.Boolean(dump_only=True)
    # Tags (services/tags.py, README "Tags"): POST and PUT without them: none.
    tags = tags_field(load_default=list)
    visit_count = fields.Integer(dump_only=True)
    owner = uri_to("user", username="owner_username")
    visits = uri_to("link_visits", slug="slug")
    stats = uri_to("link_stats", slug="slug")
    qr = uri_to("link_qr", slug="slug")
    history = uri_to("link_history", slug="slug")
    created_at = Instant(dump_only=True)
    updated_at = Instant(dump_only=True)
