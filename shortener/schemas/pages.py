"""The one envelope every collection uses: ``{"uri", "<plural>": [...], "next"}``."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .fields import QueryInteger


class PageQuery(Schema):
    """The parameters every collection takes; collections extend it with their filters."""

    limit = QueryInteger(load_default=50, validate=validate.Range(1, 1000))
    cursor = fields.String(
        load_default=None, metadata={"description": "Opaque; copy it from a 'next' link."}
    )


def page_schema(plural: str, item_schema: type[Schema]) -> Schema:
    return Schema.from_dict(
        {
            "uri": fields.String(metadata={"format": "uri"}),
            plural: fields.List(fields.Nested(item_schema)),
            "next": fields.String(allow_none=True, metadata={"format": "uri"}),
        },
        name=f"{item_schema.__name__.removesuffix('Schema')}Page",
    )()
