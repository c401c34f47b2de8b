"""/api/v1.0/links/batch: create, change or delete up to 1,000 links in one request
(services/batches.py). ``batch`` is reserved as a slug (shortener/__init__.py), so this path
never hides a link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_restful import Resource

from ..auth import current_user
from ..problems import problem_of
from ..schemas.batches import (
    BatchResultsSchema,
    LinkBatchChangeSchema,
    LinkBatchSchema,
    LinkSelectionSchema,
)
from ..schemas.fields import uri_templates
from ..schemas.link_filters import link_filter_of
from ..schemas.links import LinkSchema
from ..schemas.new_link import NewLinkSchema
from ..services.batches import MAX_BATCH_ITEMS, ItemResult, NewLink
from ..services.errors import BatchRefused, InvalidInput
from ..services.tokens import LINKS_WRITE
from .http import loaded, services
from .links import link_fields
from .operations import operation

LIMITS = (
    f"At most {MAX_BATCH_ITEMS:,} items (422 past it) and SHORTENER_BATCH_MAX_CONTENT_LENGTH "
    "bytes of body (413 past it): a larger batch is refused, never cut."
)


def _larger_body() -> None:
    """A batch's body may be larger than any other (SHORTENER_BATCH_MAX_CONTENT_LENGTH)."""
    settings = current_app.extensions["shortener.settings"]
    request.max_content_length = settings.batch_max_content_length


def _new_link(schema: NewLinkSchema, index: int, body: Any) -> NewLink | InvalidInput:
    """One item of a POST batch, loaded as POST /links loads its body; a bad one fails alone."""
    try:
        data = loaded(schema, body, what=f"Link {index}")
    except InvalidInput as error:
        return error
    return NewLink(
        link_fields(data),
        slug=data.get("slug"),
        find_if_exists=data["find_if_exists"],
    )


def _selection(body: dict) -> list[str]:
    if "slugs" in body:
        return body["slugs"]
    return services().batches.select(current_user(), link_filter_of(body["filter"]))


_LINK = LinkSchema()  # made once: making a schema costs more than dumping a link


def _changes(result: ItemResult) -> dict[str, list[Any]]:
    """What a change did to the link's representation: {field: [old, new]}."""
    with uri_templates():
        old, new = _LINK.dump(result.before), _LINK.dump(result.link)
    return {
        name: [old.get(name), value]
        for name, value in new.items()
        if name != "updated_at" and old.get(name) != value
    }


def _item(result: ItemResult) -> dict[str, Any]:
    item: dict[str, Any] = {"index": result.index, "status": result.status}
    if result.slug is not None:
        item["slug"] = result.slug
    if result.problem is not None:
        item["problem"] = problem_of(result.problem)
        return item
    item["link"] = result.link
    if result.before is not None:
        item["changes"] = _changes(result)
    return item


def _answer(run: Callable[[], list[ItemResult]], dry_run: bool | None = None) -> dict[str, Any]:
    """The results in order; an atomic batch's refusal with every failing item's problem."""
    try:
        results = run()
    except BatchRefused as refusal:
        refusal.extensions = {"results": [_item(result) for result in refusal.results]}
        raise
    answer: dict[str, Any] = {"results": [_item(result) for result in results]}
    if dry_run is not None:
        answer["dry_run"] = dry_run
    return answer


class LinkBatch(Resource):
    @operation(
        "createLinks",
        "Create up to 1,000 links in one request",
        description="Each item is a POST /api/v1.0/links body (find_if_exists included) and "
        "succeeds or fails on its own; results come in input order. " + LIMITS,
        scope=LINKS_WRITE,
        body=LinkBatchSchema,
        response=BatchResultsSchema,
        errors=(409,),
        guard=_larger_body,
        tags=("links",),
        idempotent=True,
    )
    def post(self, body):
        schema = NewLinkSchema()  # one for every item: making one costs more than a load
        items = [_new_link(schema, index, item) for index, item in enumerate(body["links"])]
        return _answer(
            lambda: services().batches.create(current_user(), items, atomic=body["atomic"])
        )

    @operation(
        "updateLinks",
        "Change up to 1,000 links at once, chosen by slug or by the collection's filters",
        description="The same changes to every selected link, as PATCH /api/v1.0/links/{slug} "
        "makes them; each link succeeds or fails on its own. " + LIMITS,
        scope=LINKS_WRITE,
        body=LinkBatchChangeSchema,
        response=BatchResultsSchema,
        errors=(409,),
        guard=_larger_body,
        tags=("links",),
    )
    def patch(self, body):
        changes = body["changes"]
        if "slug" in changes:
            raise InvalidInput(
                "A batch cannot change slugs; they are part of the links' URIs.",
                errors={"changes.slug": ["Cannot be changed."]},
            )
        if not changes:
            raise InvalidInput(
                "Give at least one field to change.",
                errors={"changes": ["Give at least one field to change."]},
            )
        slugs = _selection(body)
        return _answer(
            lambda: services().batches.update(
                current_user(), slugs, changes, atomic=body["atomic"], dry_run=body["dry_run"]
            ),
            body["dry_run"],
        )

    @operation(
        "deleteLinks",
        "Delete up to 1,000 links at once, chosen by slug or by the collection's filters",
        description="Each selected link is deleted with its visits, as DELETE "
        "/api/v1.0/links/{slug} does, on its own. " + LIMITS,
        scope=LINKS_WRITE,
        body=LinkSelectionSchema,
        response=BatchResultsSchema,
        errors=(409,),
        guard=_larger_body,
        tags=("links",),
    )
    def delete(self, body):
        slugs = _selection(body)
        return _answer(
            lambda: services().batches.delete(
                current_user(), slugs, atomic=body["atomic"], dry_run=body["dry_run"]
            ),
            body["dry_run"],
        )
