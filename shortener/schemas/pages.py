"""The one envelope every collection uses: ``{"uri", "<plural>": [...], "next"}``, and the
parameters every collection takes."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .fields import QueryInteger


class PageQuery(Schema):
    """The parameters every collection takes; collections extend it with their filters."""

    limit = QueryInteger(load_default=50, validate=validate.Range(1, 1000))
    # Opaque, but always unpadded base64url: the document says so (any other string is 400).
    cursor = fields.String(
        load_default=None,
        metadata={
            "description": "Opaque; copy it from a 'next' link.",
            "pattern": "^[A-Za-z0-9_-]+$",
        },
    )


class PageSchema(Schema):
    """The one envelope every collection uses: ``{"uri", "<plural>": [...], "next"}``."""

    plural: str = ""
    item_schema: type[Schema] = Schema


def page_of(plural: str, item_schema: type[Schema]) -> type[PageSchema]:
    name = f"{item_schema.__name__.removesuffix('Schema')}Page"
    return type(
        name,
        (PageSchema,),
        {
            "plural": plural,
            "item_schema": item_schema,
            "uri": fields.String(
                required=True, metadata={"format": "uri", "description": "This page."}
            ),
            plural: fields.List(fields.Nested(item_schema), required=True),
            "next": fields.String(
                required=True,
                allow_none=True,
                metadata={"format": "uri", "description": "The next page; null on the last."},
            ),
        },
    )
