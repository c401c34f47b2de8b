"""Idempotency-Key on POST (IETF httpapi draft "The Idempotency-Key HTTP Header Field").

A client that may have lost the answer to a POST repeats it with the same key. Keys are
claimed in the database, so they hold across workers and hosts:

- a key is scoped to its credential: a user's password, or one of their tokens;
- the same key with the same request (method, URI and body bytes) within 24 hours replays
  the first answer without doing anything; with another request it is refused (422);
- while the first request is still running, a repeat is refused (409), unless the claim is
  older than ``ABANDONED_AFTER`` (60 s): the worker that held it died (gunicorn kills a
  worker whose request runs past its 30 s timeout), and the repeat takes it over;
- only successful answers are kept: an error releases the claim, so the client may fix the
  request or retry it with the same key;
- a token's secret is never stored: a repeated token creation answers 409 instead;
- keys older than 24 hours are purged, at most once a minute per process when a key is
  claimed, and by ``shortener idempotency purge``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..storage import Database, DuplicateKey
from ..storage import idempotency_queries as queries
from .actors import utcnow
from .errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyReplayUnavailable,
    InvalidIdempotencyKey,
)

KEY_MAX_LENGTH = 255
# 1-255 printable ASCII characters, not starting or ending with a space: HTTP drops spaces
# around a header's value, so no other key can arrive. The OpenAPI document states this too.
KEY_PATTERN = rf"^[!-~](?:[ -~]{{0,{KEY_MAX_LENGTH - 2}}}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
REPLAY_WINDOW = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)
PURGE_INTERVAL_SECONDS = 60.0
IN_USE_RETRY_AFTER_SECONDS = 1
_CLAIM_ATTEMPTS = 3


def checked_key(value: str) -> str:
    """The key as sent (1-255 printable ASCII characters), or a 400."""
    if not _KEY.fullmatch(value):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {KEY_MAX_LENGTH} printable ASCII characters, "
            "such as a UUID."
        )
    return value


def fingerprint(method: str, uri: str, body: bytes) -> str:
    """What makes two requests the same request: method, path with query, body bytes."""
    digest = hashlib.sha256()
    for part in (method.encode(), uri.encode("utf-8", "surrogatepass"), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer kept for replay; ``body`` None: not replayable (a token secret)."""

    status: int
    location: str | None
    etag: str | None
    body: str | None


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run the request once: complete() or release() it."""

    record_id: int
    attempt: str


class IdempotencyService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock  # tests move time forward
        self._next_purge = 0.0  # time.monotonic() of the next opportunistic purge
        self._purge_lock = threading.Lock()

    def claim(self, *, user_id: int, token_id: int | None, key: str, fingerprint: str):
        """A new Claim, or the Answer to replay; raises 409 or 422 otherwise."""
        self._purge_now_and_then()
        token_id = token_id or 0
        for _ in range(_CLAIM_ATTEMPTS):
            now = self.clock()
            attempt = secrets.token_hex(16)
            try:
                with self.database.write() as connection:
                    record_id = queries.insert_claim(
                        connection,
                        user_id=user_id,
                        token_id=token_id,
                        key=key,
                        fingerprint=fingerprint,
                        attempt=attempt,
                        now=now,
                    )
                return Claim(record_id, attempt)
            except DuplicateKey:
                pass
            with self.database.write() as connection:
                record = queries.find(connection, user_id=user_id, token_id=token_id, key=key)
                if record is None:
                    continue  # released or purged meanwhile: claim it afresh
                expired = record.created_at <= now - REPLAY_WINDOW
                abandoned = (
                    record.state == queries.IN_PROGRESS
                    and record.created_at <= now - ABANDONED_AFTER
                )
                if expired or abandoned:
                    if queries.take_over(
                        connection,
                        record.id,
                        seen_attempt=record.attempt,
                        fingerprint=fingerprint,
                        attempt=attempt,
                        now=now,
                    ):
                        return Claim(record.id, attempt)
                    continue
            return self._answer_for(record, fingerprint)
        raise self._in_use()

    def complete(self, claim: Claim, answer: Answer) -> None:
        with self.database.write() as connection:
            queries.complete(
                connection,
                claim.record_id,
                attempt=claim.attempt,
                status=answer.status,
                location=answer.location,
                etag=answer.etag,
                body=answer.body,
            )

    def release(self, claim: Claim) -> None:
        with self.database.write() as connection:
            queries.release(connection, claim.record_id, attempt=claim.attempt)

    def purge(self) -> int:
        """Deletes keys older than the replay window; returns how many."""
        with self.database.write() as connection:
            return queries.purge(connection, created_before=self.clock() - REPLAY_WINDOW)

    def _purge_now_and_then(self) -> None:
        moment = time.monotonic()
        with self._purge_lock:
            if moment < self._next_purge:
                return
            self._next_purge = moment + PURGE_INTERVAL_SECONDS
        self.purge()

    def _answer_for(self, record: queries.IdempotencyRecord, fingerprint: str) -> Answer:
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; "
                "use a new key for a new request."
            )
        if record.state == queries.IN_PROGRESS:
            raise self._in_use()
        if record.response_body is None:
            raise IdempotencyReplayUnavailable(
                f"The first request with this Idempotency-Key created {record.response_location}"
                "; a token's secret is shown only once, so that answer cannot be repeated. "
                "Revoke that token if its secret was lost, and create another."
            )
        assert record.response_status is not None
        return Answer(
            record.response_status,
            record.response_location,
            record.response_etag,
            record.response_body,
        )

    @staticmethod
    def _in_use() -> IdempotencyKeyInUse:
        return IdempotencyKeyInUse(
            "A request with this Idempotency-Key is still running; repeat it once it has "
            "finished to get its answer.",
            headers={"Retry-After": str(IN_USE_RETRY_AFTER_SECONDS)},
        )
