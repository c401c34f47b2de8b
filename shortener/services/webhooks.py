"""Webhooks: an owner's subscriptions to the changes and visits of their links.

Every link change (services/link_events.py) and every batch of visits (the visit writer)
puts one message per subscribing webhook in the outbox, in the transaction that makes the
change: the change and its messages commit together, and nothing queued is lost across a
restart. The sender (shortener/webhook_sender.py) delivers them, signed per the Standard
Webhooks specification, outside any request.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Connection

from ..instants import rfc3339
from ..storage import Database, DuplicateKey, user_queries
from ..storage import webhook_queries as queries
from ..storage.records import UserRecord
from ..storage.visit_queries import NewVisit
from ..storage.webhook_queries import DeliveryRecord, DueMessage, WebhookRecord
from .actors import utcnow
from .errors import Forbidden, InvalidInput, NotFound
from .link_events import LinkEvent, visible_values
from .pagination import Page, decode_cursor, paginate
from .preconditions import NO_PRECONDITION, Precondition, entity_tag

logger = logging.getLogger(__name__)

LINK_CREATED = "link.created"
LINK_UPDATED = "link.updated"
LINK_DELETED = "link.deleted"
LINK_VISITED = "link.visited"
EVENTS = (LINK_CREATED, LINK_UPDATED, LINK_DELETED, LINK_VISITED)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
URL_MAX_LENGTH = 2048
TAGS_MAX = 50
# A webhook is turned inactive after this many failed attempts in a row, across messages.
DISABLE_AFTER_FAILURES = 20
# How often the visit writer looks again whether any webhook wants link.visited.
VISITED_CHECK_SECONDS = 2.0
_MAX_ID = 2**63 - 1
# Delivery: the first retry after 5 s, then twice as long each time up to an hour apart,
# until the message is a day old.
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0
GIVE_UP_AFTER = timedelta(hours=24)
# A message being sent is due again after this long if its sender dies meanwhile (longer
# than a request may take).
CLAIM = timedelta(seconds=60)
# Delivered and given-up messages, with their attempts, are kept this long.
KEEP_FINISHED = timedelta(days=30)


def generate_secret() -> str:
    """``whsec_`` and 32 random bytes in base64, as the specification writes secrets."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def refused_address(address: str) -> bool:
    """Private, loopback, link-local and every other non-global address (IPv4-mapped too)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def target_problem(url: str, *, allow_private: bool) -> str | None:
    """Why a webhook cannot target ``url`` (checked before any DNS lookup: literal addresses
    and local names), or None. The sender checks the resolved addresses again."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        return "Must be an absolute http or https URL."
    if parts.username is not None or parts.password is not None:
        return "Must not carry a user name or password."
    if allow_private:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "Must not target a loopback address."
    try:
        literal = refused_address(host)
    except ValueError:
        return None  # a name: resolved and checked at send time
    if literal:
        return "Must not target a private, loopback or link-local address."
    return None


def matches_tags(wanted: tuple[str, ...] | None, tags: Iterable[str] | None) -> bool:
    """No filter: every link; else a link with at least one of the tags (any case)."""
    if not wanted:
        return True
    have = {tag.casefold() for tag in tags or ()}
    return any(tag.casefold() in have for tag in wanted)


