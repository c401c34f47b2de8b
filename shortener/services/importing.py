"""``shortener import``: links from our own exports and from other shorteners' exports.

One reader per format turns a file into rows: each row holds the link in the API's field
names (``slug``, ``target``, ``title``, ``tags``, ``redirect_status``, ... plus
``created_at`` and ``visit_count``) and the line it starts on. The caller checks every row
with the API's own schema (schemas/importing.py: never a rule written twice) and
``LinkImport`` writes it through the link service, so an imported link is created like any
other (its revision, its events) but keeps its creation time and the visits counted where it
came from (``imported_visits``, migration 0012).

Which export each format means (README "Import and export"):

- ``csv``: ours (``shortener export --format csv``): a header row naming its columns in any
  order; ``target`` required; ``slug``, ``title``, ``tags`` (``|``-separated),
  ``redirect_status``, ``created_at``, ``visit_count`` optional.
- ``json``: ours: a list of link objects or the collection envelope ``{"links": [...]}``, as
  ``GET /api/v1.0/links``, ``GET /api/v1.0/links/export`` and ``shortener export`` give them.
- ``bitly``: Bitly API v4 ``GET /v4/groups/{group_guid}/bitlinks`` answers (``{"links":
  [...], "pagination": ...}``, or a list of the bitlinks), or a CSV with those fields as
  columns (``link`` or ``id``, ``long_url``, ``title``, ``tags``, ``created_at``, and
  ``clicks`` or ``total_clicks`` when the export has them).
- ``yourls``: the ``yourls_url`` table as CSV with its header row (``keyword``, ``url``,
  ``title``, ``timestamp``, ``ip``, ``clicks``), as phpMyAdmin, ``mysql --batch`` or an
  export plugin writes it; ``timestamp`` is read as UTC.
- ``kutt``: Kutt API v2 ``GET /api/v2/links`` answers (``{"data": [...], "total", ...}``, or
  a list): ``address``, ``target``, ``description``, ``created_at``, ``visit_count``.
- ``shlink``: the Shlink web client's CSV export of short URLs (``createdAt``, ``domain``,
  ``shortCode``, ``shortUrl``, ``longUrl``, ``title``, ``tags`` ``|``-separated,
  ``visits``), or Shlink REST API ``GET /rest/v3/short-urls`` answers (``{"shortUrls":
  {"data": [...]}}``), whose ``meta`` (validSince, validUntil, maxVisits), ``crawlable`` and
  ``forwardQuery`` are kept too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from ..storage import DuplicateKey, import_queries
from ..storage import link_queries as queries
from ..storage.records import LinkRecord, UserRecord
from .errors import InvalidInput, ShortenerError, SlugTaken
from .links import Imported, LinkFields, LinkService

FORMATS = ("csv", "json", "bitly", "yourls", "kutt", "shlink")
CONFLICTS = ("skip", "fail", "overwrite")
# Our CSV's columns, in the order an export writes them.
CSV_COLUMNS = ("slug", "target", "title", "tags", "redirect_status", "created_at", "visit_count")
TAG_SEPARATOR = "|"


class ImportFileError(InvalidInput):
    """The file as a whole cannot be read in the format given (nothing is imported)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One link of the file, in the API's field names, or why it could not be read."""

    line: int
    data: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class CheckedRow:
    """A row as the API's schema loaded it (the caller's ``check``)."""

    fields: LinkFields
    slug: str | None
    imported: Imported
    owner: str | None = None


@dataclass(slots=True)
class Summary:
    imported: int = 0
    skipped: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"imported: {self.imported}, skipped: {self.skipped}, failed: {self.failed}"


# -- reading ---------------------------------------------------------------------------------
def read(text: str, format_name: str) -> list[Row]:
    """Every row of ``text`` in ``format_name``; raises ImportFileError if it is not one."""
    if format_name not in FORMATS:
        raise ImportFileError(f"Unknown format '{format_name}'; one of {', '.join(FORMATS)}.")
    return list(_READERS[format_name](text.removeprefix("\ufeff")))


def _is_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _csv_records(text: str, what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line the record starts on, {lower-cased header: value}) for every non-empty record."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"The file is empty; a {what} starts with its header row.") from None
    except csv.Error as error:
        raise ImportFileError(f"line 1: not CSV ({error}).") from None
    names = [name.strip().lower() for name in header]
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line, {"\0problem": f"not CSV ({error})"}
            line = reader.line_num + 1
            continue
        if any(value.strip() for value in values):
            if len(values) > len(names):
                yield line, {"\0problem": f"{len(values)} values for {len(names)} columns"}
            else:
                yield line, dict(zip(names, values, strict=False))
        line = reader.line_num + 1


