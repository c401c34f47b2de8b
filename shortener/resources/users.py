"""/api/v1.0/users and /api/v1.0/users/<name>."""

from __future__ import annotations

from flask import Response

from ..auth import current_user
from ..schemas.pages import PageQuery, page_schema
from ..schemas.users import UserChangeSchema, UserDeleteQuery, UserSchema
from ..services.tokens import USERS_ADMIN
from .authenticated import AuthenticatedResource
from .http import given_query, json_response, load_body, load_query, page_response
from .http import services as get_services

USER = UserSchema()
USER_CHANGE = UserChangeSchema()
USER_PAGE = page_schema("users", UserSchema)
PAGE_QUERY = PageQuery()
DELETE_QUERY = UserDeleteQuery()


class UserCollection(AuthenticatedResource):
    # With a token every /users route needs users:admin; a password is checked as before.
    required_scopes = {"get": USERS_ADMIN, "post": USERS_ADMIN}

    def get(self) -> Response:
        query = load_query(PAGE_QUERY)
        page = get_services().users.list(
            current_user(), cursor=query["cursor"], limit=query["limit"]
        )
        return page_response(
            page,
            plural="users",
            schema=USER_PAGE,
            endpoint="users",
            params=given_query("limit", "cursor"),
        )

    def post(self) -> Response:
        users = get_services().users
        actor = current_user()
        users.require_admin(actor)  # before parsing, so a non-admin learns nothing of the rules
        data = load_body(USER)
        user = users.create(actor, **data)
        body = USER.dump(user)
        return json_response(body, 201, {"Location": body["uri"]})


class UserItem(AuthenticatedResource):
    required_scopes = {"get": USERS_ADMIN, "patch": USERS_ADMIN, "delete": USERS_ADMIN}

    def get(self, username: str) -> Response:
        return json_response(USER.dump(get_services().users.get(current_user(), username)))

    def patch(self, username: str) -> Response:
        users = get_services().users
        actor = current_user()
        users.require_self_or_admin(actor, username)
        data = load_body(USER_CHANGE, partial=True)
        return json_response(USER.dump(users.update(actor, username, **data)))

    def delete(self, username: str) -> Response:
        query = load_query(DELETE_QUERY)
        get_services().users.delete(current_user(), username, purge=query["purge"])
        return Response(status=204)
