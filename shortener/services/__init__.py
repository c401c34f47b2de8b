"""Services: plain Python shared by the HTTP API and the command line."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..storage import Database
from .batches import BatchService
from .geoip import country_lookup
from .history import HistoryService
from .idempotency import IdempotencyService
from .link_cache import LinkChanges
from .link_events import LinkEvents
from .links import EVENT_FIELDS, LinkService
from .passwords import PasswordHasher
from .stats import VisitService
from .tags import TagService
from .tokens import TokenService
from .users import UserService
from .visit_handover import HandOverRecorder, inherited
from .visit_stream import StreamProducer
from .visits import Recorder, VisitRecorder
from .webhooks import VisitedEvents, WebhookService


@dataclass(frozen=True)
class Services:
    database: Database
    links: LinkService
    users: UserService
    tokens: TokenService
    visits: VisitService
    recorder: Recorder
    idempotency: IdempotencyService
    # Subscribers to every change of a link, called inside its transaction (link_events.py).
    link_events: LinkEvents
    # Link revisions, written by a link-events subscriber (history.py).
    history: HistoryService
    # Owners' webhooks; their outbox is filled by link events and the visit writer.
    webhooks: WebhookService

    @functools.cached_property
    def batches(self) -> BatchService:
        """Batches of link writes, made through ``links`` (services/batches.py)."""
        return BatchService(self.links)

    @functools.cached_property
    def tags(self) -> TagService:
        """Owners' tags: list, rename, delete (services/tags.py)."""
        return TagService(self.database, link_events=self.link_events, link_fields=EVENT_FIELDS)

    def close(self) -> None:
        """Writes buffered visits, then releases database connections."""
        self.links.close()
        self.recorder.close()
        self.database.dispose()


def build_services(
    database: Database,
    *,
    slug_length: int,
    max_target_length: int,
    reserved_slugs: frozenset[str],
    password_hash_method: str,
    anonymize_ips: bool,
    visit_flush_interval: float,
    link_changes_file: str,
    link_cache_size: int = 0,
    visit_buffer: int = 10_000,
    redis_url: str | None = None,
    visit_stream: str = "shortener:visits",
    geoip_db: str | None = None,
    webhook_allow_private: bool = False,
) -> Services:
    link_changes = LinkChanges(database, link_changes_file)
    country_of = country_lookup(geoip_db)  # None without a GeoIP database
    hasher = PasswordHasher(password_hash_method)  # user passwords and links' alike
    link_events = LinkEvents()
    history = HistoryService(database)
    link_events.subscribe(history.on_link_events)
    webhooks = WebhookService(
        database, allow_private=webhook_allow_private, link_fields=EVENT_FIELDS
    )
    link_events.subscribe(webhooks.on_link_events)
    services = Services(
        database=database,
        links=LinkService(
            database,
            slug_length=slug_length,
            max_target_length=max_target_length,
            reserved_slugs=reserved_slugs,
            changes=link_changes,
            cache_size=link_cache_size,
            hasher=hasher,
            country_of=country_of,
            events=link_events,
        ),
        users=UserService(
            database, hasher=hasher, link_changes=link_changes, link_events=link_events
        ),
        tokens=TokenService(database),
        visits=VisitService(database),
        recorder=_recorder(
            database,
            anonymize_ips,
            visit_flush_interval,
            visit_buffer,
            redis_url,
            visit_stream,
            country_of,
        ),
        idempotency=IdempotencyService(database),
        link_events=link_events,
        history=history,
        webhooks=webhooks,
    )
    if isinstance(services.recorder, VisitRecorder):  # this process writes its visits
        services.recorder.writer.on_written = VisitedEvents()
    return services


def _recorder(
    database: Database,
    anonymize_ips: bool,
    flush_interval: float,
    buffer: int,
    redis_url: str | None,
    stream: str,
    country_of=None,
) -> Recorder:
    """A worker of ``shortener serve`` hands visits over (to Redis first, when configured);
    any other process (the test client, ``flask run``) writes its own."""
    channel = inherited()
    if channel is None:
        return VisitRecorder(
            database,
            anonymize_ips=anonymize_ips,
            flush_interval=flush_interval,
            country_of=country_of,
        )
    producer = StreamProducer(redis_url, stream) if redis_url else None
    return HandOverRecorder(channel, stream=producer, max_buffered=buffer)