def _split_tags(text: str | None) -> list[str]:
    """Tags as exported (``|``-separated; Bitly's CSV also uses commas, which no tag holds)."""
    if not text:
        return []
    return [tag.strip() for tag in re.split(r"[|,]", text) if tag.strip()]


def _number(text: str) -> int | str:
    """A count or a status as a CSV holds it; anything else is left for the schema to refuse."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _slug_of(short_url: str | None) -> str | None:
    """The slug of a short URL (``https://bit.ly/abc``, ``bit.ly/abc``) or a bare slug."""
    if not short_url:
        return None
    text = short_url.strip()
    if "/" not in text:
        return text
    if "://" not in text:
        text = "https://" + text
    return urlsplit(text).path.strip("/") or None


def _instant(value: Any) -> Any:
    """A creation time as another shortener writes it, as RFC 3339 for the schema: Bitly's
    ``+0000``, YOURLS' ``2024-01-02 03:04:05`` (UTC). Anything else is left as it is, for the
    schema to refuse with its own message."""
    if not isinstance(value, str) or not value.strip():
        return value
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _present(data: dict[str, Any]) -> dict[str, Any]:
    """Only the values a source gave (an empty cell is no value)."""
    return {name: value for name, value in data.items() if value not in (None, "")}


def _read_our_csv(text: str) -> Iterator[Row]:
    known = set(CSV_COLUMNS)
    for line, record in _csv_records(text, "CSV export"):
        if "\0problem" in record:
            yield Row(line, problem=record["\0problem"])
            continue
        unknown = sorted(set(record) - known)
        if unknown or "target" not in record:
            raise ImportFileError(
                "line 1: the header must name a 'target' column and only these: "
                f"{', '.join(CSV_COLUMNS)}"
                + (f" (unknown: {', '.join(unknown)})." if unknown else ".")
            )
        data: dict[str, Any] = _present(record)
        if "tags" in record:
            data["tags"] = _split_tags(record["tags"])
        for name in ("redirect_status", "visit_count"):
            if name in data:
                data[name] = _number(data[name])
        yield Row(line, data)


def _json_items(text: str, path: tuple[str, ...]) -> Iterator[tuple[int, Any]]:
    """(line, item) for each item of the list at ``path`` (keys of nested objects) of the
    JSON document ``text``, or of the document itself when it is a list."""
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)
    position = _skip_space(text, 0)
    try:
        if text.startswith("{", position):
            position = _find_list(decoder, text, position, path)
        if not text.startswith("[", position):
            raise ImportFileError(
                "The JSON document is neither a list of links nor an object holding one "
                f"under {'.'.join(path)!r}."
            )
        position = _skip_space(text, position + 1)
        if text.startswith("]", position):
            return
        while True:
            item, end = decoder.raw_decode(text, position)
            yield lines.line_at(position), item
            position = _skip_space(text, end)
            if text.startswith("]", position):
                return
            if not text.startswith(",", position):
                raise ValueError("',' or ']' expected")
            position = _skip_space(text, position + 1)
    except ValueError as error:
        if isinstance(error, ImportFileError):
            raise
        raise ImportFileError(
            f"line {lines.line_at(min(position, len(text)))}: not valid JSON ({error})."
        ) from None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _find_list(decoder: json.JSONDecoder, text: str, position: int, path: tuple[str, ...]) -> int:
    """The position of the value at ``path`` inside the object starting at ``position``."""
    for key in path:
        if not text.startswith("{", position):
            return position
        position = _skip_space(text, position + 1)
        while not text.startswith("}", position):
            name, position = decoder.raw_decode(text, position)
            position = _skip_space(text, position)
            if not text.startswith(":", position):
                raise ValueError("':' expected")
            position = _skip_space(text, position + 1)
            if name == key:
                break
            _, position = decoder.raw_decode(text, position)
            position = _skip_space(text, position)
            if text.startswith(",", position):
                position = _skip_space(text, position + 1)
        else:
            return position
    return position


