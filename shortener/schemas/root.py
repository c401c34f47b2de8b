"""The entry point a client starts from."""

from __future__ import annotations

from marshmallow import Schema, fields


def _uri(description: str, **kwargs) -> fields.String:
    return fields.String(metadata={"format": "uri", "description": description}, **kwargs)


def _template(description: str) -> fields.String:
    return fields.String(
        required=True, metadata={"format": "uri-template", "description": description}
    )


class RootSchema(Schema):
    uri = _uri("This document.", required=True)
    links = _uri("Your links.", required=True)
    users = _uri("Every user (admins).", required=True)
    stats = _uri("Visits of every link (admins).", required=True)
    history = _uri("Changes of every link, deleted ones included (admins).", required=True)
    tokens = _uri("Your API tokens.", required=True)
    webhooks = _uri("Your webhooks (admins: everyone's).", required=True)
    openapi = _uri("The OpenAPI 3.1 document of this API.", required=True)
    docs = _uri("The interactive documentation (Swagger UI).", required=True)
    link = _template("RFC 6570 template of a link's URI: fill in {slug}.")
    user = _template("RFC 6570 template of a user's URI: fill in {username}.")
    me = _uri("Your own user; present when the request carries valid credentials.")
