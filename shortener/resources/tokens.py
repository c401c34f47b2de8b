"""/api/v1.0/tokens and /api/v1.0/tokens/<id>: the calling user's API tokens.

Any credential may manage its user's tokens; a token can only create tokens with a subset of
its own scopes, and acts on other users' tokens (as an admin) only with users:admin.
"""

from __future__ import annotations

from flask_restful import Resource

from ..auth import acting_user, current_credential
from ..declarations import ANY_CREDENTIAL
from ..schemas.pages import page_of
from ..schemas.tokens import TokenListQuery, TokenOwnerQuery, TokenSchema
from .conditional import tag_record
from .http import json_response, services
from .operations import operation

TOKEN = TokenSchema()


def _owner(query) -> str:
    return query["user"] or acting_user().username


def _may_manage(query, **_) -> None:
    """Before the body is read: a 403 says nothing of its rules."""
    services().tokens.require_access(acting_user(), _owner(query))


class TokenCollection(Resource):
    @operation(
        "listTokens",
        "Your API tokens, newest first (admins: ?user= for another user's)",
        scope=ANY_CREDENTIAL,
        query=TokenListQuery,
        response=page_of("tokens", TokenSchema),
        errors=(404,),
        tags=("tokens",),
        etag=True,
    )
    def get(self, query):
        return services().tokens.list(
            acting_user(), owner=_owner(query), cursor=query["cursor"], limit=query["limit"]
        )

    @operation(
        "createToken",
        "Create an API token; its secret is in this answer only",
        scope=ANY_CREDENTIAL,
        query=TokenOwnerQuery,
        guard=_may_manage,
        body=TokenSchema,
        response=TokenSchema,
        status=201,
        errors=(404,),
        links={"getToken": "The token just created.", "revokeToken": "Revoke it."},
        tags=("tokens",),
        etag=True,
        idempotent=True,
        replayable=False,  # the secret is never stored: a repeat answers 409
    )
    def post(self, query, body):
        created = services().tokens.create(
            acting_user(),
            owner=_owner(query),
            name=body["name"],
            scopes=body["scopes"],
            expires_at=body["expires_at"],
            grantable=current_credential().grantable,
        )
        answer = TOKEN.dump(created.record)
        answer["token"] = created.secret  # the only time the secret is ever sent
        response = json_response(answer, 201, {"Location": answer["uri"]})
        tag_record(response, created.record)
        return response


class TokenItem(Resource):
    @operation(
        "getToken", "An API token", scope=ANY_CREDENTIAL, response=TokenSchema, errors=(404,),
        tags=("tokens",), etag=True,
    )  # fmt: skip
    def get(self, token_id):
        return services().tokens.get(acting_user(), token_id)

    @operation(
        "revokeToken",
        "Revoke (delete) an API token",
        scope=ANY_CREDENTIAL,
        status=204,
        errors=(404,),
        tags=("tokens",),
        etag=True,
    )
    def delete(self, token_id, precondition):
        services().tokens.revoke(acting_user(), token_id, precondition=precondition)
