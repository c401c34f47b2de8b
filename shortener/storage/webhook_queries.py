"""Queries on webhooks, their outbox (``webhook_messages``) and delivery attempts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from .keyset import newest_first
from .tables import link_tags, links, tags, users, webhook_deliveries, webhook_messages, webhooks

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: int
    owner_id: int
    owner_username: str
    url: str
    events: tuple[str, ...]
    tags: tuple[str, ...] | None  # None: every link of the owner
    active: bool
    secret: str
    created_at: datetime
    updated_at: datetime
    version: int
    consecutive_failures: int
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueMessage:
    """A message whose time has come, with what sending it needs."""

    id: int
    uid: str
    webhook_id: int
    event: str
    payload: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    url: str
    secret: str
    active: bool


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    webhook_id: int
    message_uid: str
    event: str
    attempt: int
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    response_ms: int
    error: str | None
    message_state: str
    next_attempt_at: datetime | None


_JOIN = webhooks.join(users, webhooks.c.user_id == users.c.id)
_SELECT = select(
    *(column for column in webhooks.c if column.name != "user_id"),
    webhooks.c.user_id.label("owner_id"),
    users.c.username.label("owner_username"),
).select_from(_JOIN)


def _record(row) -> WebhookRecord:
    mapping = row._mapping
    tags = mapping["tags"]
    return WebhookRecord(
        id=mapping["id"],
        owner_id=mapping["owner_id"],
        owner_username=mapping["owner_username"],
        url=mapping["url"],
        events=tuple(mapping["events"].split()),
        tags=None if tags is None else tuple(json.loads(tags)),
        active=mapping["active"],
        secret=mapping["secret"],
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
        version=mapping["version"],
        consecutive_failures=mapping["consecutive_failures"],
        disabled_at=mapping["disabled_at"],
    )


def columns_of(values: dict[str, object]) -> dict[str, object]:
    """Field values as stored: events space-separated, tags as JSON text."""
    stored = dict(values)
    if "events" in stored:
        stored["events"] = " ".join(stored["events"])
    if "tags" in stored:
        tags = stored["tags"]
        stored["tags"] = None if tags is None else json.dumps(list(tags))
    return stored


def find_by_id(connection: Connection, webhook_id: int) -> WebhookRecord | None:
    row = connection.execute(_SELECT.where(webhooks.c.id == webhook_id)).first()
    return None if row is None else _record(row)


def page(
    connection: Connection, *, owner_id: int | None, before_id: int | None, limit: int
) -> list[WebhookRecord]:
    query = _SELECT
    if owner_id is not None:
        query = query.where(webhooks.c.user_id == owner_id)
    query = newest_first(query, webhooks.c.id, before_id=before_id, limit=limit)
    return [_record(row) for row in connection.execute(query)]


def insert_webhook(connection: Connection, *, owner_id: int, now: datetime, **values) -> int:
    result = connection.execute(
        insert(webhooks)
        .values(
            user_id=owner_id,
            created_at=now,
            updated_at=now,
            version=1,
            consecutive_failures=0,
            disabled_at=None,
            **columns_of(values),
        )
        .returning(webhooks.c.id)
    )
    return result.scalar_one()


def update_webhook(
    connection: Connection,
    webhook_id: int,
    values: dict[str, object],
    *,
    now: datetime,
    expected_version: int | None,
) -> bool:
    """False when the webhook is gone or (``expected_version``) changed meanwhile."""
    query = update(webhooks).where(webhooks.c.id == webhook_id)
    if expected_version is not None:
        query = query.where(webhooks.c.version == expected_version)
    result = connection.execute(
        query.values(updated_at=now, version=webhooks.c.version + 1, **columns_of(values))
    )
    return result.rowcount == 1


def delete_webhook(connection: Connection, webhook_id: int) -> None:
    """Its messages and attempts go with it (ON DELETE CASCADE)."""
    connection.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


def active_for_owners(
    connection: Connection, owner_ids: Iterable[int] | None
) -> list[WebhookRecord]:
    """Active webhooks of these owners (None: of everyone)."""
    query = _SELECT.where(webhooks.c.active.is_(True))
    if owner_ids is not None:
        query = query.where(webhooks.c.user_id.in_(sorted(set(owner_ids))))
    return [_record(row) for row in connection.execute(query.order_by(webhooks.c.id))]


def any_active_with(connection: Connection, event: str) -> bool:
    """Whether an active webhook subscribes to ``event`` (one cheap indexed-size read)."""
    query = (
        select(webhooks.c.id)
        .where(webhooks.c.active.is_(True), webhooks.c.events.contains(event))
        .limit(1)
    )
    return connection.execute(query).first() is not None


def links_by_id(connection: Connection, link_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """link id -> (slug, owner id), for the links that still exist."""
    query = select(links.c.id, links.c.slug, links.c.owner_id).where(
        links.c.id.in_(sorted(set(link_ids)))
    )
    return {row.id: (row.slug, row.owner_id) for row in connection.execute(query)}


def tags_of_links(connection: Connection, link_ids: Iterable[int]) -> dict[int, list[str]]:
    """link id -> its tags' names, for the links that have any."""
    query = (
        select(link_tags.c.link_id, tags.c.name)
        .select_from(link_tags.join(tags, link_tags.c.tag_id == tags.c.id))
        .where(link_tags.c.link_id.in_(sorted(set(link_ids))))
        .order_by(link_tags.c.link_id, link_tags.c.position)
    )
    found: dict[int, list[str]] = {}
    for row in connection.execute(query):
        found.setdefault(row.link_id, []).append(row.name)
    return found


