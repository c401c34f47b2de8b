"""A link revision (one change of a link), and the parameters of the history collections."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..services.link_events import CREATED, DELETED, TOKEN, UPDATED
from ..services.slugs import SLUG_PATTERN
from ..storage.history_queries import RevisionRecord
from .fields import URI, Instant, Matches, absolute_uri
from .pages import PageQuery


def _by(revision: RevisionRecord) -> str | None:
    if revision.by_username is None:
        return None
    return absolute_uri("user", username=revision.by_username)


def _via(revision: RevisionRecord) -> str:
    if revision.via == TOKEN:
        return absolute_uri("token", token_id=str(revision.token_id))
    return revision.via


class RevisionSchema(Schema):
    at = Instant(dump_only=True, metadata={"description": "When the change was made."})
    by = fields.Function(
        _by,
        dump_only=True,
        allow_none=True,
        metadata={
            **URI,
            "description": "The user who made it, or for whom the command line made it (an "
            "import names the links' owner); null for the operator's own changes.",
        },
    )
    via = fields.Function(
        _via,
        dump_only=True,
        metadata={
            "type": "string",
            "description": "How: 'password' (HTTP Basic), the URI of the API token used, or "
            "'cli' (the command line).",
        },
    )
    event = fields.String(
        dump_only=True,
        validate=validate.OneOf((CREATED, UPDATED, DELETED)),
        metadata={"description": "link.created, link.updated or link.deleted."},
    )
    slug = fields.String(dump_only=True, metadata={"description": "The link's slug."})
    changes = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw(allow_none=True), validate=validate.Length(equal=2)),
        dump_only=True,
        metadata={
            "description": "{field: [old, new]} of the fields changed, as in the link's "
            "representation. Created: every field with a value, as [null, value]; deleted: "
            "[value, null]. A password never appears, only has_password."
        },
    )


class HistoryQuery(PageQuery):
    class Meta:
        unknown = RAISE

    slug = fields.String(
        validate=Matches(SLUG_PATTERN.pattern, error="Not a slug."),
        metadata={"description": "Only the revisions of links that had this slug."},
    )
