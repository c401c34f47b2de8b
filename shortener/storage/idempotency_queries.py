"""Queries on Idempotency-Key claims (see services/idempotency.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from .tables import idempotency_keys

IN_PROGRESS = "in-progress"
DONE = "done"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    id: int
    fingerprint: str
    state: str
    attempt: str
    response_status: int | None
    response_location: str | None
    response_etag: str | None
    response_body: str | None
    created_at: datetime


_SELECT = select(
    idempotency_keys.c.id,
    idempotency_keys.c.fingerprint,
    idempotency_keys.c.state,
    idempotency_keys.c.attempt,
    idempotency_keys.c.response_status,
    idempotency_keys.c.response_location,
    idempotency_keys.c.response_etag,
    idempotency_keys.c.response_body,
    idempotency_keys.c.created_at,
)


def find(
    connection: Connection, *, user_id: int, token_id: int, key: str
) -> IdempotencyRecord | None:
    row = connection.execute(
        _SELECT.where(
            idempotency_keys.c.user_id == user_id,
            idempotency_keys.c.token_id == token_id,
            idempotency_keys.c.key == key,
        )
    ).first()
    return None if row is None else IdempotencyRecord(**row._mapping)


def insert_claim(
    connection: Connection,
    *,
    user_id: int,
    token_id: int,
    key: str,
    fingerprint: str,
    attempt: str,
    now: datetime,
) -> int:
    """A new in-progress claim; DuplicateKey when the credential already used the key."""
    result = connection.execute(
        insert(idempotency_keys)
        .values(
            user_id=user_id,
            token_id=token_id,
            key=key,
            fingerprint=fingerprint,
            state=IN_PROGRESS,
            attempt=attempt,
            created_at=now,
        )
        .returning(idempotency_keys.c.id)
    )
    return result.scalar_one()


def take_over(
    connection: Connection,
    record_id: int,
    *,
    seen_attempt: str,
    fingerprint: str,
    attempt: str,
    now: datetime,
) -> bool:
    """Restarts an expired or abandoned claim as a new one; False if another request did so
    first (its attempt is no longer the one seen)."""
    result = connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.id == record_id, idempotency_keys.c.attempt == seen_attempt)
        .values(
            fingerprint=fingerprint,
            state=IN_PROGRESS,
            attempt=attempt,
            response_status=None,
            response_location=None,
            response_etag=None,
            response_body=None,
            created_at=now,
        )
    )
    return result.rowcount == 1


def complete(
    connection: Connection,
    record_id: int,
    *,
    attempt: str,
    status: int,
    location: str | None,
    etag: str | None,
    body: str | None,
) -> bool:
    """Stores the answer of the claim's holder; False if the claim was taken over."""
    result = connection.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.id == record_id,
            idempotency_keys.c.attempt == attempt,
            idempotency_keys.c.state == IN_PROGRESS,
        )
        .values(
            state=DONE,
            response_status=status,
            response_location=location,
            response_etag=etag,
            response_body=body,
        )
    )
    return result.rowcount == 1


def release(connection: Connection, record_id: int, *, attempt: str) -> None:
    """Forgets an unfinished claim, so the client may try the key again."""
    connection.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.id == record_id,
            idempotency_keys.c.attempt == attempt,
            idempotency_keys.c.state == IN_PROGRESS,
        )
    )


def purge(connection: Connection, *, created_before: datetime) -> int:
    result = connection.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at < created_before)
    )
    return result.rowcount
