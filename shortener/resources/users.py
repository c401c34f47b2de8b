"""/api/v1.0/users and /api/v1.0/users/<name>."""

from __future__ import annotations

from flask_restful import Resource

from ..auth import acting_user, current_user
from ..declarations import ANY_CREDENTIAL
from ..schemas.pages import PageQuery, page_of
from ..schemas.users import UserChangeSchema, UserDeleteQuery, UserSchema
from ..services.tokens import USERS_ADMIN
from .http import services
from .operations import operation


def _admins_only(**_) -> None:
    """Before the body is read, so a non-admin learns nothing of its rules."""
    services().users.require_admin(current_user())


def _self_or_admin(username: str, **_) -> None:
    services().users.require_self_or_admin(current_user(), username)


class UserCollection(Resource):
    # With a token every /users route but reading one's own user needs users:admin.
    @operation(
        "listUsers",
        "Every user, newest first (admins)",
        scope=USERS_ADMIN,
        query=PageQuery,
        response=page_of("users", UserSchema),
        tags=("users",),
        etag=True,
    )
    def get(self, query):
        return services().users.list(current_user(), cursor=query["cursor"], limit=query["limit"])

    @operation(
        "createUser",
        "Create a user (admins)",
        scope=USERS_ADMIN,
        guard=_admins_only,
        body=UserSchema,
        response=UserSchema,
        status=201,
        errors=(409,),
        links={"getUser": "The user just created.", "updateUser": "Change it."},
        tags=("users",),
        etag=True,
        idempotent=True,
    )
    def post(self, body):
        return services().users.create(current_user(), **body)


class UserItem(Resource):
    @operation(
        "getUser",
        "A user: yourself with any credential, anyone as an admin",
        scope=ANY_CREDENTIAL,
        response=UserSchema,
        errors=(404,),
        tags=("users",),
        etag=True,
    )
    def get(self, username):
        return services().users.get(acting_user(), username)

    @operation(
        "updateUser",
        "Change your password, or (admins) anyone's password and role",
        scope=USERS_ADMIN,
        guard=_self_or_admin,
        body=UserChangeSchema,
        partial=True,
        response=UserSchema,
        errors=(404, 409),
        tags=("users",),
        etag=True,
    )
    def patch(self, username, body, precondition):
        return services().users.update(current_user(), username, **body, precondition=precondition)

    @operation(
        "deleteUser",
        "Delete a user (admins)",
        scope=USERS_ADMIN,
        query=UserDeleteQuery,
        status=204,
        errors=(404, 409),
        tags=("users",),
        etag=True,
    )
    def delete(self, username, query, precondition):
        services().users.delete(
            current_user(), username, purge=query["purge"], precondition=precondition
        )
