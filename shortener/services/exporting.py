"""``shortener export`` and ``GET /api/v1.0/links/export``: every link a filter selects, as
CSV or JSON, written as it is read.

Links are read in keyset pages of the collection itself (``LinkService.list``: the same
filters, the same sort, each page its own short read), so 100,000 links never sit in memory
and no transaction stays open while a slow client reads. What comes out imports back with
``shortener import --format csv|json`` (services/importing.py) to the same set of links.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..storage.records import LinkRecord, UserRecord
from .importing import CSV_COLUMNS, TAG_SEPARATOR
from .links import LinkService

EXPORT_FORMATS = ("csv", "json")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# Links read per page: a page is one short indexed read.
BATCH_SIZE = 500


def exported_links(links: LinkService, actor: UserRecord, **selection: Any) -> Iterator[LinkRecord]:
    """Every link ``actor`` may see that ``selection`` (LinkService.list's filter and sort)
    selects, a page at a time."""
    cursor = None
    while True:
        page = links.list(actor, **selection, cursor=cursor, limit=BATCH_SIZE)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def export_chunks(
    records: Iterable[LinkRecord],
    dump: Callable[[LinkRecord], dict[str, Any]],
    *,
    format_name: str,
    with_visits: bool,
) -> Iterator[str]:
    """The export as text chunks: ``dump`` gives a link's representation (LinkSchema);
    without ``with_visits`` its visit_count is left out (an import then starts at 0)."""
    if format_name == "csv":
        return _csv_chunks(records, dump, with_visits)
    if format_name == "json":
        return _json_chunks(records, dump, with_visits)
    raise ValueError(f"format is one of {EXPORT_FORMATS}")


def _csv_chunks(records, dump, with_visits: bool) -> Iterator[str]:
    columns = [name for name in CSV_COLUMNS if with_visits or name != "visit_count"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for number, record in enumerate(records, 1):
        link = dump(record)
        link["tags"] = TAG_SEPARATOR.join(link.get("tags") or ())
        writer.writerow(["" if link.get(name) is None else link[name] for name in columns])
        if number % 100 == 0:
            yield _drained(buffer)
    yield _drained(buffer)


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _json_chunks(records, dump, with_visits: bool) -> Iterator[str]:
    """``{"links": [...]}``, the collection's envelope, one link per line."""
    yield '{"links": ['
    separator = "\n"
    for record in records:
        link = dump(record)
        if not with_visits:
            link.pop("visit_count", None)
        yield separator + json.dumps(link, ensure_ascii=False)
        separator = ",\n"
    yield "\n]}\n"
