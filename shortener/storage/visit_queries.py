"""Queries on visits: batched recording, newest-first pages, and reads of the hourly rollups."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .keyset import newest_first
from .records import VisitRecord
from .tables import links, visit_rollups, visits

BOTS_INCLUDE, BOTS_EXCLUDE, BOTS_ONLY = "include", "exclude", "only"
DIMENSIONS = ("total", "browser", "os", "referrer")


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


_ADD_VISITS = (
    update(links)
    .where(links.c.id == bindparam("counted_link"))
    .values(visit_count=links.c.visit_count + bindparam("counted_visits"))
)


def record(
    connection: Connection, batch: Sequence[NewVisit], *, not_before_creation: bool = False
) -> int:
    """Writes visits, their links' counts and the rollups together; returns visits written.

    Visits of links deleted since the redirect are dropped (their rows would be deleted anyway).
    SQLite gives a deleted newest link's id to the next link created: ``not_before_creation``
    also drops visits older than their link, which belonged to the deleted one.
    """
    link_ids = sorted({visit.link_id for visit in batch})
    alive_query = select(links.c.id, links.c.created_at).where(links.c.id.in_(link_ids))
    # KEY SHARE on PostgreSQL stops a concurrent DELETE of these links until we commit.
    rows = connection.execute(alive_query.with_for_update(read=True, key_share=True))
    created = {link_id: created_at for link_id, created_at in rows}
    kept = [
        visit
        for visit in batch
        if visit.link_id in created
        and not (not_before_creation and visit.visited_at < created[visit.link_id])
    ]
    if not kept:
        return 0
    connection.execute(
        insert(visits),
        [
            {
                "link_id": visit.link_id,
                "visited_at": visit.visited_at,
                "referrer": visit.referrer,
                "user_agent": visit.user_agent,
                "browser": visit.browser,
                "os": visit.os,
                "is_bot": visit.is_bot,
                "ip": visit.ip,
            }
            for visit in kept
        ],
    )
    per_link = Counter(visit.link_id for visit in kept)
    connection.execute(
        _ADD_VISITS,
        [{"counted_link": link, "counted_visits": n} for link, n in sorted(per_link.items())],
    )
    _add_to_rollups(connection, kept)
    return len(kept)


def _add_to_rollups(connection: Connection, kept: Sequence[NewVisit]) -> None:
    counts: Counter[tuple[int, str, datetime, str, bool]] = Counter()
    for visit in kept:
        hour = visit.visited_at.replace(minute=0, second=0, microsecond=0)
        for dimension, value in (
            ("total", ""),
            ("browser", visit.browser or ""),
            ("os", visit.os or ""),
            ("referrer", visit.referrer_host or ""),
        ):
            counts[(visit.link_id, dimension, hour, value[:255], visit.is_bot)] += 1
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(visit_rollups)
    statement = statement.on_conflict_do_update(
        index_elements=["link_id", "dimension", "hour", "value", "is_bot"],
        set_={"visits": visit_rollups.c.visits + statement.excluded.visits},
    )
    # A fixed order keeps two workers' upserts from deadlocking on PostgreSQL.
    rows = [
        {"link_id": key[0], "dimension": key[1], "hour": key[2], "value": key[3],
         "is_bot": key[4], "visits": n}
        for key, n in sorted(counts.items())
    ]  # fmt: skip
    connection.execute(statement, rows)


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
    ).where(visits.c.link_id == link_id)
    if since is not None:
        query = query.where(visits.c.visited_at >= since)
    if until is not None:
        query = query.where(visits.c.visited_at < until)
    if (condition := _bots_filter(visits.c.is_bot, bots)) is not None:
        query = query.where(condition)
    query = newest_first(query, visits.c.id, before_id=before_id, limit=limit)
    return [VisitRecord(link_slug=link_slug, **row._mapping) for row in connection.execute(query)]


def _rollup_window(link_id: int | None, dimension: str, since: datetime, until: datetime, bots):
    conditions = [
        visit_rollups.c.dimension == dimension,
        visit_rollups.c.hour >= since,
        visit_rollups.c.hour < until,
    ]
    if link_id is not None:
        conditions.append(visit_rollups.c.link_id == link_id)
    if (condition := _bots_filter(visit_rollups.c.is_bot, bots)) is not None:
        conditions.append(condition)
    return conditions


def hourly_totals(
    connection: Connection, *, link_id: int | None, since: datetime, until: datetime, bots: str
) -> list[tuple[datetime, bool, int]]:
    """(hour, is_bot, visits) for every hour with visits in [since, until)."""
    query = (
        select(visit_rollups.c.hour, visit_rollups.c.is_bot, func.sum(visit_rollups.c.visits))
        .where(*_rollup_window(link_id, "total", since, until, bots))
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
) -> list[tuple[str, int]]:
    """The most frequent values of a dimension in [since, until), most visits first."""
    visits_sum = func.sum(visit_rollups.c.visits)
    query = (
        select(visit_rollups.c.value, visits_sum)
        .where(*_rollup_window(link_id, dimension, since, until, bots))
        .group_by(visit_rollups.c.value)
        .order_by(visits_sum.desc(), visit_rollups.c.value)
        .limit(limit)
    )
    return [(row[0], int(row[1])) for row in connection.execute(query)]


def first_hour(connection: Connection, *, link_id: int | None) -> datetime | None:
    """The earliest hour with a visit, or None."""
    query = select(func.min(visit_rollups.c.hour)).where(visit_rollups.c.dimension == "total")
    if link_id is not None:
        query = query.where(visit_rollups.c.link_id == link_id)
    return connection.execute(query).scalar()
