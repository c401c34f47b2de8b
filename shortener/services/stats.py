"""Visit listings and statistics, read from indexed queries and the hourly rollups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..storage import Database, visit_queries
from ..storage.link_filters import LinkFilter, matching_ids
from ..storage.records import LinkRecord, UserRecord, VisitRecord
from .actors import utcnow
from .errors import Forbidden, InvalidParameter
from .links import visible_link
from .pagination import Page, decode_cursor, paginate
from .tags import tag_key

INTERVALS = ("hour", "day", "week", "month")
BOTS_CHOICES = (visit_queries.BOTS_INCLUDE, visit_queries.BOTS_EXCLUDE, visit_queries.BOTS_ONLY)
MAX_BUCKETS = 10_000
TOP_VALUES = 20


@dataclass(frozen=True, slots=True)
class Stats:
    link: LinkRecord | None
    since: datetime
    until: datetime
    interval: str
    bots_filter: str
    total: int
    bots: int
    series: list[tuple[datetime, int]]
    referrers: list[tuple[str | None, int]]
    browsers: list[tuple[str | None, int]]
    operating_systems: list[tuple[str | None, int]]
    # Where visitors were sent, by which rule or variant (indexes as text), from which country.
    targets: list[tuple[str | None, int]] = ()
    rules: list[tuple[str | None, int]] = ()
    variants: list[tuple[str | None, int]] = ()
    countries: list[tuple[str | None, int]] = ()


_FIXED_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


def floor_to(moment: datetime, interval: str) -> datetime:
    """The start of the bucket holding ``moment`` (UTC; weeks start on Monday)."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if interval == "hour":
        return moment
    moment = moment.replace(hour=0)
    if interval == "day":
        return moment
    if interval == "week":
        return moment - timedelta(days=moment.weekday())
    return moment.replace(day=1)


def next_start(start: datetime, interval: str) -> datetime:
    if interval == "hour":
        return start + timedelta(hours=1)
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(weeks=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _earliest_start(until: datetime, interval: str) -> datetime:
    """The start of the oldest of the last MAX_BUCKETS buckets up to ``until``, or the
    earliest moment a datetime holds when that would be before year 1."""
    try:
        return floor_to(until, interval) - _FIXED_STEPS[interval] * (MAX_BUCKETS - 1)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _following(start: datetime, interval: str) -> datetime:
    """``next_start``, or a 400 naming ``until`` when that bucket would end after year 9999."""
    try:
        return next_start(start, interval)
    except OverflowError:
        raise InvalidParameter(
            "The window ends too late: its last bucket would end after the year 9999.",
            errors={"until": ["Must be before the last bucket of the year 9999."]},
        ) from None


class VisitService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def list(
        self,
        actor: UserRecord,
        slug: str,
        *,
        since: datetime | None,
        until: datetime | None,
        bots: str,
        cursor: str | None,
        limit: int,
    ) -> tuple[LinkRecord, Page[VisitRecord]]:
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            link = visible_link(connection, actor, slug)
            rows = visit_queries.page(
                connection,
                link_id=link.id,
                link_slug=link.slug,
                since=since,
                until=until,
                bots=bots,
                before_id=before_id,
                limit=limit + 1,
            )
        return link, paginate(rows, limit, lambda visit: visit.id)

    def link_stats(
        self,
        actor: UserRecord,
        slug: str,
        *,
        since: datetime | None,
        until: datetime | None,
        interval: str,
        bots: str,
    ) -> Stats:
        with self.database.read() as connection:
            link = visible_link(connection, actor, slug)
            return self._stats(connection, link, since, until, interval, bots)

    def all_stats(
        self,
        actor: UserRecord,
        *,
        since: datetime | None,
        until: datetime | None,
        interval: str,
        bots: str,
        tag: Sequence[str] = (),
    ) -> Stats:
        """Visits of every link (admins), or of the links carrying every tag of ``tag`` (the
        actor's own links; an admin's: everyone's)."""
        if not tag:
            if not actor.is_admin:
                raise Forbidden(
                    "Statistics across all links need an administrator; pass tag= for "
                    "the statistics of your links with that tag."
                )
            with self.database.read() as connection:
                return self._stats(connection, None, since, until, interval, bots)
        link_ids = matching_ids(
            LinkFilter(tag_keys=tuple(tag_key(name) for name in tag)),
            owner_id=None if actor.is_admin else actor.id,
        )
        with self.database.read() as connection:
            return self._stats(connection, None, since, until, interval, bots, link_ids)

    def _stats(self, connection, link, since, until, interval, bots, link_ids=None) -> Stats:
        """Whole buckets: the window is widened to [floor(since), ceil(until)). ``link_ids``:
        a select of the links counted (None: ``link``, or every link)."""
        link_id = link.id if link else None
        until = until or utcnow()
        if since is None:
            first = visit_queries.first_hour(connection, link_id=link_id, link_ids=link_ids)
            # An ``until`` before the first visit must not give a window that starts after it.
            since = min(first, until) if first else until
            # Left to us, the window is at most the last MAX_BUCKETS buckets.
            if interval in _FIXED_STEPS:
                since = max(since, _earliest_start(until, interval))
        start = floor_to(since, interval)
        end = floor_to(until, interval)
        if end < until or end == start:
            end = _following(end, interval)
        buckets = [start]
        while (following := _following(buckets[-1], interval)) < end:
            buckets.append(following)
            if len(buckets) > MAX_BUCKETS:
                raise InvalidParameter(
                    f"That window holds more than {MAX_BUCKETS} {interval}s; "
                    "narrow since/until or choose a longer interval.",
                    errors={"interval": [f"Too many buckets (over {MAX_BUCKETS})."]},
                )
        counts = dict.fromkeys(buckets, 0)
        total = bot_visits = 0
        hourly = visit_queries.hourly_totals(
            connection, link_id=link_id, since=start, until=end, bots=bots, link_ids=link_ids
        )
        for hour, is_bot, visits in hourly:
            counts[floor_to(hour, interval)] += visits
            total += visits
            bot_visits += visits if is_bot else 0

        def top(dimension: str) -> list[tuple[str | None, int]]:
            rows = visit_queries.top_values(
                connection,
                link_id=link_id,
                dimension=dimension,
                since=start,
                until=end,
                bots=bots,
                limit=TOP_VALUES,
                link_ids=link_ids,
                total=total,
            )
            return [(value or None, visits) for value, visits in rows]

        return Stats(
            link=link,
            since=start,
            until=end,
            interval=interval,
            bots_filter=bots,
            total=total,
            bots=bot_visits,
            series=sorted(counts.items()),
            referrers=top("referrer"),
            browsers=top("browser"),
            operating_systems=top("os"),
            targets=top("target"),
            rules=top("rule"),
            variants=top("variant"),
            countries=top("country"),
        )
