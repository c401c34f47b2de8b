"""/api/v1.0/links/<slug>/visits, /api/v1.0/links/<slug>/stats and /api/v1.0/stats."""

from __future__ import annotations

from flask import Response, request, url_for

from ..auth import current_user
from ..schemas.pages import page_schema
from ..schemas.visits import StatsQuery, StatsSchema, VisitListQuery, VisitSchema
from ..services.actors import utcnow
from ..services.errors import InvalidParameter
from ..services.stats import Stats
from ..services.tokens import STATS_READ
from .authenticated import AuthenticatedResource
from .http import given_query, json_response, load_query, page_response
from .http import services as get_services

VISIT_PAGE = page_schema("visits", VisitSchema)
VISIT_LIST_QUERY = VisitListQuery()
STATS_QUERY = StatsQuery()
STATS = StatsSchema()


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
    }
    if stats.link is not None:
        body["link"] = url_for("link", slug=stats.link.slug, _external=True)
    return STATS.dump(body)


class LinkVisits(AuthenticatedResource):
    required_scopes = {"get": STATS_READ}

    def get(self, slug: str) -> Response:
        query = load_query(VISIT_LIST_QUERY)
        _window(query)
        _, page = get_services().visits.list(
            current_user(),
            slug,
            since=query["since"],
            until=query["until"],
            bots=query["bots"],
            cursor=query["cursor"],
            limit=query["limit"],
        )
        return page_response(
            page,
            plural="visits",
            schema=VISIT_PAGE,
            endpoint="link_visits",
            params={"slug": slug, **given_query("since", "until", "bots", "limit", "cursor")},
        )


class LinkStats(AuthenticatedResource):
    required_scopes = {"get": STATS_READ}

    def get(self, slug: str) -> Response:
        query = load_query(STATS_QUERY)
        _window(query)
        stats = get_services().visits.link_stats(current_user(), slug, **query)
        return json_response(_stats_body(stats))


class AllStats(AuthenticatedResource):
    # stats:read, and (in the service) an administrator.
    required_scopes = {"get": STATS_READ}

    def get(self) -> Response:
        query = load_query(STATS_QUERY)
        _window(query)
        return json_response(_stats_body(get_services().visits.all_stats(current_user(), **query)))