def envelope(event: str, at: datetime, data: dict[str, object]) -> str:
    """The body as the Standard Webhooks specification shapes it: type, timestamp, data."""
    return json.dumps(
        {"type": event, "timestamp": rfc3339(at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def message_uid() -> str:
    return "msg_" + secrets.token_urlsafe(18)


class WebhookService:
    def __init__(
        self,
        database: Database,
        *,
        allow_private: bool = False,
        link_fields: Sequence[str] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.allow_private = allow_private
        # What an event shows of a link (LinkService's EVENT_FIELDS).
        self.link_fields = tuple(link_fields)
        self.clock = clock

    # -- management -----------------------------------------------------------------------
    def create(self, actor: UserRecord, *, owner: str, fields: dict) -> tuple[WebhookRecord, str]:
        """A new webhook and its secret, which is shown this once."""
        self.require_access(actor, owner)
        self._check_url(fields["url"])
        secret = generate_secret()
        with self.database.write() as connection:
            owner_record = user_queries.find_by_name(connection, owner)
            if owner_record is None:
                raise _no_user(owner)
            try:
                webhook_id = queries.insert_webhook(
                    connection,
                    owner_id=owner_record.id,
                    now=self.clock(),
                    url=fields["url"],
                    events=_ordered(fields["events"]),
                    tags=_unique_tags(fields.get("tags")),
                    active=fields.get("active", True),
                    secret=secret,
                )
            except DuplicateKey:  # the owner was deleted meanwhile
                raise _no_user(owner) from None
            return queries.find_by_id(connection, webhook_id), secret

    def list(
        self, actor: UserRecord, *, owner: str | None, cursor: str | None, limit: int
    ) -> Page[WebhookRecord]:
        """The actor's webhooks; an administrator's list holds everyone's unless ``owner``."""
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            owner_id: int | None = actor.id
            if owner is not None:
                self.require_access(actor, owner)
                found = user_queries.find_by_name(connection, owner)
                if found is None:
                    raise _no_user(owner)
                owner_id = found.id
            elif actor.is_admin:
                owner_id = None
            rows = queries.page(connection, owner_id=owner_id, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda webhook: webhook.id)

    def get(self, actor: UserRecord, webhook_id: str | int) -> WebhookRecord:
        number = _parse_id(webhook_id)
        webhook = None
        if number is not None:
            with self.database.read() as connection:
                webhook = queries.find_by_id(connection, number)
        if webhook is None or not _can_see(actor, webhook):
            raise _not_found(webhook_id)
        return webhook

    def update(
        self,
        actor: UserRecord,
        webhook_id: str | int,
        changes: dict,
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> WebhookRecord:
        """PATCH: the fields given. Turning a webhook active again clears its failures."""
        if "url" in changes:
            self._check_url(changes["url"])
        values = dict(changes)
        if "events" in values:
            values["events"] = _ordered(values["events"])
        if "tags" in values:
            values["tags"] = _unique_tags(values["tags"])
        number = _parse_id(webhook_id)
        if number is None:
            raise _not_found(webhook_id)
        with self.database.write() as connection:
            webhook = queries.find_by_id(connection, number)
            if webhook is None or not _can_see(actor, webhook):
                raise _not_found(webhook_id)
            guarded = precondition.check(entity_tag(webhook), f"The webhook '{webhook_id}'")
            if values.get("active") and not webhook.active:
                values.update(consecutive_failures=0, disabled_at=None)
            if values:
                changed = queries.update_webhook(
                    connection,
                    number,
                    values,
                    now=self.clock(),
                    expected_version=webhook.version if guarded else None,
                )
                if not changed:
                    raise precondition.failed(f"The webhook '{webhook_id}'")
            return queries.find_by_id(connection, number)

    def delete(
        self,
        actor: UserRecord,
        webhook_id: str | int,
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> None:
        """The webhook, its queued messages and its delivery history."""
        number = _parse_id(webhook_id)
        if number is None:
            raise _not_found(webhook_id)
        with self.database.write() as connection:
            webhook = queries.find_by_id(connection, number)
            if webhook is None or not _can_see(actor, webhook):
                raise _not_found(webhook_id)
            precondition.check(entity_tag(webhook), f"The webhook '{webhook_id}'")
            queries.delete_webhook(connection, number)

    def deliveries(
        self, actor: UserRecord, webhook_id: str | int, *, cursor: str | None, limit: int
    ) -> Page[DeliveryRecord]:
        """Every delivery attempt, newest first."""
        webhook = self.get(actor, webhook_id)
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            rows = queries.deliveries(connection, webhook.id, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda delivery: delivery.id)

    @staticmethod
    def require_access(actor: UserRecord, owner: str) -> None:
        if not actor.is_admin and actor.username != owner:
            raise Forbidden("Only administrators can manage other users' webhooks.")

    def _check_url(self, url: str) -> None:
        problem = target_problem(url, allow_private=self.allow_private)
        if problem is not None:
            raise InvalidInput("The webhook has invalid fields.", errors={"url": [problem]})

    # -- the outbox -----------------------------------------------------------------------
    def on_link_events(self, connection: Connection, events: Sequence[LinkEvent]) -> None:
        """A LinkEvents subscriber: one message per event and subscribing webhook, in the
        change's transaction (one read of the owners' active webhooks). Events whose own
        statement saw no active webhook of their owner (a create's INSERT reads it, in the
        same transaction) need no read: a plain create costs the outbox nothing."""
        events = [event for event in events if event.owner_has_webhooks is not False]
        if not events:
            return
        subscribed = queries.active_for_owners(connection, {event.owner_id for event in events})
        if not subscribed:
            return
        messages = []
        now = self.clock()
        for event in events:
            link = event.after if event.after is not None else event.before
            tags = set(_tags_of(event.before)) | set(_tags_of(event.after))
            data = {
                "slug": event.slug,
                "owner": link.owner_username if link is not None else None,
                "changes": {name: list(pair) for name, pair in event.changes.items()},
                "link": visible_values(link, self.link_fields) if link is not None else None,
            }
            body = envelope(event.kind, event.at, data)
            for webhook in subscribed:
                if (
                    webhook.owner_id == event.owner_id
                    and event.kind in webhook.events
                    and matches_tags(webhook.tags, tags)
                ):
                    messages.append(_message(webhook, event.kind, body, now))
        queries.insert_messages(connection, messages)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt came to."""

    attempted_at: datetime
    status_code: int | None  # None: no answer (refused, unreachable, timed out)
    response_ms: int
    error: str | None  # None: delivered (a 2xx answer)

    @property
    def succeeded(self) -> bool:
        return self.error is None


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 5, 10, 20, ... and at
    most an hour."""
    return min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)


class WebhookOutbox:
    """The sender's side of the outbox: what is due, claiming it, and what came of it. The
    retry policy lives here; the sender only makes the HTTP requests."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock

    def due(self, limit: int) -> list[DueMessage]:
        """Messages whose time has come, each claimed for ``CLAIM`` (a sender that dies
        leaves it due again then): senders on several hosts never send one at once. A
        message of a webhook turned inactive is dropped instead."""
        now = self.clock()
        with self.database.read() as connection:
            due = queries.due_messages(connection, now, limit)
        claimed = []
        for message in due:
            with self.database.write() as connection:
                if not message.active:
                    queries.drop_message(connection, message.id)
                elif queries.claim(connection, message, now + CLAIM):
                    claimed.append(message)
        return claimed

    def record(self, message: DueMessage, attempt: Attempt) -> None:
        """The attempt, and its consequences: delivered; due again after the backoff while the
        message is under a day old; given up. 410 Gone, or the 20th failure in a row, turns
        the webhook off."""
        next_attempt_at = None
        if not attempt.succeeded and attempt.status_code != 410:
            retry_at = self.clock() + timedelta(seconds=retry_delay(message.attempts + 1))
            if retry_at < message.created_at + GIVE_UP_AFTER:
                next_attempt_at = retry_at
        with self.database.write() as connection:
            queries.record_attempt(
                connection,
                message,
                attempted_at=attempt.attempted_at,
                succeeded=attempt.succeeded,
                status_code=attempt.status_code,
                response_ms=attempt.response_ms,
                error=attempt.error,
                next_attempt_at=next_attempt_at,
            )
            if attempt.status_code == 410:
                queries.disable(connection, message.webhook_id, self.clock())
                logger.warning("webhook %d answered 410 Gone: disabled", message.webhook_id)
            elif queries.note_result(
                connection,
                message.webhook_id,
                succeeded=attempt.succeeded,
                disable_at=DISABLE_AFTER_FAILURES,
                now=self.clock(),
            ):
                logger.warning(
                    "webhook %d failed %d times in a row: disabled",
                    message.webhook_id,
                    DISABLE_AFTER_FAILURES,
                )

    def purge(self) -> int:
        """Messages finished (delivered or given up) more than ``KEEP_FINISHED`` ago, and
        their attempts."""
        with self.database.write() as connection:
            return queries.purge_finished(connection, self.clock() - KEEP_FINISHED)


class VisitedEvents:
    """The visit writer's hook: ``link.visited`` messages for a batch of visits, in the
    batch's transaction. It costs nothing while no webhook wants them: whether any does is
    read at most every ``VISITED_CHECK_SECONDS``, not per batch."""

    def __init__(
        self,
        *,
        check_seconds: float = VISITED_CHECK_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.check_seconds = check_seconds
        self.clock = clock
        self._wanted = False
        self._checked_at = float("-inf")

    def __call__(self, connection: Connection, visits: Sequence[NewVisit]) -> None:
        if not visits or not self._anyone_wants(connection):
            return
        found = queries.links_by_id(connection, [visit.link_id for visit in visits])
        subscribed = [
            webhook
            for webhook in queries.active_for_owners(
                connection, {owner for _, owner in found.values()}
            )
            if LINK_VISITED in webhook.events
        ]
        if not subscribed:
            return
        tags = {}
        if any(webhook.tags for webhook in subscribed):
            tags = queries.tags_of_links(connection, list(found))
        now = self.clock()
        messages = []
        for webhook in subscribed:
            shown = [
                _visit(visit, found[visit.link_id][0])
                for visit in visits
                if visit.link_id in found
                and found[visit.link_id][1] == webhook.owner_id
                and matches_tags(webhook.tags, tags.get(visit.link_id, ()))
            ]
            if shown:
                body = envelope(LINK_VISITED, now, {"visits": shown})
                messages.append(_message(webhook, LINK_VISITED, body, now))
        queries.insert_messages(connection, messages)

    def _anyone_wants(self, connection: Connection) -> bool:
        moment = time.monotonic()
        if moment - self._checked_at >= self.check_seconds:
            self._wanted = queries.any_active_with(connection, LINK_VISITED)
            self._checked_at = moment
        return self._wanted


def _visit(visit: NewVisit, slug: str) -> dict[str, object]:
    """What a link.visited message shows of a visit: never the visitor's address."""
    return {
        "slug": slug,
        "visited_at": rfc3339(visit.visited_at),
        "referrer": visit.referrer,
        "browser": visit.browser,
        "os": visit.os,
        "is_bot": visit.is_bot,
        "country": visit.country,
        "target_used": visit.target_used,
    }


def _message(webhook: WebhookRecord, event: str, body: str, now: datetime) -> dict[str, object]:
    return {
        "webhook_id": webhook.id,
        "uid": message_uid(),
        "event": event,
        "payload": body,
        "created_at": now,
    }


def _tags_of(link) -> list[str]:
    return list(getattr(link, "tags", None) or ()) if link is not None else []


def _ordered(events: Iterable[str]) -> tuple[str, ...]:
    given = set(events)
    return tuple(event for event in EVENTS if event in given)


def _unique_tags(tags: Iterable[str] | None) -> tuple[str, ...] | None:
    """Each tag once (compared in any case), as first given; None or []: no filter."""
    if not tags:
        return None
    seen, kept = set(), []
    for tag in tags:
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            kept.append(tag)
    return tuple(kept)


def _can_see(actor: UserRecord, webhook: WebhookRecord) -> bool:
    return actor.is_admin or actor.id == webhook.owner_id


def _parse_id(webhook_id: str | int) -> int | None:
    if isinstance(webhook_id, int):
        number = webhook_id
    elif isinstance(webhook_id, str) and webhook_id.isascii() and webhook_id.isdigit():
        number = int(webhook_id)
    else:
        return None
    if str(number) != str(webhook_id):
        return None
    return number if 1 <= number <= _MAX_ID else None


def _not_found(webhook_id: str | int) -> NotFound:
    return NotFound(f"There is no webhook '{webhook_id}'.")


def _no_user(username: str) -> NotFound:
    return NotFound(f"There is no user '{username}'.")
