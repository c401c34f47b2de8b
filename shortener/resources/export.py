"""/api/v1.0/links/export: every link the collection's filters select, as CSV or JSON,
streamed (services/exporting.py)."""

from __future__ import annotations

from flask import Response, stream_with_context
from flask_restful import Resource

from ..auth import current_user
from ..schemas.fields import uri_templates
from ..schemas.importing import LinkExportQuery
from ..schemas.link_filters import link_filter_of
from ..schemas.links import LinkSchema
from ..services.exporting import CONTENT_TYPES, export_chunks, exported_links
from ..services.importing import CSV_COLUMNS
from ..services.tokens import LINKS_READ
from .http import services
from .operations import operation


def export_stream(actor, query: dict):
    """The export's text chunks for ``actor``: read, dumped and written a page at a time."""
    # CSV holds only its columns: no URIs to build for it.
    schema = LinkSchema(only=CSV_COLUMNS) if query["format"] == "csv" else LinkSchema()
    records = exported_links(
        services().links, actor, link_filter=link_filter_of(query), sort=query["sort"]
    )
    templates: dict = {}  # each URI built through the URL map once for the whole export

    def dump(record):
        with uri_templates(templates):
            return schema.dump(record)

    return export_chunks(
        records, dump, format_name=query["format"], with_visits=query["with_visits"]
    )


class LinkExport(Resource):
    @operation(
        "exportLinks",
        "Every link the collection's filters select, as CSV or JSON (streamed)",
        description="Takes the filters and sort of GET /links (no page: every link they "
        'select). `format=json` (default) answers `{"links": [...]}` with each link as GET '
        "/links/{slug} shows it; `format=csv` a header row, then one link a row. Both import "
        "back with `shortener import --format json|csv` to the same set of links. "
        "`with_visits=true` keeps each link's visit_count. Passwords are never exported.",
        scope=LINKS_READ,
        query=LinkExportQuery,
        content_type=tuple(CONTENT_TYPES.values()),
        headers=("Content-Disposition",),
        response_description="The links, streamed.",
        tags=("links",),
    )
    def get(self, query):
        chunks = export_stream(current_user(), query)
        format_name = query["format"]
        return Response(
            stream_with_context(chunks),
            content_type=CONTENT_TYPES[format_name],
            headers={"Content-Disposition": f'attachment; filename="links.{format_name}"'},
        )
