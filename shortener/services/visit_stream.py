"""Visits through a Redis Stream (``SHORTENER_REDIS_URL``), for writers on several hosts.

Request workers ``XADD`` each visit (one field, the same JSON line as the local hand-over).
Consumers (``shortener visits work``, and the writer of every ``shortener serve``) read it in
one consumer group with ``XREADGROUP``, write a batch, then ``XACK`` and ``XDEL`` its entries.
Entries a consumer read but never acknowledged (it died) are taken over by another once idle
longer than ``SHORTENER_VISIT_CLAIM_IDLE`` (``XAUTOCLAIM``). The stream is never trimmed: an
entry leaves it only once written, so Redis holds the visits while no consumer runs.

A redirect waits for Redis at most ``REDIS_TIMEOUT``; when Redis fails it stops asking for
``REDIS_PAUSE`` and hands visits over locally meanwhile, so nothing is lost either way.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)

GROUP = "shortener-visit-writers"
FIELD = b"v"
REDIS_TIMEOUT = 0.25
REDIS_PAUSE = 1.0


def client(url: str, *, timeout: float | None = REDIS_TIMEOUT):
    """No retries of its own: every caller has a way around a Redis that fails. Imported
    here, not at the top: gunicorn's master imports this module, and a gevent worker must
    patch sockets before redis (and the ssl it imports) is loaded."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=REDIS_TIMEOUT if timeout is None else timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class StreamProducer:
    """The request worker's side: ``add`` is True once Redis has the visit."""

    def __init__(self, url: str, key: str) -> None:
        import redis

        self.key = key
        self._redis = client(url)
        self._errors = redis.RedisError
        self._paused_until = 0.0

    def add(self, payload: bytes) -> bool:
        if self._paused_until and time.monotonic() < self._paused_until:
            return False
        try:
            self._redis.xadd(self.key, {FIELD: payload})
        except self._errors as error:
            if time.monotonic() >= self._paused_until:
                logger.warning(
                    "Redis did not take a visit (%s); handing visits over locally for %.0f s",
                    error,
                    REDIS_PAUSE,
                )
            self._paused_until = time.monotonic() + REDIS_PAUSE
            return False
        self._paused_until = 0.0
        return True


class StreamConsumer:
    """One consumer of the group: entries come back as (entry id, payload)."""

    def __init__(self, url: str, key: str, name: str, *, claim_idle: float) -> None:
        self.key = key
        self.name = name
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        # A blocking read waits up to its own block time, plus room for the answer.
        self._redis = client(url, timeout=None)
        self._group_ready = False
        self._own_pending_read = False
        self._next_claim = 0.0

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        from redis import ResponseError

        try:
            # From the stream's start: visits added before any consumer ran are written too.
            self._redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    def read(self, count: int, block_seconds: float) -> list[tuple[bytes, bytes | None]]:
        """Up to ``count`` entries: first this consumer's own unacknowledged ones (after a
        restart under the same name), then others' idle ones, then new ones. Raises
        redis.RedisError while Redis is unreachable."""
        self._ensure_group()
        if not self._own_pending_read:
            entries = self._group_read("0", count, None)
            if entries:
                return entries
            self._own_pending_read = True
        if time.monotonic() >= self._next_claim:
            claimed = self._claim(count)
            if claimed:
                return claimed
            self._next_claim = time.monotonic() + min(1.0, self.claim_idle_ms / 4000)
        return self._group_read(">", count, max(1, int(block_seconds * 1000)))

    def _group_read(self, start: str, count: int, block_ms: int | None):
        answer = self._redis.xreadgroup(
            GROUP, self.name, {self.key: start}, count=count, block=block_ms
        )
        entries = []
        for _, items in answer or []:
            entries.extend((entry_id, fields.get(FIELD) if fields else None)
                           for entry_id, fields in items)  # fmt: skip
        return entries

    def _claim(self, count: int):
        _, items, *_ = self._redis.xautoclaim(
            self.key, GROUP, self.name, self.claim_idle_ms, start_id="0-0", count=count
        )
        if items:
            logger.info("%s took over %d visits idle for %d ms", self.name, len(items),
                        self.claim_idle_ms)  # fmt: skip
        return [(entry_id, fields.get(FIELD) if fields else None) for entry_id, fields in items]

    def done(self, entry_ids: list[bytes]) -> None:
        """Written: acknowledged and removed from the stream, in one round trip."""
        if not entry_ids:
            return
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.xack(self.key, GROUP, *entry_ids)
        pipeline.xdel(self.key, *entry_ids)
        pipeline.execute()

    def close(self) -> None:
        self._redis.close()
