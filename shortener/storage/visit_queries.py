"""Queries on visits: batched recording, newest-first pages, and reads of the hourly rollups.

Recording is the write path of every visit, so it stays close to the driver: the counts and
rollups of a batch are added up in Python, and rows go out through the driver's own
``executemany`` (SQLite) or ``COPY`` (PostgreSQL), with no per-row SQLAlchemy parameter
processing. Each visit carries a unique ``uid``: a batch written twice (a redelivery, a retry
after a lost commit acknowledgement) inserts only the visits not there yet, and only those
are counted.

The rollups hold as few rows a visit as the stats allow, since each row is an upsert into an
index (on SQLite, about a tenth of a visit's cost each): the ``total`` row of a visit is kept
under the URL it was sent to (so the ``target`` breakdown costs no row of its own; "" for
visits written before that was recorded), and a visit without a referrer adds no
``referrer`` row (the direct visits are the total less the referred ones).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Select, func, literal, select, tuple_

from .errors import DatabaseUnavailable
from .keyset import newest_first
from .records import VisitRecord
from .tables import links, visit_rollups, visits

BOTS_INCLUDE, BOTS_EXCLUDE, BOTS_ONLY = "include", "exclude", "only"
DIMENSIONS = ("total", "browser", "os", "referrer", "target", "rule", "variant", "country")
# Breakdowns read from the rows of another dimension (see the module's docstring).
_STORED_AS = {"target": "total"}
# SQLite accepts 32,766 parameters a statement; the uid lookups stay well below.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class NewVisit:
    link_id: int
    visited_at: datetime
    referrer: str | None
    user_agent: str | None
    browser: str | None
    os: str | None
    is_bot: bool
    ip: str | None
    referrer_host: str | None
    uid: str | None = None  # None: a fresh one is given (a visit that is never redelivered)
    # Where the visitor was sent (None: the link's target, filled in when written), by which
    # rule or variant (indexes), and the country (migration 0011).
    target_used: str | None = None
    rule: int | None = None
    variant: int | None = None
    country: str | None = None


_VISIT_COLUMNS = (
    "uid, link_id, visited_at, referrer, user_agent, browser, os, is_bot, ip, "
    "target_used, rule, variant, country"
)
_ADD_VISITS = {
    "sqlite": "UPDATE links SET visit_count = visit_count + ? WHERE id = ?",
    "postgresql": "UPDATE links SET visit_count = visit_count + %s WHERE id = %s",
}
_ROLLUP_UPSERT = (
    "INSERT INTO visit_rollups (link_id, dimension, hour, value, is_bot, visits) "
    "VALUES ({marks}) ON CONFLICT (link_id, dimension, hour, value, is_bot) "
    "DO UPDATE SET visits = visit_rollups.visits + excluded.visits"
)
_ROLLUP_UPSERTS = {
    "sqlite": _ROLLUP_UPSERT.format(marks=", ".join("?" * 6)),
    "postgresql": _ROLLUP_UPSERT.format(marks=", ".join(["%s"] * 6)),
}
_SQLITE_INSERT = (
    f"INSERT INTO visits ({_VISIT_COLUMNS}) VALUES ({', '.join('?' * 13)}) "
    "ON CONFLICT (uid) DO NOTHING"
)
# The batch is copied into a temporary table, then moved into visits in one statement that
# says which rows were new; a concurrent writer of the same uid makes it wait, then skip.
_PG_BATCH_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS visit_batch (ord integer, uid text, link_id bigint, "
    "visited_at timestamp, referrer text, user_agent text, browser text, os text, "
    "is_bot boolean, ip text, target_used text, rule smallint, variant smallint, country text) "
    "ON COMMIT DELETE ROWS"
)
_PG_COPY = f"COPY visit_batch (ord, {_VISIT_COLUMNS}) FROM STDIN"
_PG_MOVE = (
    f"INSERT INTO visits ({_VISIT_COLUMNS}) SELECT {_VISIT_COLUMNS} FROM visit_batch "
    "ORDER BY ord ON CONFLICT (uid) DO NOTHING RETURNING uid"
)


def record(
    connection: Connection, batch: Sequence[NewVisit], *, not_before_creation: bool = False
) -> int:
    """Writes visits, their links' counts and the rollups together; returns visits written.

    Visits already stored (by uid) are skipped and not counted again. Visits of links deleted
    since the redirect are dropped (their rows would be deleted anyway). SQLite gives a deleted
    newest link's id to the next link created: ``not_before_creation`` also drops visits older
    than their link, which belonged to the deleted one.
    """
    unique: dict[str, NewVisit] = {}
    for visit in batch:
        if visit.uid is None:
            visit = replace(visit, uid=uuid.uuid4().hex)
        unique.setdefault(visit.uid, visit)
    link_ids = sorted({visit.link_id for visit in unique.values()})
    alive_query = select(links.c.id, links.c.created_at, links.c.target).where(
        links.c.id.in_(link_ids)
    )
    # KEY SHARE on PostgreSQL stops a concurrent DELETE of these links until we commit.
    rows = connection.execute(alive_query.with_for_update(read=True, key_share=True)).all()
    # A visit no rule or variant routed went to the link's target (the fast path does not
    # carry it: a plain redirect pays nothing for it); it is filled in as the rows are made.
    links_by_id = {link_id: (created_at, target) for link_id, created_at, target in rows}
    kept = [
        (visit, link[1] if visit.target_used is None else visit.target_used)
        for visit in unique.values()
        if (link := links_by_id.get(visit.link_id)) is not None
        and not (not_before_creation and visit.visited_at < link[0])
    ]
    if not kept:
        return 0
    dialect = connection.dialect.name
    if dialect == "postgresql":
        inserted = _insert_postgresql(connection, kept)
    else:
        inserted = _insert_sqlite(connection, kept)
    if not inserted:
        return 0
    per_link = Counter(visit.link_id for visit, _ in inserted)
    # A fixed order keeps two writers' updates and upserts from deadlocking on PostgreSQL.
    connection.exec_driver_sql(
        _ADD_VISITS[dialect], [(n, link) for link, n in sorted(per_link.items())]
    )
    connection.exec_driver_sql(_ROLLUP_UPSERTS[dialect], _rollup_rows(inserted, dialect))
    return len(inserted)


def _stored_time(moment: datetime) -> datetime:
    """Naive UTC, as UTCDateTime stores it; a naive datetime is refused, as there."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; pass UTC")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _sqlite_time(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores, so reads through it parse it back."""
    return _stored_time(moment).isoformat(sep=" ", timespec="microseconds")


# A visit with the URL it was sent to.
_Sent = tuple[NewVisit, str]


def _row(visit: NewVisit, when, target_used: str) -> tuple:
    return (visit.uid, visit.link_id, when, visit.referrer, visit.user_agent, visit.browser,
            visit.os, visit.is_bot, visit.ip, target_used, visit.rule, visit.variant,
            visit.country)  # fmt: skip


def _insert_sqlite(connection: Connection, kept: list[_Sent]) -> list[_Sent]:
    """SQLite writes one transaction at a time (BEGIN IMMEDIATE): the uids found here stay
    the only ones stored until we commit."""
    rows = [_row(visit, _sqlite_time(visit.visited_at), target) for visit, target in kept]
    uids = [visit.uid for visit, _ in kept]
    stored: set[str] = set()
    for start in range(0, len(uids), _LOOKUP_CHUNK):
        chunk = uids[start : start + _LOOKUP_CHUNK]
        marks = ", ".join("?" * len(chunk))
        found = connection.exec_driver_sql(
            f"SELECT uid FROM visits WHERE uid IN ({marks})", tuple(chunk)
        )
        stored.update(uid for (uid,) in found)
    new = [(sent, row) for sent, row in zip(kept, rows, strict=True) if sent[0].uid not in stored]
    if new:
        connection.exec_driver_sql(_SQLITE_INSERT, [row for _, row in new])
    return [sent for sent, _ in new]


def _insert_postgresql(connection: Connection, kept: list[_Sent]) -> list[_Sent]:
    connection.exec_driver_sql(_PG_BATCH_TABLE)
    driver = connection.connection.dbapi_connection
    try:
        with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
            for order, (visit, target) in enumerate(kept):
                copy.write_row((order, *_row(visit, _stored_time(visit.visited_at), target)))
    except driver.OperationalError as error:  # the driver's own: COPY bypasses SQLAlchemy
        raise DatabaseUnavailable(str(error)) from error
    new = {uid for (uid,) in connection.exec_driver_sql(_PG_MOVE)}
    return [sent for sent in kept if sent[0].uid in new]


def _rollup_rows(inserted: Sequence[_Sent], dialect: str) -> list[tuple]:
    counts: Counter[tuple[int, str, datetime, str, bool]] = Counter()
    for visit, target in inserted:
        hour = _stored_time(visit.visited_at).replace(minute=0, second=0, microsecond=0)
        link_id, is_bot = visit.link_id, visit.is_bot
        counts[(link_id, "total", hour, target[:255], is_bot)] += 1
        counts[(link_id, "browser", hour, (visit.browser or "")[:255], is_bot)] += 1
        counts[(link_id, "os", hour, (visit.os or "")[:255], is_bot)] += 1
        # Only visits with a referrer, routed by a rule or a variant, or located count in
        # these (the others add no rows: their share is the total less these).
        if visit.referrer_host:
            counts[(link_id, "referrer", hour, visit.referrer_host[:255], is_bot)] += 1
        for dimension, value in (("rule", visit.rule), ("variant", visit.variant)):
            if value is not None:
                counts[(link_id, dimension, hour, str(value), is_bot)] += 1
        if visit.country:
            counts[(link_id, "country", hour, visit.country, is_bot)] += 1
    as_text = dialect == "sqlite"
    return [
        (link, dimension, hour.isoformat(sep=" ", timespec="microseconds") if as_text else hour,
         value, is_bot, n)
        for (link, dimension, hour, value, is_bot), n in sorted(counts.items())
    ]  # fmt: skip


def _bots_filter(column, bots: str):
    if bots == BOTS_EXCLUDE:
        return column.is_(False)
    if bots == BOTS_ONLY:
        return column.is_(True)
    return None


def page(
    connection: Connection,
    *,
    link_id: int,
    link_slug: str,
    since: datetime | None,
    until: datetime | None,
    bots: str,
    before_id: int | None,
    limit: int,
) -> list[VisitRecord]:
    query = select(
        visits.c.id,
        visits.c.visited_at,
        visits.c.referrer,
        visits.c.user_agent,
        visits.c.browser,
        visits.c.os,
        visits.c.ip,
        visits.c.is_bot,
        visits.c.target_used,
        visits.c.rule,
        visits.c.variant,
        visits.c.country,
    ).where(visits.c.link_id == link_id)
    if since is not None:
        query = query.where(visits.c.visited_at >= since)
    if until is not None:
        query = query.where(visits.c.visited_at < until)
    if (condition := _bots_filter(visits.c.is_bot, bots)) is not None:
        query = query.where(condition)
    query = newest_first(query, visits.c.id, before_id=before_id, limit=limit)
    return [VisitRecord(link_slug=link_slug, **row._mapping) for row in connection.execute(query)]


def _rollup_window(
    dialect: str,
    link_id: int | None,
    dimension: str,
    since: datetime,
    until: datetime,
    bots,
    link_ids: Select | None = None,
):
    if link_id is not None and dialect == "postgresql":
        # One link's rows: a range of the primary key (link_id, dimension, hour, ...), said as
        # row comparisons that only that index can serve. Said as three plain conditions, a
        # PostgreSQL planner without statistics of the table (never analysed yet) rates the
        # (dimension, hour) index the same and may take it, which reads every link's rows of
        # the window's hours (at 100,000 links visited in the last hour, ~100x the rows).
        # SQLite picks the primary key for the plain conditions (and for row comparisons
        # would bound only link_id).
        columns = (visit_rollups.c.link_id, visit_rollups.c.dimension, visit_rollups.c.hour)

        def key_at(hour: datetime):
            values = (link_id, dimension, hour)
            return tuple_(*(literal(v, c.type) for v, c in zip(values, columns, strict=True)))

        conditions = [
            visit_rollups.c.link_id == link_id,
            tuple_(*columns) >= key_at(since),
            tuple_(*columns) < key_at(until),
        ]
    else:
        conditions = [
            visit_rollups.c.dimension == dimension,
            visit_rollups.c.hour >= since,
            visit_rollups.c.hour < until,
        ]
        if link_id is not None:
            conditions.append(visit_rollups.c.link_id == link_id)
    if link_ids is not None:  # the links a filter selects (storage/link_filters.py)
        conditions.append(visit_rollups.c.link_id.in_(link_ids))
    if (condition := _bots_filter(visit_rollups.c.is_bot, bots)) is not None:
        conditions.append(condition)
    return conditions


def hourly_totals(
    connection: Connection,
    *,
    link_id: int | None,
    since: datetime,
    until: datetime,
    bots: str,
    link_ids: Select | None = None,
) -> list[tuple[datetime, bool, int]]:
    """(hour, is_bot, visits) for every hour with visits in [since, until); ``link_ids``: of
    these links only (a select of their ids)."""
    query = (
        select(visit_rollups.c.hour, visit_rollups.c.is_bot, func.sum(visit_rollups.c.visits))
        .where(
            *_rollup_window(connection.dialect.name, link_id, "total", since, until, bots, link_ids)
        )
        .group_by(visit_rollups.c.hour, visit_rollups.c.is_bot)
    )
    return [(row[0], row[1], int(row[2])) for row in connection.execute(query)]


def top_values(
    connection: Connection,
    *,
    link_id: int | None,
    dimension: str,
    since: datetime,
    until: datetime,
    bots: str,
    limit: int,
    link_ids: Select | None = None,
    total: int = 0,
) -> list[tuple[str, int]]:
    """The most frequent values of a dimension in [since, until), most visits first; "" for
    visits without a value. The referrer stores no row for those: ``total`` (the visits of
    the same window, from ``hourly_totals``) less the referred ones counts them, the referred
    ones summed in the same query (no second pass over the window's rows)."""
    visits_sum = func.sum(visit_rollups.c.visits)
    stored_as = _STORED_AS.get(dimension, dimension)
    conditions = _rollup_window(
        connection.dialect.name, link_id, stored_as, since, until, bots, link_ids
    )
    if stored_as != dimension:  # the target breakdown: "" is a visit whose target is unknown
        conditions.append(visit_rollups.c.value != "")
    columns = [visit_rollups.c.value, visits_sum]
    if dimension == "referrer":  # and the sum of every referrer's visits, past the limit too
        columns.append(func.sum(visits_sum).over())
    query = (
        select(*columns)
        .where(*conditions)
        .group_by(visit_rollups.c.value)
        .order_by(visits_sum.desc(), visit_rollups.c.value)
        .limit(limit)
    )
    rows = connection.execute(query).all()
    top = [(row[0], int(row[1])) for row in rows]
    if dimension != "referrer":
        return top
    direct = total - (int(rows[0][2]) if rows else 0)
    if direct > 0:
        # "" sorts first among equals, as in the query's order (the sort is stable).
        top = sorted([("", int(direct)), *top], key=lambda pair: -pair[1])[:limit]
    return top


def first_hour(
    connection: Connection, *, link_id: int | None, link_ids: Select | None = None
) -> datetime | None:
    """The earliest hour with a visit, or None."""
    query = select(func.min(visit_rollups.c.hour))
    if link_id is not None and connection.dialect.name == "postgresql":
        # A range of the primary key only it serves, as in _rollup_window.
        columns = (visit_rollups.c.link_id, visit_rollups.c.dimension)
        key = tuple_(
            *(literal(v, c.type) for v, c in zip((link_id, "total"), columns, strict=True))
        )
        query = query.where(
            visit_rollups.c.link_id == link_id, tuple_(*columns) >= key, tuple_(*columns) <= key
        )
    else:
        query = query.where(visit_rollups.c.dimension == "total")
        if link_id is not None:
            query = query.where(visit_rollups.c.link_id == link_id)
    if link_ids is not None:
        query = query.where(visit_rollups.c.link_id.in_(link_ids))
    return connection.execute(query).scalar()