class _LineCounter:
    """Line numbers of increasing positions, counting each newline once."""

    def __init__(self, text: str) -> None:
        self.text, self.position, self.line = text, 0, 1

    def line_at(self, position: int) -> int:
        if position >= self.position:
            self.line += self.text.count("\n", self.position, position)
            self.position = position
        else:
            return self.text.count("\n", 0, position) + 1
        return self.line


def _read_our_json(text: str) -> Iterator[Row]:
    for line, item in _json_items(text, ("links",)):
        if not isinstance(item, dict):
            yield Row(line, problem="not a link object")
            continue
        yield Row(line, dict(item))


def _mapped_json(text: str, path: tuple[str, ...], mapping: Callable[[dict], dict]):
    for line, item in _json_items(text, path):
        if not isinstance(item, dict):
            yield Row(line, problem="not an object")
            continue
        yield Row(line, _present(mapping(item)))


def _mapped_csv(text: str, what: str, required: str, mapping: Callable[[dict], dict]):
    checked = False
    for line, record in _csv_records(text, what):
        if "\0problem" in record:
            yield Row(line, problem=record["\0problem"])
            continue
        if not checked and required not in record:
            raise ImportFileError(f"line 1: the header of a {what} names a '{required}' column.")
        checked = True
        yield Row(line, _present(mapping(record)))


def _first(record: dict, *names: str) -> Any:
    for name in names:
        if record.get(name) not in (None, ""):
            return record[name]
    return None


def _bitly(link: dict) -> dict:
    tags = link.get("tags")
    clicks = _first(link, "clicks", "total_clicks", "engagements", "total_engagements")
    return {
        "slug": _slug_of(_first(link, "link", "id", "bitlink")),
        "target": link.get("long_url"),
        "title": link.get("title"),
        "tags": tags if isinstance(tags, list) else _split_tags(tags),
        "created_at": _instant(link.get("created_at")),
        "visit_count": _number(clicks) if isinstance(clicks, str) else clicks,
    }


def _read_bitly(text: str) -> Iterator[Row]:
    if _is_json(text):
        return _mapped_json(text, ("links",), _bitly)
    return _mapped_csv(text, "Bitly CSV", "long_url", _bitly)


def _yourls(record: dict) -> dict:
    return {
        "slug": record.get("keyword"),
        "target": record.get("url"),
        "title": record.get("title"),
        "created_at": _instant(record.get("timestamp")),
        "visit_count": _number(record.get("clicks") or ""),
    }


def _read_yourls(text: str) -> Iterator[Row]:
    return _mapped_csv(text, "YOURLS yourls_url CSV", "url", _yourls)


def _kutt(link: dict) -> dict:
    return {
        "slug": link.get("address"),
        "target": link.get("target"),
        "title": link.get("description"),
        "created_at": _instant(link.get("created_at")),
        "visit_count": link.get("visit_count"),
    }


def _read_kutt(text: str) -> Iterator[Row]:
    if not _is_json(text):
        raise ImportFileError("A Kutt export is the JSON of its API's GET /api/v2/links.")
    return _mapped_json(text, ("data",), _kutt)


def _shlink(url: dict) -> dict:
    tags = url.get("tags")
    visits = _first(url, "visits", "visitscount", "visitsCount")
    summary = url.get("visitsSummary")
    if isinstance(summary, dict):
        visits = summary.get("total", visits)
    meta = url.get("meta") if isinstance(url.get("meta"), dict) else {}
    data = {
        "slug": _first(url, "shortCode", "shortcode") or _slug_of(_first(url, "shorturl")),
        "target": _first(url, "longUrl", "longurl"),
        "title": url.get("title"),
        "tags": tags if isinstance(tags, list) else _split_tags(tags),
        "created_at": _instant(_first(url, "dateCreated", "createdAt", "createdat")),
        "visit_count": _number(visits) if isinstance(visits, str) else visits,
        "valid_since": _instant(meta.get("validSince")),
        "valid_until": _instant(meta.get("validUntil")),
        "max_visits": meta.get("maxVisits"),
    }
    for ours, theirs in (("crawlable", "crawlable"), ("forward_query", "forwardQuery")):
        if isinstance(url.get(theirs), bool):
            data[ours] = url[theirs]
    return data


def _read_shlink(text: str) -> Iterator[Row]:
    if _is_json(text):
        return _mapped_json(text, ("shortUrls", "data"), _shlink)
    return _mapped_csv(text, "Shlink CSV export", "longurl", _shlink)


