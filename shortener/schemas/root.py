"""The entry point a client starts from."""

from __future__ import annotations

from marshmallow import Schema, fields


class RootSchema(Schema):
    uri = fields.String(metadata={"format": "uri"})
    links = fields.String(metadata={"format": "uri"})
    users = fields.String(metadata={"format": "uri"})
    stats = fields.String(metadata={"format": "uri"})
    tokens = fields.String(metadata={"format": "uri"})
