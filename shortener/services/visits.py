"""Recording visits off the hot path.

A redirect hands its visit to a recorder and answers at once. Under ``shortener serve`` that
is a ``HandOverRecorder`` (services/visit_handover.py): the visit goes to the one visit-writer
process (shortener/visit_writer.py), or to a Redis Stream, and this request worker never
writes it. Anywhere else (the test client, a bare ``flask run``) it is the in-process
``VisitRecorder`` below: a deque that a background thread writes every ``flush_interval``.

Both end in ``VisitWriter``: it describes each visit (user agent, referrer host, anonymized
address) and writes a batch in one transaction that inserts the visits, adds to the links'
``visit_count`` and to the hourly rollups. Every visit carries a unique ``uid`` from the
moment it is captured, so a batch written twice (a retry, a redelivery) counts once.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection

from ..metrics import VISITS_DROPPED, VISITS_QUEUED_SOON, VISITS_WRITTEN, WRITER_LAG
from ..storage import Database, DatabaseUnavailable
from ..storage import visit_queries as queries
from ..storage.visit_queries import NewVisit
from .visitors import (
    REFERRER_MAX_LENGTH,
    USER_AGENT_MAX_LENGTH,
    clean_header,
    client_address,
    describe_user_agent,
    referrer_host,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawVisit:
    """What the hot path captures; everything else is worked out by the writer."""

    link_id: int
    visited_at: datetime
    referrer: str | None
    user_agent: str | None
    remote_addr: str | None
    uid: str | None = None  # given by the recorder when the redirect does not
    # Set when a rule or a variant chose the target (services/rules.py): the URL and which
    # one (indexes). None: the link's target, filled in when the visit is written.
    target_used: str | None = None
    rule: int | None = None
    variant: int | None = None


class Recorder(Protocol):
    """What the redirect and the worker's exit hook need of a recorder."""

    def record(self, visit: RawVisit) -> None: ...

    def close(self, timeout: float = 10.0) -> None: ...


