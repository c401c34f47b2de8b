"""Handing visits from the request workers to the visit writer, without ever waiting.

``shortener serve``'s gunicorn master makes a Unix datagram socket pair before it forks the
workers: each worker inherits the sending end (non-blocking), the visit-writer process the
receiving end, and the master keeps both, so what is queued in the socket outlives a writer
that dies and is read by the next one. A visit is one line of JSON; a datagram holds one or
more lines.

A redirect sends its visit at once (a few microseconds). When the socket is full (the writer
is behind, or down and restarting) the visit waits in a bounded deque of the worker
(``SHORTENER_VISIT_BUFFER``) that a background thread sends as soon as the socket takes it;
beyond the bound the oldest are dropped and counted in the log. With a Redis Stream
(``SHORTENER_REDIS_URL``) the visit is added there first, and the socket is the way around a
Redis that does not answer.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from ..metrics import VISITS_DROPPED, VISITS_QUEUED_SOON
from .visits import RawVisit, VisitIds

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# What the master sends once the workers are gone: the writer writes what it has, and exits.
END = b"!end"
MAX_DATAGRAM = 60 * 1024
# The sending end's buffer: how much the kernel holds for a writer that is behind or down.
SEND_BUFFER_BYTES = 4 * 1024 * 1024
RETRY_SECONDS = 0.05
DROP_LOG_SECONDS = 10.0

_inherited: socket.socket | None = None


def make_channel() -> tuple[socket.socket, socket.socket]:
    """(sending end, receiving end): the master keeps both and its workers inherit the first."""
    sending, receiving = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sending.setblocking(False)
    try:
        sending.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    except OSError:
        pass  # the system's default buffer then
    return sending, receiving


def inherit(sending: socket.socket | None) -> None:
    """Set in the master before it forks: the workers' apps hand their visits over to it."""
    global _inherited
    _inherited = sending


def inherited() -> socket.socket | None:
    return _inherited


def encode(visit: RawVisit, uid: str) -> bytes:
    micros = (visit.visited_at - EPOCH) // MICROSECOND
    record = [uid, visit.link_id, micros, visit.referrer, visit.user_agent, visit.remote_addr]
    if visit.target_used is not None:  # chosen by a rule or a variant (services/rules.py)
        record += [visit.target_used, visit.rule, visit.variant]
    return json.dumps(record, separators=(",", ":")).encode()


def decode(line: bytes) -> RawVisit:
    """Raises ValueError (or TypeError) for a line that is not a visit."""
    fields = json.loads(line)
    target_used = rule = variant = None
    if isinstance(fields, list) and len(fields) == 9:  # a visit a rule or variant routed
        *fields, target_used, rule, variant = fields
        if not isinstance(target_used, str) or not all(
            index is None or (isinstance(index, int) and 0 <= index < 100)
            for index in (rule, variant)
        ):
            raise ValueError(f"not a visit: {line[:200]!r}")
    uid, link_id, micros, referrer, user_agent, remote_addr = fields
    if not isinstance(uid, str) or not isinstance(link_id, int) or not isinstance(micros, int):
        raise ValueError(f"not a visit: {line[:200]!r}")
    for header in (referrer, user_agent, remote_addr):
        if header is not None and not isinstance(header, str):
            raise ValueError(f"not a visit: {line[:200]!r}")
    visited_at = EPOCH + timedelta(microseconds=micros)
    return RawVisit(link_id, visited_at, referrer, user_agent, remote_addr, uid,
                    target_used, rule, variant)  # fmt: skip


class HandOverRecorder:
    """The request worker's recorder under ``shortener serve``: it never writes a visit."""

    def __init__(self, channel: socket.socket, *, stream=None, max_buffered: int = 10_000):
        self.channel = channel
        self.stream = stream  # a visit_stream.StreamProducer, or None
        self.max_buffered = max_buffered
        self.dropped = 0
        self._ids = VisitIds()
        self._buffered: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender_pid: int | None = None
        self._dropped_logged_at = 0.0
        self._datagram_limit = MAX_DATAGRAM

    # -- the hot path -------------------------------------------------------------------
    def record(self, visit: RawVisit) -> None:
        payload = encode(visit, visit.uid or self._ids.next())
        VISITS_QUEUED_SOON.inc()  # the hot path: counted in memory, flushed each second
        if self.stream is not None and self.stream.add(payload):
            return
        if not self._buffered:
            try:
                self.channel.send(payload)
                return
            except OSError:  # full (BlockingIOError), or no writer end at all
                pass
        self._keep(payload)

    @property
    def pending(self) -> int:
        """Visits waiting in this worker for the socket to take them."""
        return len(self._buffered)

    def _keep(self, payload: bytes) -> None:
        with self._lock:
            if len(self._buffered) >= self.max_buffered:
                self._buffered.popleft()
                self.dropped += 1
                VISITS_DROPPED.inc()
                self._log_drops()
            self._buffered.append(payload)
        if self._sender_pid != os.getpid():
            self._start_sender()
        self._wake.set()

    def _log_drops(self) -> None:
        now = time.monotonic()
        if now - self._dropped_logged_at >= DROP_LOG_SECONDS:
            self._dropped_logged_at = now
            logger.error(
                "the visit writer is not taking visits: dropped %d so far (buffer of %d full)",
                self.dropped,
                self.max_buffered,
            )

    # -- the background sender ----------------------------------------------------------
    def _start_sender(self) -> None:
        with self._lock:
            if self._sender_pid == os.getpid():
                return
            self._sender_pid = os.getpid()
            self._stop = threading.Event()
            threading.Thread(target=self._run, name="visit-handover", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            while self._buffered and not self._stop.is_set():
                if self.flush() == 0:
                    self._stop.wait(RETRY_SECONDS)

    def flush(self) -> int:
        """Sends what the socket takes now, several visits a datagram; returns how many."""
        sent = 0
        while True:
            with self._lock:
                if not self._buffered:
                    return sent
                lines = [self._buffered.popleft()]
                size = len(lines[0]) + 1
                while self._buffered and size + len(self._buffered[0]) < self._datagram_limit:
                    line = self._buffered.popleft()
                    lines.append(line)
                    size += len(line) + 1
                try:
                    self.channel.send(b"\n".join(lines))
                except OSError as error:
                    self._buffered.extendleft(reversed(lines))
                    if error.errno == errno.EMSGSIZE and len(lines) > 1:
                        self._datagram_limit //= 2  # a small socket buffer: fewer a datagram
                        continue
                    if error.errno == errno.EMSGSIZE:  # one line: not a visit we could send
                        self._buffered.popleft()
                        continue
                    return sent
            sent += len(lines)

    def close(self, timeout: float = 10.0) -> None:
        """A graceful stop: hand over everything kept, waiting up to ``timeout`` seconds for
        a writer that is behind or restarting."""
        self._stop.set()
        self._sender_pid = None
        deadline = time.monotonic() + timeout
        while self._buffered and time.monotonic() < deadline:
            if self.flush() == 0 and self._buffered:
                time.sleep(RETRY_SECONDS)
        if self._buffered:
            logger.error("stopping with %d visits not handed over", len(self._buffered))
