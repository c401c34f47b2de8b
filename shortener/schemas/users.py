"""The user representation, and what may be sent to create or change one."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..services.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from ..services.users import USERNAME_PATTERN, USERNAME_RULE
from ..storage.records import UserRecord
from .fields import QueryBoolean, StrictBoolean, Timestamp, absolute_uri, uri_to

_PASSWORD = dict(
    load_only=True,
    validate=validate.Length(PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH),
    metadata={"format": "password", "writeOnly": True},
)


def links_of(user: UserRecord) -> str:
    return absolute_uri("links", owner=user.username)


class UserSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = uri_to("user", username="username")
    username = fields.String(
        required=True,
        # Regexp only anchors at the start (re.match); \Z makes it the whole name.
        validate=validate.Regexp(rf"(?:{USERNAME_PATTERN.pattern})\Z", error=USERNAME_RULE),
    )
    password = fields.String(required=True, **_PASSWORD)
    is_admin = StrictBoolean(load_default=False)
    links = fields.Function(links_of, dump_only=True, metadata={"format": "uri"})
    created_at = Timestamp(dump_only=True)


class UserChangeSchema(Schema):
    """PATCH: a new password, and (admins only) the role."""

    class Meta:
        unknown = RAISE

    password = fields.String(**_PASSWORD)
    is_admin = StrictBoolean()


class UserDeleteQuery(Schema):
    class Meta:
        unknown = RAISE

    purge = QueryBoolean(load_default=False)