class VisitIds:
    """Unique visit ids, cheap enough for the hot path: a random 64-bit prefix per process
    (drawn again after a fork) and a counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid, self._prefix = os.getpid(), secrets.token_hex(8)
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter):x}"


class VisitsNotWritten(Exception):
    """Nothing of the batch could be written (the database is unavailable, or every visit
    failed: the system's fault, a missing table say); keep it all and retry."""


class VisitWriter:
    """Describes raw visits and writes them, one transaction a batch."""

    def __init__(self, database: Database, *, anonymize_ips: bool = True, country_of=None) -> None:
        self.database = database
        self.anonymize_ips = anonymize_ips
        # Address -> ISO country (services/geoip.py), or None without a GeoIP database.
        self.country_of = country_of
        self._ids = VisitIds()
        # Called with each batch inside its transaction (webhooks' link.visited messages).
        self.on_written: Callable[[Connection, list[NewVisit]], None] | None = None

    def write(self, batch: list[RawVisit]) -> int:
        """Writes the batch; returns how many visits were new.

        Raises VisitsNotWritten when the batch must be retried whole (retrying is safe: the
        visits written meanwhile are skipped by uid). When a batch fails otherwise, it is
        written one visit at a time: visits that fail while others succeed are the data's
        fault and are dropped with an error log, so one bad visit never blocks the rest.
        """
        batch = [self._with_uid(visit) for visit in batch]
        try:
            return self._write(batch)
        except DatabaseUnavailable as error:
            raise VisitsNotWritten(str(error)) from error
        except Exception:
            logger.info("a batch of %d visits failed; writing one by one", len(batch))
        written, failed, last_error = 0, [], None
        for visit in batch:
            try:
                written += self._write([visit])
            except DatabaseUnavailable as error:
                raise VisitsNotWritten(str(error)) from error
            except Exception as error:
                failed.append(visit)
                last_error = error
        if failed and len(failed) == len(batch):
            raise VisitsNotWritten(str(last_error)) from last_error
        for visit in failed:
            logger.error("dropped a visit that cannot be written: %r", visit)
        VISITS_DROPPED.inc(len(failed))
        return written

    def _with_uid(self, visit: RawVisit) -> RawVisit:
        if visit.uid is not None:
            return visit
        return RawVisit(visit.link_id, visit.visited_at, visit.referrer, visit.user_agent,
                        visit.remote_addr, self._ids.next(), visit.target_used, visit.rule,
                        visit.variant)  # fmt: skip

    def _write(self, batch: list[RawVisit]) -> int:
        described = [self.describe(visit) for visit in batch]
        with self.database.write() as connection:
            # Only SQLite reuses ids; elsewhere another host's clock could run behind.
            written = queries.record(
                connection, described, not_before_creation=self.database.is_sqlite
            )
            if self.on_written is not None:
                self.on_written(connection, described)
        VISITS_WRITTEN.inc(written)
        if batch:
            oldest = min(visit.visited_at for visit in batch)
            WRITER_LAG.set((datetime.now(UTC) - oldest).total_seconds())
        return written

    def describe(self, visit: RawVisit) -> NewVisit:
        user_agent = clean_header(visit.user_agent, USER_AGENT_MAX_LENGTH)
        browser, os_family, is_bot = (
            describe_user_agent(user_agent) if user_agent else (None, None, False)
        )
        referrer = clean_header(visit.referrer, REFERRER_MAX_LENGTH)
        return NewVisit(
            link_id=visit.link_id,
            visited_at=visit.visited_at,
            referrer=referrer,
            user_agent=user_agent,
            browser=browser,
            os=os_family,
            is_bot=is_bot,
            ip=client_address(visit.remote_addr, anonymize=self.anonymize_ips),
            referrer_host=referrer_host(referrer),
            uid=visit.uid,
            target_used=visit.target_used,
            rule=visit.rule,
            variant=visit.variant,
            country=self.country_of(visit.remote_addr) if self.country_of else None,
        )


class VisitRecorder:
    """The in-process recorder: a deque, written by a background thread of this process.

    A failed or locked write is logged and retried on the next round; the visitor already has
    their redirect. ``close`` (a graceful stop) writes everything; a crash loses at most the
    last interval.
    """

    def __init__(
        self,
        database: Database,
        *,
        anonymize_ips: bool = True,
        country_of=None,
        flush_interval: float = 1.0,
        max_batch: int = 500,
        max_pending: int = 1_000_000,
    ) -> None:
        self.writer = VisitWriter(database, anonymize_ips=anonymize_ips, country_of=country_of)
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._ids = VisitIds()
        self._pending: deque[RawVisit] = deque()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._writer_pid: int | None = None
        self._atexit_registered = False

    @property
    def database(self) -> Database:
        return self.writer.database

    @database.setter
    def database(self, database: Database) -> None:
        self.writer.database = database

    # -- the hot path -------------------------------------------------------------------
    def record(self, visit: RawVisit) -> None:
        if visit.uid is None:  # a retry must not give it another
            visit = RawVisit(visit.link_id, visit.visited_at, visit.referrer, visit.user_agent,
                             visit.remote_addr, self._ids.next(), visit.target_used,
                             visit.rule, visit.variant)  # fmt: skip
        self._pending.append(visit)
        VISITS_QUEUED_SOON.inc()  # the hot path: counted in memory, flushed each second
        if self._writer_pid != os.getpid():
            self._start_writer()

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- the writer ---------------------------------------------------------------------
    def _start_writer(self) -> None:
        """Started on first use in each process, so a fork never inherits a dead thread."""
        with self._start_lock:
            if self._writer_pid == os.getpid():
                return
            self._writer_pid = os.getpid()
            self._stop = threading.Event()
            thread = threading.Thread(target=self._run, name="visit-writer", daemon=True)
            thread.start()
            if not self._atexit_registered:
                atexit.register(self.close)
                self._atexit_registered = True

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def flush(self) -> int:
        """Writes everything pending now; returns how many visits were written. Never raises:
        what cannot be written now stays queued, in order, for the next round."""
        written = 0
        with self._flush_lock:
            while self._pending:
                batch = self._take_batch()
                try:
                    written += self.writer.write(batch)
                except VisitsNotWritten as error:
                    self._requeue(batch, error)
                    break
        return written

    def _requeue(self, batch: list[RawVisit], error: BaseException) -> None:
        self._pending.extendleft(reversed(batch))
        logger.warning(
            "could not write %d visits; will retry (%d pending)",
            len(batch),
            len(self._pending),
            exc_info=error,
        )
        self._shed_overflow()

    def close(self, timeout: float = 10.0) -> None:
        """Stops the writer and writes what is left, retrying for up to ``timeout`` seconds.
        A batch the background thread is writing is out of the queue meanwhile: close waits
        for it (the flush lock) before it looks at what is left."""
        self._stop.set()
        self._writer_pid = None  # a later record() starts a new writer
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._flush_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                logger.error("stopping while a batch of visits is still being written")
                return
            self._flush_lock.release()
            if not self._pending:
                return
            if self.flush() == 0 and self._pending:
                time.sleep(0.2)
        if self._pending:
            logger.error("stopping with %d visits unwritten", len(self._pending))

    def _take_batch(self) -> list[RawVisit]:
        batch = []
        while self._pending and len(batch) < self.max_batch:
            batch.append(self._pending.popleft())
        return batch

    def _shed_overflow(self) -> None:
        overflow = len(self._pending) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            logger.error("dropped the %d oldest unwritten visits: backlog full", overflow)
            VISITS_DROPPED.inc(overflow)
