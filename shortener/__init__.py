"""shortener: a self-hosted URL shortener whose product is a hypermedia REST API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    docs,
    fast_redirect,
    health,
    http_headers,
    limits,
    metrics,
    problems,
    redirects,
    resources,
    robots,
)
from .services import build_services
from .services.slugs import ALWAYS_RESERVED
from .settings import DEFAULTS, Settings
from .storage import Database


class ShortenerFlask(Flask):
    def make_default_options_response(self) -> Response:
        """``OPTIONS``: 204 with ``Allow`` and no body, so no (text/html) content type."""
        response = super().make_default_options_response()
        response.status_code = 204
        response.set_data(b"")
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        return response


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Builds the app from defaults, then ``SHORTENER_*`` variables, then ``config``."""
    app = ShortenerFlask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        DEFAULTS,
        DATABASE_URL="sqlite:///" + os.path.join(app.instance_path, "shortener.db"),
    )
    app.config.from_prefixed_env("SHORTENER")
    if config:
        app.config.update(config)
    settings = Settings.from_config(app.config)
    app.extensions["shortener.settings"] = settings

    problems.init_app(app)
    resources.init_app(app)
    health.init_app(app)
    robots.init_app(app)
    docs.init_app(app)
    metrics.init_app(app)
    redirects.init_app(app)  # last: the slug route leaves the others' paths alone
    # Order matters: CORS preflights are answered before the rate limits count them, and
    # (after_request hooks run in reverse) the API headers go on whatever the limits answered.
    http_headers.init_app(app, settings)
    limits.init_app(app, settings)

    database = Database(
        settings.database_url,
        lock_timeout_ms=settings.lock_timeout_ms,
        database_timeout_ms=settings.database_timeout_ms,
        pool_size=settings.database_pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    app.extensions["shortener"] = build_services(
        database,
        slug_length=settings.slug_length,
        max_target_length=settings.max_target_length,
        reserved_slugs=ALWAYS_RESERVED | _top_level_paths(app),
        password_hash_method=settings.password_hash_method,
        anonymize_ips=settings.anonymize_ips,
        visit_flush_interval=settings.visit_flush_interval,
        link_changes_file=settings.link_changes_file or _link_changes_file(app, database),
        link_cache_size=settings.link_cache_size,
        visit_buffer=settings.visit_buffer,
        redis_url=settings.redis_url,
        visit_stream=settings.visit_stream,
        geoip_db=settings.geoip_db,
        webhook_allow_private=settings.webhook_allow_private,
    )
    fast_redirect.install(app)  # inside ProxyFix: it sees the corrected client address
    metrics.install(app)  # outside the fast redirect: counts its answers too
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    return app


def _link_changes_file(app: Flask, database: Database) -> str:
    """Where every process of this host finds the counter of link changes: next to a SQLite
    database file (every process that uses it finds it there), else in the instance folder."""
    if database.sqlite_path is not None:
        return database.sqlite_path + ".link-changes"
    return os.path.join(app.instance_path, "link-changes")


def _top_level_paths(app: Flask) -> frozenset[str]:
    """The first path segment of every route that is not the slug itself."""
    segments = set()
    for rule in app.url_map.iter_rules():
        first = rule.rule.lstrip("/").split("/", 1)[0]
        if first and "<" not in first:
            segments.add(first.lower())
    return frozenset(segments | _beside_slugs(app))


def _beside_slugs(app: Flask) -> set[str]:
    """Fixed names where a slug could stand (/api/v1.0/links/export beside /links/<slug>): a
    link there could not be read at its own URI."""
    rules = [rule.rule for rule in app.url_map.iter_rules()]
    parents = {rule.rsplit("/", 1)[0] for rule in rules if rule.endswith("slug>")}
    return {
        last.lower()
        for parent, last in (rule.rsplit("/", 1) for rule in rules)
        if parent and parent in parents and last and "<" not in last
    }