_READERS: dict[str, Callable[[str], Iterable[Row]]] = {
    "csv": _read_our_csv,
    "json": _read_our_json,
    "bitly": _read_bitly,
    "yourls": _read_yourls,
    "kutt": _read_kutt,
    "shlink": _read_shlink,
}


# -- writing ---------------------------------------------------------------------------------
def problem_text(error: ShortenerError) -> str:
    """One line for a row's problem: the detail, or each field's messages."""
    if not error.errors:
        return error.detail
    return "; ".join(f"{name}: {message}" for name, message in _flattened(error.errors))


def _flattened(errors: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(errors, dict):
        for name, problems in errors.items():
            yield from _flattened(problems, f"{prefix}{name}.")
    elif isinstance(errors, list) and all(isinstance(item, str) for item in errors):
        yield prefix.rstrip("."), " ".join(errors)
    elif isinstance(errors, list):
        for index, problems in enumerate(errors):
            yield from _flattened(problems, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), str(errors)


# Rows written in one transaction: one commit per chunk instead of per link (an import of
# 100,000 links), short enough not to hold SQLite's write lock for long.
CHUNK_SIZE = 100


@dataclass(frozen=True, slots=True)
class Pending:
    """A checked row waiting for its chunk to be written."""

    line: int
    owner: UserRecord
    row: CheckedRow


class LinkImport:
    """Writes checked rows through the link service, a chunk per transaction: a slug already
    there (or, for a row without a slug, the owner's link to the same target) is skipped,
    failed or overwritten, so running an import again imports nothing twice."""

    def __init__(self, links: LinkService, *, on_conflict: str, dry_run: bool) -> None:
        if on_conflict not in CONFLICTS:
            raise ValueError(f"on_conflict is one of {CONFLICTS}")
        self.links, self.on_conflict, self.dry_run = links, on_conflict, dry_run
        self.summary = Summary()
        self._planned: set[str] = set()  # a dry run's slugs and targets, as if written

    def failed(self) -> None:
        """A row that could not be read or checked."""
        self.summary.failed += 1

    def write(self, chunk: list[Pending]) -> dict[int, str]:
        """Imports a chunk of rows; the problem of each row that failed, by line."""
        problems: dict[int, str] = {}
        prepared: list[tuple[Pending, LinkFields]] = []
        for pending in chunk:
            try:  # checks across fields, and a password hashed, outside the transaction
                prepared.append((pending, self.links.prepare(pending.row.fields)))
            except ShortenerError as error:
                problems[pending.line] = problem_text(error)
        outcomes = None
        if not self.dry_run:
            try:
                outcomes = self._write_chunk(prepared, bulk=True)
            except (ShortenerError, DuplicateKey):
                outcomes = None  # a slug taken meanwhile: all undone, each row again alone
        if outcomes is None:
            outcomes = self._write_chunk(prepared, bulk=False)
        overwrites: list[tuple[Pending, LinkRecord]] = []
        for pending, outcome in outcomes:
            if isinstance(outcome, ShortenerError):
                problems[pending.line] = problem_text(outcome)
            elif isinstance(outcome, LinkRecord):
                overwrites.append((pending, outcome))
            elif outcome == "imported":
                self.summary.imported += 1
            else:
                self.summary.skipped += 1
        for pending, existing in overwrites:
            try:
                self._overwrite(pending, existing)
            except ShortenerError as error:
                problems[pending.line] = problem_text(error)
            else:
                self.summary.imported += 1
        self.summary.failed += len(problems)
        return problems

    def _write_chunk(
        self, prepared: list[tuple[Pending, LinkFields]], *, bulk: bool
    ) -> list[tuple[Pending, str | LinkRecord | ShortenerError]]:
        """Every row of the chunk in one transaction, its link events (history, webhooks)
        published together at its end. ``bulk``: the rows that one query per chunk shows
        to be free (no link at their slug, or to their target) are created without a
        savepoint each, as POST /links/batch creates (services/batches.py); any of them
        failing all the same raises, undoing the chunk. The others (and, without ``bulk``,
        every row) go one by one, each in savepoints, where a row fails alone."""
        session = self.links.database.read if self.dry_run else self.links.database.write
        outcomes: list[tuple[Pending, str | LinkRecord | ShortenerError]] = []
        with session() as connection, self.links.events.gathered(connection) as gathered:
            free = self._free_rows(connection, prepared) if bulk else set()
            for index, (pending, fields) in enumerate(prepared):
                if index in free:
                    row = pending.row
                    self.links.create_on(
                        connection,
                        pending.owner,
                        fields,
                        slug=row.slug,
                        imported=row.imported,
                        savepoints=False,
                    )
                    outcomes.append((pending, "imported"))
                    continue
                published = len(gathered)
                try:
                    outcomes.append((pending, self._write_on(connection, pending, fields)))
                except ShortenerError as error:
                    del gathered[published:]  # the row's writes were rolled back
                    outcomes.append((pending, error))
        return outcomes

    @staticmethod
    def _free_rows(connection: Connection, prepared: list[tuple[Pending, LinkFields]]) -> set[int]:
        """The indexes of the rows nothing conflicts with: no link at their slug (nor an
        earlier row of the chunk), or, without a slug, none of the owner's to their target.
        Two queries for the chunk instead of one per row."""
        slugs = [pending.row.slug for pending, _ in prepared if pending.row.slug is not None]
        taken = LinkService.taken_slugs(connection, slugs)
        targets: dict[int, list[str]] = {}
        for pending, _ in prepared:
            if pending.row.slug is None:
                targets.setdefault(pending.owner.id, []).append(pending.row.fields.target)
        owned = {
            (owner_id, target)
            for owner_id, wanted in targets.items()
            for target in import_queries.owned_targets(connection, owner_id, wanted)
        }
        free: set[int] = set()
        for index, (pending, _) in enumerate(prepared):
            row = pending.row
            if row.slug is not None:
                if row.slug not in taken:
                    free.add(index)
                taken.add(row.slug)
            else:
                key = (pending.owner.id, row.fields.target)
                if key not in owned:
                    free.add(index)
                owned.add(key)
        return free

    def _write_on(
        self, connection: Connection, pending: Pending, fields: LinkFields
    ) -> str | LinkRecord:
        """``imported``, ``skipped``, or the link an overwrite replaces (after the chunk)."""
        owner, row = pending.owner, pending.row
        for _ in range(2):  # another writer may take the slug between our read and insert
            existing = self._existing(connection, owner, row)
            if existing is not None:
                return self._conflict(owner, row, existing)
            if self.dry_run:
                key = row.slug if row.slug is not None else f"{owner.id} {row.fields.target}"
                if key in self._planned:
                    return self._conflict(owner, row, None)
                self._planned.add(key)
                return "imported"
            try:
                self.links.create_on(
                    connection, owner, fields, slug=row.slug, imported=row.imported
                )
            except SlugTaken:
                continue
            return "imported"
        raise SlugTaken(f"The slug '{row.slug}' is already taken.")

    @staticmethod
    def _existing(connection: Connection, owner: UserRecord, row: CheckedRow) -> LinkRecord | None:
        if row.slug is not None:
            return queries.find_by_slug(connection, row.slug)
        same = queries.same_target(connection, owner.id, row.fields.target)
        return same[0] if same else None

    def _conflict(
        self, owner: UserRecord, row: CheckedRow, existing: LinkRecord | None
    ) -> str | LinkRecord:
        slug = row.slug if existing is None else existing.slug
        what = f"the slug '{slug}'" if row.slug is not None else f"a link to {row.fields.target}"
        if existing is not None and existing.owner_id != owner.id:
            if self.on_conflict == "skip":
                return "skipped"
            raise SlugTaken(f"The slug '{slug}' is taken by another user.")
        if self.on_conflict == "skip":
            return "skipped"
        if self.on_conflict == "fail":
            raise SlugTaken(f"There is {what} already (--on-conflict fail).")
        if self.dry_run or existing is None:
            return "imported"
        return existing

    def _overwrite(self, pending: Pending, existing: LinkRecord) -> None:
        """PUT's replace of the link's fields (a revision if any changed), then the source's
        creation time and visits."""
        row = pending.row
        self.links.replace(pending.owner, existing.slug, row.fields)
        with self.links.changes.writing() as connection:
            import_queries.set_imported(
                connection,
                existing.id,
                created_at=row.imported.created_at,
                visits=row.imported.visits,
            )


__all__ = [
    "CONFLICTS",
    "CHUNK_SIZE",
    "CSV_COLUMNS",
    "FORMATS",
    "CheckedRow",
    "ImportFileError",
    "LinkImport",
    "Pending",
    "Row",
    "Summary",
    "read",
]