# -- the outbox ----------------------------------------------------------------------------
def insert_messages(connection: Connection, messages: list[dict[str, object]]) -> None:
    """Each: webhook_id, uid, event, payload, created_at; due at once."""
    if not messages:
        return
    connection.execute(
        insert(webhook_messages),
        [
            {**message, "state": PENDING, "attempts": 0, "next_attempt_at": message["created_at"]}
            for message in messages
        ],
    )


def due_messages(connection: Connection, now: datetime, limit: int) -> list[DueMessage]:
    query = (
        select(
            webhook_messages.c.id,
            webhook_messages.c.uid,
            webhook_messages.c.webhook_id,
            webhook_messages.c.event,
            webhook_messages.c.payload,
            webhook_messages.c.created_at,
            webhook_messages.c.attempts,
            webhook_messages.c.next_attempt_at,
            webhooks.c.url,
            webhooks.c.secret,
            webhooks.c.active,
        )
        .select_from(webhook_messages.join(webhooks))
        .where(webhook_messages.c.next_attempt_at <= now)
        .order_by(webhook_messages.c.next_attempt_at, webhook_messages.c.id)
        .limit(limit)
    )
    return [DueMessage(**row._mapping) for row in connection.execute(query)]


def claim(connection: Connection, message: DueMessage, until: datetime) -> bool:
    """Moves the message's next attempt to ``until`` unless another sender did first: only
    the sender whose UPDATE matched sends it (a sender that dies leaves it due again then)."""
    result = connection.execute(
        update(webhook_messages)
        .where(
            webhook_messages.c.id == message.id,
            webhook_messages.c.next_attempt_at == message.next_attempt_at,
        )
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


def record_attempt(
    connection: Connection,
    message: DueMessage,
    *,
    attempted_at: datetime,
    succeeded: bool,
    status_code: int | None,
    response_ms: int,
    error: str | None,
    next_attempt_at: datetime | None,
) -> None:
    """The attempt, and the message's new state: delivered, due again, or given up."""
    connection.execute(
        insert(webhook_deliveries).values(
            webhook_id=message.webhook_id,
            message_id=message.id,
            attempt=message.attempts + 1,
            attempted_at=attempted_at,
            succeeded=succeeded,
            status_code=status_code,
            response_ms=response_ms,
            error=None if error is None else error[:255],
        )
    )
    if succeeded:
        state = DELIVERED
    else:
        state = PENDING if next_attempt_at is not None else FAILED
    connection.execute(
        update(webhook_messages)
        .where(webhook_messages.c.id == message.id)
        .values(state=state, attempts=message.attempts + 1, next_attempt_at=next_attempt_at)
    )


def drop_message(connection: Connection, message_id: int) -> None:
    """A message of a webhook turned inactive is never sent."""
    connection.execute(
        update(webhook_messages)
        .where(webhook_messages.c.id == message_id)
        .values(state=FAILED, next_attempt_at=None)
    )


def note_result(
    connection: Connection, webhook_id: int, *, succeeded: bool, disable_at: int, now: datetime
) -> bool:
    """Counts the run of consecutive failures (a success resets it); at ``disable_at`` the
    webhook is turned inactive. True when this call disabled it."""
    if succeeded:
        connection.execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id, webhooks.c.consecutive_failures != 0)
            .values(consecutive_failures=0)
        )
        return False
    connection.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(consecutive_failures=webhooks.c.consecutive_failures + 1)
    )
    result = connection.execute(
        update(webhooks)
        .where(
            webhooks.c.id == webhook_id,
            webhooks.c.active.is_(True),
            webhooks.c.consecutive_failures >= disable_at,
        )
        .values(active=False, disabled_at=now, version=webhooks.c.version + 1)
    )
    return result.rowcount == 1


def disable(connection: Connection, webhook_id: int, now: datetime) -> None:
    connection.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id, webhooks.c.active.is_(True))
        .values(active=False, disabled_at=now, version=webhooks.c.version + 1)
    )


def deliveries(
    connection: Connection, webhook_id: int, *, before_id: int | None, limit: int
) -> list[DeliveryRecord]:
    query = (
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.webhook_id,
            webhook_messages.c.uid.label("message_uid"),
            webhook_messages.c.event,
            webhook_deliveries.c.attempt,
            webhook_deliveries.c.attempted_at,
            webhook_deliveries.c.succeeded,
            webhook_deliveries.c.status_code,
            webhook_deliveries.c.response_ms,
            webhook_deliveries.c.error,
            webhook_messages.c.state.label("message_state"),
            webhook_messages.c.next_attempt_at,
        )
        .select_from(webhook_deliveries.join(webhook_messages))
        .where(webhook_deliveries.c.webhook_id == webhook_id)
    )
    query = newest_first(query, webhook_deliveries.c.id, before_id=before_id, limit=limit)
    return [DeliveryRecord(**row._mapping) for row in connection.execute(query)]


def purge_finished(connection: Connection, before: datetime) -> int:
    """Messages delivered or given up that were queued before ``before``, with their attempts
    (ON DELETE CASCADE); returns how many."""
    result = connection.execute(
        delete(webhook_messages).where(
            webhook_messages.c.next_attempt_at.is_(None), webhook_messages.c.created_at < before
        )
    )
    return result.rowcount
