"""The API token representation, and what a client may send to create one."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..services.actors import utcnow
from ..services.tokens import DEFAULT_SCOPES, NAME_MAX_LENGTH, SCOPES
from ..storage.token_queries import TokenRecord
from .fields import URI, Instant, Matches, Username, absolute_uri, uri_to
from .pages import PageQuery


def token_uri(token: TokenRecord) -> str:
    return absolute_uri("token", token_id=str(token.id))


def _in_the_future(moment) -> None:
    if moment is not None and moment <= utcnow():
        raise ValidationError("Must be in the future.")


class TokenSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = fields.Function(token_uri, dump_only=True, metadata=URI)
    name = fields.String(
        required=True,
        validate=[
            validate.Length(1, NAME_MAX_LENGTH),
            Matches(
                r"[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*",
                error="Must not be blank or contain control characters.",
            ),
        ],
        metadata={"description": "A label for people."},
    )
    scopes = fields.List(
        fields.String(
            validate=validate.OneOf(SCOPES, error="Unknown scope '{input}'; choose from {choices}.")
        ),
        load_default=lambda: list(DEFAULT_SCOPES),
        validate=validate.Length(min=1, error="Give at least one scope."),
        metadata={
            "description": "Default: every scope but users:admin, which only administrators "
            "can have.",
            "uniqueItems": True,
        },
    )
    owner = uri_to("user", username="owner_username")
    created_at = Instant(dump_only=True)
    expires_at = Instant(
        allow_none=True,
        load_default=None,
        validate=_in_the_future,
        metadata={"description": "null (the default): never expires."},
    )
    last_used_at = Instant(dump_only=True, allow_none=True)
    token = fields.String(
        dump_only=True,
        metadata={"description": "The secret, only in the answer to the create request."},
    )


_USER = Username(
    load_default=None,
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
