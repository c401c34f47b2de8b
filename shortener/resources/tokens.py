"""/api/v1.0/tokens and /api/v1.0/tokens/<id>: the calling user's API tokens.

Any credential may manage its user's tokens; a token can only create tokens with a subset of
its own scopes, and acts on other users' tokens (as an admin) only with users:admin.
"""

from __future__ import annotations

from flask import Response

from ..auth import acting_user, current_credential
from ..schemas.pages import page_schema
from ..schemas.tokens import TokenListQuery, TokenOwnerQuery, TokenSchema
from .authenticated import AuthenticatedResource
from .http import given_query, json_response, load_body, load_query, page_response
from .http import services as get_services

TOKEN = TokenSchema()
TOKEN_PAGE = page_schema("tokens", TokenSchema)
TOKEN_LIST_QUERY = TokenListQuery()
TOKEN_OWNER_QUERY = TokenOwnerQuery()


class TokenCollection(AuthenticatedResource):
    required_scopes = {"get": None, "post": None}

    def get(self) -> Response:
        query = load_query(TOKEN_LIST_QUERY)
        actor = acting_user()
        page = get_services().tokens.list(
            actor,
            owner=query["user"] or actor.username,
            cursor=query["cursor"],
            limit=query["limit"],
        )
        return page_response(
            page,
            plural="tokens",
            schema=TOKEN_PAGE,
            endpoint="tokens",
            params=given_query("user", "limit", "cursor"),
        )

    def post(self) -> Response:
        tokens = get_services().tokens
        actor = acting_user()
        owner = load_query(TOKEN_OWNER_QUERY)["user"] or actor.username
        tokens.require_access(actor, owner)  # before parsing: a 403 says nothing of the body
        data = load_body(TOKEN)
        created = tokens.create(
            actor,
            owner=owner,
            name=data["name"],
            scopes=data.get("scopes"),
            expires_at=data.get("expires_at"),
            grantable=current_credential().grantable,
        )
        body = TOKEN.dump(created.record)
        body["token"] = created.secret  # the only time the secret is ever sent
        return json_response(body, 201, {"Location": body["uri"]})


class TokenItem(AuthenticatedResource):
    required_scopes = {"get": None, "delete": None}

    def get(self, token_id: str) -> Response:
        return json_response(TOKEN.dump(get_services().tokens.get(acting_user(), token_id)))

    def delete(self, token_id: str) -> Response:
        get_services().tokens.revoke(acting_user(), token_id)
        return Response(status=204)
