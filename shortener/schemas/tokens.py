"""The API token representation, and what a client may send to create one."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import RAISE, Schema, fields, validate

from ..services.tokens import NAME_MAX_LENGTH, SCOPES
from ..services.users import USERNAME_PATTERN, USERNAME_RULE
from ..storage.token_queries import TokenRecord
from .fields import Timestamp, absolute_uri, uri_to
from .pages import PageQuery


def token_uri(token: TokenRecord) -> str:
    return absolute_uri("token", token_id=str(token.id))


class BodyTimestamp(Timestamp):
    """An RFC 3339 date and time with ``Z`` or an offset; sent back in UTC with ``Z``."""

    default_error_messages = {
        "invalid": "Must be an RFC 3339 timestamp with a time zone, such as 2026-11-21T09:30:00Z.",
    }

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str) or not value.isascii() or len(value) > 40:
            raise self.make_error("invalid")
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None or "T" not in value.upper():
                raise ValueError("not a date and time with an offset")
            moment = moment.astimezone(UTC)  # OverflowError before year 1 in UTC
        except (ValueError, OverflowError):
            raise self.make_error("invalid") from None
        if moment.year >= 9999:
            raise self.make_error("invalid")
        return moment


class TokenSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = fields.Function(token_uri, dump_only=True, metadata={"format": "uri"})
    name = fields.String(
        required=True,
        metadata={"description": f"A label for people: 1 to {NAME_MAX_LENGTH} characters."},
    )
    scopes = fields.List(
        fields.String(),
        metadata={
            "description": "Some of " + ", ".join(SCOPES) + "; default: every one but "
            "users:admin (which only administrators can have)."
        },
    )
    owner = uri_to("user", username="owner_username")
    created_at = Timestamp(dump_only=True)
    expires_at = BodyTimestamp(
        allow_none=True, metadata={"description": "null (the default): never expires."}
    )
    last_used_at = Timestamp(dump_only=True)
    token = fields.String(
        dump_only=True,
        metadata={"description": "The secret, only in the answer to the create request."},
    )


_USER = fields.String(
    load_default=None,
    validate=validate.Regexp(rf"(?:{USERNAME_PATTERN.pattern})\Z", error=USERNAME_RULE),
    metadata={"description": "Administrators: this user's tokens instead of their own."},
)


class TokenListQuery(PageQuery):
    class Meta:
        unknown = RAISE

    user = _USER


class TokenOwnerQuery(Schema):
    class Meta:
        unknown = RAISE

    user = _USER
