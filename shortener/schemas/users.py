"""The user representation, and what may be sent to create or change one."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..services.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from ..storage.records import UserRecord
from .fields import URI, Instant, QueryBoolean, StrictBoolean, Username, absolute_uri, uri_to


def password_field(*, metadata: dict | None = None, **kwargs) -> fields.String:
    """A password: write-only, and the one place its length rule is written."""
    return fields.String(
        load_only=True,
        validate=validate.Length(PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH),
        metadata={"format": "password", "writeOnly": True, **(metadata or {})},
        **kwargs,
    )


def links_of(user: UserRecord) -> str:
    return absolute_uri("links", owner=user.username)


class UserSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = uri_to("user", username="username")
    username = Username(required=True)
    password = password_field(required=True)
    is_admin = StrictBoolean(load_default=False)
    links = fields.Function(links_of, dump_only=True, metadata=URI)
    created_at = Instant(dump_only=True)


class UserChangeSchema(Schema):
    """PATCH: a new password, and (admins only) the role."""

    class Meta:
        unknown = RAISE

    password = password_field()
    is_admin = StrictBoolean()


class UserDeleteQuery(Schema):
    class Meta:
        unknown = RAISE

    purge = QueryBoolean(
        load_default=False, metadata={"description": "Also delete the links the user owns."}
    )
