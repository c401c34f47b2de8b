"""Queries on links, including the redirect hot path."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)

from . import tag_queries
from .engine import Database
from .keyset import newest_first
from .link_filters import LinkFilter, RowMatches, filtered, sorted_page
from .lookups import cannot_be_stored
from .records import LinkRecord, Redirect
from .tables import CRAWLABLE, UTCDateTime, link_tags, links, users, webhooks
from .tag_queries import link_tag_names_column
from .typed_reads import TypedRead

_LINK_COLUMNS = (
    links.c.id,
    links.c.slug,
    links.c.target,
    links.c.title,
    links.c.redirect_status,
    links.c.visit_count,
    links.c.owner_id,
    users.c.username.label("owner_username"),
    links.c.created_at,
    links.c.updated_at,
    links.c.version,
    links.c.valid_since,
    links.c.valid_until,
    links.c.max_visits,
    links.c.cap_used,
    links.c.exhausted_at,
    links.c.expired_target,
    links.c.crawlable,
    links.c.forward_query,
    links.c.utm_source,
    links.c.utm_medium,
    links.c.utm_campaign,
    links.c.utm_term,
    links.c.utm_content,
    links.c.password_hash,
    links.c.rules,
    links.c.variants,
    link_tag_names_column(),  # the link's tags, in order (migration 0014)
)
_SELECT_LINKS = select(*_LINK_COLUMNS).join_from(links, users, links.c.owner_id == users.c.id)
# What an INSERT returns of the row it wrote: every column of the link but its owner's name.
_INSERTED = tuple(column for column in _LINK_COLUMNS if getattr(column, "table", None) is links)
# Built once, its values given at execution: building insert().values() per link (and its cache
# key from those values) cost more than the INSERT itself (py-spy: 31% of a POST before, 17% now).
# Whether the new link's owner has an active webhook, read by the INSERT itself (in the
# creating transaction, by the webhooks' index on user_id): a create of an owner without one
# then costs the webhooks' outbox no query of its own (services/webhooks.py).
_OWNER_HAS_WEBHOOKS = (
    exists()
    .where(webhooks.c.user_id == bindparam("webhooks_of"), webhooks.c.active.is_(True))
    .label("owner_has_webhooks")
)
_INSERT_LINK = insert(links).returning(*_INSERTED, _OWNER_HAS_WEBHOOKS)

_UTM_COLUMNS = (
    links.c.utm_source,
    links.c.utm_medium,
    links.c.utm_campaign,
    links.c.utm_term,
    links.c.utm_content,
)
_UTM_NAMES = tuple(column.name for column in _UTM_COLUMNS)
# Built once at import: the hot path is one indexed lookup per redirect; the visit itself is
# written later, in a batch (see services/visits.py).
_RESOLVE = select(
    links.c.id,
    links.c.target,
    links.c.redirect_status,
    links.c.valid_since,
    links.c.valid_until,
    links.c.max_visits,
    links.c.expired_target,
    # Query forwarding, UTM fields or a password (migration 0010), in one value: a plain
    # link's redirect looks at nothing else.
    or_(
        links.c.forward_query == true(),
        func.coalesce(*_UTM_COLUMNS, links.c.password_hash).is_not(None),
    ),
    links.c.forward_query,
    links.c.password_hash,
    *_UTM_COLUMNS,
    # Rules and variants (migration 0011): JSON text, compiled once per lookup; the last two
    # columns (row[-2], row[-1]).
    links.c.rules,
    links.c.variants,
).where(links.c.slug == bindparam("redirect_slug"))


class Resolver:
    """Where a slug points: the redirect's one indexed read, prepared once per process.

    ``with_utm(target, {name: value})`` gives the target with a link's UTM fields
    (services/forwarding.py); only links that have options pay for it."""

    def __init__(
        self,
        database: Database,
        with_utm: Callable[[str, dict[str, str | None]], str] = lambda target, utm: target,
        routing: Callable[[str | None, str | None], object] = lambda rules, variants: None,
    ) -> None:
        self._read = database.prepare(_RESOLVE)
        self._with_utm = with_utm
        self._routing = routing  # rules and variants as JSON text, compiled (services/rules.py)
        # The driver's raw dates (a string on SQLite), made aware UTC as the table's type does;
        # only links with a window pay for it.
        dialect = database.autocommit_engine.dialect
        self._instant = links.c.valid_since.type.dialect_impl(dialect).result_processor(
            dialect, None
        )

    def __call__(self, slug: str) -> Redirect | None:
        if cannot_be_stored(slug):
            return None
        row = self._read.first({"redirect_slug": slug})
        if row is None:
            return None
        if row[3] is None and row[4] is None and row[5] is None and not row[7]:
            if row[-2] is None and row[-1] is None:
                return Redirect(row[0], row[1], row[2])
            return Redirect(row[0], row[1], row[2], routing=self._routing(row[-2], row[-1]))
        instant = self._instant
        options = bool(row[7])
        return Redirect(
            row[0],
            self._with_utm(row[1], dict(zip(_UTM_NAMES, row[10:15], strict=True)))
            if options
            else row[1],
            row[2],
            limited=row[3] is not None or row[4] is not None or row[5] is not None,
            valid_since=None if row[3] is None else instant(row[3]),
            valid_until=None if row[4] is None else instant(row[4]),
            max_visits=row[5],
            expired_target=row[6],
            options=options and (bool(row[8]) or row[9] is not None),
            forward_query=bool(row[8]),
            password_hash=row[9],
            routing=None
            if row[-2] is None and row[-1] is None
            else self._routing(row[-2], row[-1]),
        )


# The partial index ix_links_crawlable_slug holds exactly these rows.
_CRAWLABLE_SLUGS = select(links.c.slug).where(CRAWLABLE)


def crawlable_slugs(connection: Connection) -> list[str]:
    """Slugs of the crawlable links (GET /robots.txt), in code point order on every backend."""
    return sorted(connection.execute(_CRAWLABLE_SLUGS).scalars())


# Built once: a batch reads a link by slug a thousand times in one request.
_FIND_BY_SLUG = _SELECT_LINKS.where(links.c.slug == bindparam("found_slug"))


def find_by_slug(connection: Connection, slug: str) -> LinkRecord | None:
    if cannot_be_stored(slug):
        return None
    row = connection.execute(_FIND_BY_SLUG, {"found_slug": slug}).first()
    return None if row is None else LinkRecord(**row._mapping)


class LinkBySlug:
    """``find_by_slug`` outside any transaction, prepared once (storage/typed_reads.py): for
    ``GET`` of one link, a read that needs nothing else."""

    def __init__(self, database: Database) -> None:
        self._read = TypedRead(database, _SELECT_LINKS.where(links.c.slug == bindparam("slug")))

    def __call__(self, slug: str) -> LinkRecord | None:
        if cannot_be_stored(slug):
            return None
        row = self._read.first({"slug": slug})
        return None if row is None else LinkRecord(**row)


def page(
    connection: Connection,
    *,
    owner_id: int | None,
    before_id: int | None,
    limit: int,
    status: str | None = None,
    now: datetime | None = None,
) -> list[LinkRecord]:
    """Newest first, keyset-paginated on the primary key (page N costs what page 1 costs);
    ``status`` (services/lifetime.py) keeps only the links in that status at ``now``."""
    query = _SELECT_LINKS
    if owner_id is not None:
        query = query.where(links.c.owner_id == owner_id)
    if status is not None:
        query = query.where(_status_is(status, now))
    query = newest_first(query, links.c.id, before_id=before_id, limit=limit)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def find_page(
    connection: Connection,
    link_filter: LinkFilter,
    *,
    owner_id: int | None,
    sort: str,
    after: tuple[Any, int] | None,
    limit: int,
    now: datetime | None = None,
) -> list[LinkRecord]:
    """Links matching ``link_filter`` (storage/link_filters.py), of ``owner_id`` (None: every
    owner's), in ``sort`` order from just after the keyset position ``after``."""
    if link_filter.tag_keys and not tag_queries.all_exist(
        connection, link_filter.tag_keys, owner_id
    ):
        return []  # a tag no one has: no need to test every link for it
    if link_filter.q:
        found = _search_nearby(
            connection, link_filter, owner_id=owner_id, sort=sort, after=after, limit=limit, now=now
        )
        if found is not None:
            return found
    query = filtered_page_query(
        link_filter, owner_id=owner_id, sort=sort, after=after, limit=limit, now=now
    )
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


# A search first tests this many links in the page's order, one by one: a common word fills
# its page from them at once, where the search index would list every link that has it.
SEARCH_WINDOW = 1000


def _search_nearby(
    connection: Connection,
    link_filter: LinkFilter,
    *,
    owner_id: int | None,
    sort: str,
    after: tuple[Any, int] | None,
    limit: int,
    now: datetime | None,
) -> list[LinkRecord] | None:
    """The page of a search from the next SEARCH_WINDOW links in order, or None when they do
    not fill it and more links follow (then the search index answers)."""
    window = filtered(
        select(links.c.id, RowMatches(link_filter.q or "")),
        replace(link_filter, q=None),
        owner_id=owner_id,
        now=now,
        status_is=_status_is,
    )
    rows = connection.execute(sorted_page(window, sort, after=after, limit=SEARCH_WINDOW)).all()
    ids = [row[0] for row in rows if row[1]][:limit]
    if len(ids) < limit and len(rows) == SEARCH_WINDOW:
        return None
    if not ids:
        return []
    query = sorted_page(_SELECT_LINKS.where(links.c.id.in_(ids)), sort, after=None, limit=limit)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def filtered_page_query(
    link_filter: LinkFilter,
    *,
    owner_id: int | None,
    sort: str,
    after: tuple[Any, int] | None,
    limit: int,
    now: datetime | None = None,
) -> Select:
    """The SELECT behind ``find_page`` (tests read its plan)."""
    query = filtered(_SELECT_LINKS, link_filter, owner_id=owner_id, now=now, status_is=_status_is)
    return sorted_page(query, sort, after=after, limit=limit)


def insert_link(
    connection: Connection,
    *,
    slug: str,
    target: str,
    title: str | None,
    redirect_status: int,
    owner_id: int,
    now: datetime,
    lifetime: dict[str, Any] | None = None,
    crawlable: bool = False,
    options: dict[str, Any] | None = None,
    routing: dict[str, Any] | None = None,
    imported_visits: int = 0,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The new row (all but its owner's name), as written, defaults included, and
    ``owner_has_webhooks``: whether the owner had an active webhook then. ``options``:
    forward_query, the UTM fields and password_hash (migration 0010). An imported link
    (migration 0012) starts with the visits counted where it came from, and may keep the time
    it was created there."""
    result = connection.execute(
        _INSERT_LINK,
        dict(
            slug=slug,
            target=target,
            title=title,
            sort_title=title or "",  # the title sort's key (migration 0014)
            redirect_status=redirect_status,
            crawlable=crawlable,
            visit_count=imported_visits,
            imported_visits=imported_visits,
            **(lifetime or {}),
            **(options or {}),
            **(routing or {}),  # rules and variants, JSON text (migration 0011)
            owner_id=owner_id,
            created_at=created_at or now,
            updated_at=now,
            webhooks_of=owner_id,
        ),
    )
    return dict(result.one()._mapping)


def update_link(
    connection: Connection,
    link_id: int,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> bool:
    """Applies ``changes`` and raises the version in the same UPDATE. With
    ``expected_version`` only that version is changed: False if another transaction changed
    the link first (on PostgreSQL both may have read the old version)."""
    if "title" in changes:  # the title sort's key goes with it (migration 0014)
        changes = {**changes, "sort_title": changes["title"] or ""}
    query = update(links).where(links.c.id == link_id)
    if expected_version is not None:
        query = query.where(links.c.version == expected_version)
    result = connection.execute(query.values(**changes, version=links.c.version + 1))
    return result.rowcount == 1


def delete_link(
    connection: Connection, link_id: int, *, expected_version: int | None = None
) -> bool:
    """Deletes the link (only at ``expected_version``, if given); False if nothing matched."""
    query = delete(links).where(links.c.id == link_id)
    if expected_version is not None:
        query = query.where(links.c.version == expected_version)
    return connection.execute(query).rowcount == 1


def owner_has_links(connection: Connection, owner_id: int) -> bool:
    return bool(connection.execute(select(exists().where(links.c.owner_id == owner_id))).scalar())


def links_of_owner(connection: Connection, owner_id: int) -> list[LinkRecord]:
    """Every link of the owner, oldest first (a purge of the owner reports each)."""
    query = _SELECT_LINKS.where(links.c.owner_id == owner_id).order_by(links.c.id)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def links_with_tag(connection: Connection, tag_id: int) -> list[LinkRecord]:
    """Every link carrying the tag, oldest first (a rename or a deletion of the tag reports
    each)."""
    carrying = select(link_tags.c.link_id).where(link_tags.c.tag_id == tag_id)
    query = _SELECT_LINKS.where(links.c.id.in_(carrying)).order_by(links.c.id)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def links_with_ids(connection: Connection, ids: Sequence[int]) -> list[LinkRecord]:
    """The links of ``ids`` that exist, oldest first."""
    query = _SELECT_LINKS.where(links.c.id.in_(ids)).order_by(links.c.id)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def delete_links_of_owner(connection: Connection, owner_id: int) -> None:
    connection.execute(delete(links).where(links.c.owner_id == owner_id))


# -- lifetime and visit caps (services/lifetime.py) ---------------------------------------
def _status_is(status: str, now: datetime | None):
    """The condition of services/lifetime.py's status_of, in SQL, at ``now``."""
    at = literal(now, UTCDateTime())
    scheduled = and_(links.c.valid_since.is_not(None), links.c.valid_since > at)
    expired = and_(links.c.valid_until.is_not(None), links.c.valid_until <= at)
    exhausted = and_(links.c.max_visits.is_not(None), links.c.cap_used >= links.c.max_visits)
    if status == "scheduled":
        return scheduled
    if status == "expired":
        return and_(~scheduled, expired)
    if status == "exhausted":
        return and_(~scheduled, ~expired, exhausted)
    if status == "active":
        return ~or_(scheduled, expired, exhausted)
    raise ValueError(f"no link status {status!r}")


def use_cap(connection: Connection, link_id: int, now: datetime) -> bool:
    """Counts one visit against the link's cap, if one is left: True if it was. One atomic
    UPDATE, so concurrent redirects (any worker, any host) never let more through."""
    result = connection.execute(
        update(links)
        .where(links.c.id == link_id, links.c.cap_used < links.c.max_visits)
        .values(
            cap_used=links.c.cap_used + 1,
            exhausted_at=case(
                (links.c.cap_used + 1 >= links.c.max_visits, literal(now, UTCDateTime())),
                else_=links.c.exhausted_at,
            ),
        )
    )
    return result.rowcount == 1


def has_cap_left(connection: Connection, link_id: int) -> bool:
    """Whether a capped link still lets a visit through (HEAD asks, and counts nothing)."""
    return bool(
        connection.execute(
            select(links.c.cap_used < links.c.max_visits).where(links.c.id == link_id)
        ).scalar()
    )


def cap_changes(max_visits: int | None, now: datetime) -> dict[str, Any]:
    """What else changes with ``max_visits``: a link already past the new cap is exhausted
    (since the moment it first was, or now), one below it no longer is."""
    if max_visits is None:
        return {"exhausted_at": None}
    return {
        "exhausted_at": case(
            (
                links.c.cap_used >= max_visits,
                func.coalesce(links.c.exhausted_at, literal(now, UTCDateTime())),
            ),
            else_=None,
        )
    }


def _gone_before(cutoff: datetime):
    """Expired (valid_until) or exhausted (exhausted_at) before ``cutoff``."""
    return or_(links.c.valid_until < cutoff, links.c.exhausted_at < cutoff)


def gone_before(connection: Connection, cutoff: datetime) -> list[LinkRecord]:
    """Links expired or exhausted before ``cutoff``, oldest id first."""
    query = _SELECT_LINKS.where(_gone_before(cutoff)).order_by(links.c.id)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def delete_gone_before(connection: Connection, ids: list[int], cutoff: datetime) -> int:
    """Deletes those of ``ids`` still expired or exhausted before ``cutoff`` (a link changed
    since it was listed stays); their visits go with them (ON DELETE CASCADE)."""
    if not ids:
        return 0
    result = connection.execute(delete(links).where(links.c.id.in_(ids), _gone_before(cutoff)))
    return result.rowcount


# -- deduplication (services/links.py find_or_create) -------------------------------------
def lock_target(connection: Connection, owner_id: int, target: str) -> None:
    """Serialises the find-or-create of one owner's target until the transaction ends, so two
    concurrent requests cannot both find nothing and both create. SQLite's write transaction
    (BEGIN IMMEDIATE) already excludes every other writer; PostgreSQL takes a transaction-level
    advisory lock on a 64-bit digest of (owner, target)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(select(func.pg_advisory_xact_lock(_target_key(owner_id, target))))


def lock_targets(connection: Connection, owner_id: int, targets: Sequence[str]) -> None:
    """``lock_target`` for many targets (a batch) in one statement, in the order of their keys:
    two batches that share targets then take them in the same order, and never deadlock."""
    if connection.dialect.name != "postgresql" or not targets:
        return
    keys = sorted({_target_key(owner_id, target) for target in targets})
    connection.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(%(keys)s::bigint[]) AS k "
        "ORDER BY k) AS ordered",
        {"keys": keys},
    )


def _target_key(owner_id: int, target: str) -> int:
    """A 64-bit advisory lock key for one owner's target."""
    digest = hashlib.sha256(f"{owner_id}\n{target}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def same_target(connection: Connection, owner_id: int, target: str) -> list[LinkRecord]:
    """The owner's links to exactly ``target`` (as stored, i.e. normalised), oldest first."""
    query = _SELECT_LINKS.where(links.c.owner_id == owner_id, links.c.target == target)
    return [LinkRecord(**row._mapping) for row in connection.execute(query.order_by(links.c.id))]


def taken_slugs(connection: Connection, slugs: Sequence[str]) -> set[str]:
    """Those of ``slugs`` that a link has (one query; a batch checks its slugs up front)."""
    wanted = [slug for slug in slugs if not cannot_be_stored(slug)]
    if not wanted:
        return set()
    return set(connection.execute(select(links.c.slug).where(links.c.slug.in_(wanted))).scalars())
