"""What the batch operations on links take and answer (resources/batches.py). Each link body
of a batch is a POST /links body, loaded on its own by NewLinkSchema (one bad item fails
alone); changes are a PATCH /links/<slug> body; a filter takes the collection's filters."""

from __future__ import annotations

import copy

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..services.batches import MAX_BATCH_ITEMS
from .fields import StrictBoolean
from .link_filters import LinkFilterSchema
from .links import LinkSchema
from .new_link import NewLinkSchema


def _at_most(what: str) -> validate.Length:
    return validate.Length(
        1,
        MAX_BATCH_ITEMS,
        error=f"Give 1 to {MAX_BATCH_ITEMS:,} {what}; a larger batch is refused, never cut: "
        "split it.",
    )


class ItemsOf(fields.List):
    """A batch's list of objects, documented as a list of ``inner`` but kept as sent: each
    item is loaded on its own (resources/batches.py), so that one bad item fails alone."""

    def _deserialize(self, value, attr, data, **kwargs) -> list:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return list(value)


ATOMIC = StrictBoolean(
    load_default=False,
    metadata={
        "description": "All or nothing: if any item fails, nothing is stored and the answer is "
        "422 (an invalid item) or 409 (e.g. a slug taken), with every failing item's problem "
        "in its results."
    },
)


class LinkBatchSchema(Schema):
    """POST /links/batch."""

    class Meta:
        unknown = RAISE

    links = ItemsOf(
        fields.Nested(NewLinkSchema),
        required=True,
        validate=_at_most("links"),
        metadata={
            "description": f"Up to {MAX_BATCH_ITEMS:,} POST /links bodies.",
            "example": [
                {"target": "https://example.com/a", "title": "A"},
                {"target": "https://example.com/b", "slug": "bee", "find_if_exists": True},
            ],
        },
    )
    atomic = copy.deepcopy(ATOMIC)


def _each_once(slugs: list[str]) -> None:
    repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    if repeated:
        raise ValidationError(f"Give each slug once: {', '.join(repeated)}.")


class LinkSelectionSchema(Schema):
    """DELETE /links/batch: which links, by slug or by the collection's filters."""

    class Meta:
        unknown = RAISE

    slugs = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        validate=[_at_most("slugs"), _each_once],
        metadata={
            "description": "Your links' slugs; a slug with no link of yours fails alone (404).",
            "example": ["docs"],
        },
    )
    filter = fields.Nested(
        LinkFilterSchema,
        metadata={
            "description": f"The links GET /api/v1.0/links shows with these filters; more than "
            f"{MAX_BATCH_ITEMS:,} is refused (422)."
        },
    )
    dry_run = StrictBoolean(
        load_default=False,
        metadata={"description": "Report what would happen to each link, and change nothing."},
    )
    atomic = copy.deepcopy(ATOMIC)

    @validates_schema
    def _one_selection(self, data, **kwargs) -> None:
        if ("slugs" in data) == ("filter" in data):
            raise ValidationError('Give either "slugs" or "filter".')


class PartialNested(fields.Nested):
    """A nested PATCH body: loaded partially even inside a body that is not."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=True, **kwargs)


class LinkBatchChangeSchema(LinkSelectionSchema):
    """PATCH /links/batch: the selection, and the changes PATCH /links/<slug> would take."""

    changes = PartialNested(
        LinkSchema(partial=True),
        required=True,
        metadata={
            "description": "A PATCH /api/v1.0/links/{slug} body (not the slug).",
            "example": {"title": "Changed"},
        },
    )


class BatchItemSchema(Schema):
    index = fields.Integer(
        required=True,
        metadata={"description": "The item's place in links, slugs, or the filter's selection."},
    )
    status = fields.Integer(
        required=True,
        metadata={
            "description": "What a single request would have answered: 201 created, 200 found "
            "(find_if_exists) or changed, 204 deleted, or the problem's status."
        },
    )
    slug = fields.String(metadata={"description": "Changes and deletions: the selected slug."})
    link = fields.Nested(
        LinkSchema,
        metadata={"description": "The link written or found; deleted: as it was."},
    )
    changes = fields.Dict(
        metadata={"description": 'Changes: each changed field as {"field": [old, new]}.'}
    )
    problem = fields.Dict(
        metadata={
            "description": "Why the item failed: an RFC 9457 problem, as a single "
            "request would have answered it (type, title, status, detail, errors)."
        }
    )


class BatchResultsSchema(Schema):
    results = fields.List(
        fields.Nested(BatchItemSchema),
        required=True,
        metadata={"description": "One per item, in the order of the request (or selection)."},
    )
    dry_run = fields.Boolean(metadata={"description": "True: nothing was changed."})
