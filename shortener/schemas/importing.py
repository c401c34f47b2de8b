"""Import and export: a link as an import file holds it (services/importing.py), checked by
the API's own rules, plus when it was created and the visits counted where it came from; and
the query of GET /api/v1.0/links/export (services/exporting.py)."""

from __future__ import annotations

from marshmallow import RAISE, fields, validate

from ..services.exporting import EXPORT_FORMATS
from .fields import Instant, QueryBoolean
from .link_filters import LinkListQuery
from .links import LinkSchema

# visit_count is a BIGINT.
MAX_IMPORTED_VISITS = 2**62


class ImportedLinkSchema(LinkSchema):
    """LinkSchema's fields and rules, with ``created_at`` and ``visit_count`` loadable: the
    dump-only fields an import keeps. The other fields the server writes are read past
    (``without_server_fields``)."""

    def without_server_fields(self, data: dict) -> dict:
        """``data`` without the fields only the server writes (uri, short_url, status, owner,
        ...: dump-only here), so an API page or an export imports as it is."""
        return {
            name: value
            for name, value in data.items()
            if name not in self.fields or not self.fields[name].dump_only
        }

    created_at = Instant(allow_none=True, load_default=None)
    visit_count = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(0, MAX_IMPORTED_VISITS),
    )


class LinkExportQuery(LinkListQuery):
    """GET /api/v1.0/links/export: the collection's filters and sort (never a page: every
    link they select), a format, and whether visit counts go with the links."""

    class Meta:
        unknown = RAISE
        exclude = ("limit", "cursor")

    format = fields.String(
        load_default="json",
        validate=validate.OneOf(EXPORT_FORMATS),
        metadata={
            "description": 'json: {"links": [...]}, each as GET /links/{slug} shows it; csv: '
            "a header row, then slug, target, title, tags (|-separated), redirect_status, "
            "created_at (and visit_count)."
        },
    )
    with_visits = QueryBoolean(
        load_default=False,
        metadata={"description": "Include each link's visit_count (an import keeps it)."},
    )
