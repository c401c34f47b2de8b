"""/api/v1.0/links/<slug>/visits, /api/v1.0/links/<slug>/stats and /api/v1.0/stats."""

from __future__ import annotations

from flask import request, url_for
from flask_restful import Resource

from ..auth import current_user
from ..schemas.pages import page_of
from ..schemas.visits import (
    AllStatsQuery,
    StatsQuery,
    StatsSchema,
    VisitListQuery,
    VisitSchema,
)
from ..services.actors import utcnow
from ..services.errors import InvalidParameter
from ..services.stats import Stats
from ..services.tokens import STATS_READ
from .http import services
from .operations import operation


def _window(query: dict) -> None:
    """``until`` defaults to now, so a ``since`` in the future is an error too."""
    if query["since"] and not query["until"] and query["since"] > utcnow():
        raise InvalidParameter(
            "since is in the future.", errors={"since": ["Must not be in the future."]}
        )


def _stats_body(stats: Stats) -> dict:
    body = {
        "uri": request.url,
        "since": stats.since,
        "until": stats.until,
        "interval": stats.interval,
        "total": stats.total,
        "bots": stats.bots,
        "series": [{"start": start, "visits": n} for start, n in stats.series],
        "referrers": [{"host": host, "visits": n} for host, n in stats.referrers],
        "browsers": [{"family": family, "visits": n} for family, n in stats.browsers],
        "operating_systems": [
            {"family": family, "visits": n} for family, n in stats.operating_systems
        ],
        "targets": [{"target": target, "visits": n} for target, n in stats.targets],
        "rules": [{"index": index, "visits": n} for index, n in stats.rules],
        "variants": [{"index": index, "visits": n} for index, n in stats.variants],
        "countries": [{"country": country, "visits": n} for country, n in stats.countries],
    }
    if stats.link is not None:
        body["link"] = url_for("link", slug=stats.link.slug, _external=True)
    return body


class LinkVisits(Resource):
    @operation(
        "listLinkVisits",
        "A link's visits, newest first",
        scope=STATS_READ,
        query=VisitListQuery,
        response=page_of("visits", VisitSchema),
        errors=(404,),
        tags=("visits",),
    )
    def get(self, slug, query):
        _window(query)
        _, page = services().visits.list(current_user(), slug, **query)
        return page


class LinkStats(Resource):
    @operation(
        "getLinkStats",
        "A link's visits counted by time, referrer, browser and operating system",
        scope=STATS_READ,
        query=StatsQuery,
        response=StatsSchema,
        errors=(404,),
        tags=("visits",),
    )
    def get(self, slug, query):
        _window(query)
        return _stats_body(services().visits.link_stats(current_user(), slug, **query))


class AllStats(Resource):
    @operation(
        "getStats",
        "Visits of every link, counted (admins); or of the links with a tag (tag=)",
        description="With tag= (repeatable: links with all of them): the visits of your "
        "links carrying the tag (an administrator's: everyone's links carrying it). Without "
        "it, every link's: administrators only (403).",
        scope=STATS_READ,
        query=AllStatsQuery,
        response=StatsSchema,
        tags=("visits",),
    )
    def get(self, query):
        _window(query)
        return _stats_body(services().visits.all_stats(current_user(), **query))
