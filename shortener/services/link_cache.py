"""The redirect's link cache: slug -> Redirect in each worker, forgotten when any link changes.

- Bounded: at most ``size`` entries, the least recently used evicted first. Only found links
  are kept (no negative caching): a slug not found always asks the database, so a link made
  a moment ago, anywhere, is found at once.
- Invalidated as a whole, by a stamp: the host counter (a file mapped into every process of
  the host, raised after each committed change of a link) and the number of times this
  process saw the database's counter move. Every lookup compares the stamp with the one its
  entries were filled under and drops them all when it moved. A change made through the API
  or the command line on this host is so seen by the very next redirect of every worker; a
  change made on another host (another host counter) once a poll of the database counter
  (every ``POLL_SECONDS``) has seen it.
- An entry is kept only if the stamp did not move while the database was asked: a change
  committed during the read then cannot leave the old target behind.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from ..storage import Database
from ..storage.link_changes import HostCounter, bump_row, read_row
from ..storage.records import Redirect

logger = logging.getLogger(__name__)

# How often each worker reads the database's counter: a change made on another host is seen
# within this (plus the read itself), well within the second the issue allows.
POLL_SECONDS = 0.5
_Stamp = tuple[bytes, int]
_UNREAD = object()  # the poller's "last value" before its first successful read


class LinkChanges:
    """Raises the counters when links change, and tells the cache when they moved."""

    def __init__(
        self, database: Database, counter_path: str, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.database = database
        self.host_counter = HostCounter(counter_path)
        self.poll_seconds = poll_seconds
        self._remote_moves = 0  # raised by the poller when the database's counter moved
        self._poller_pid: int | None = None
        self._poller: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        _forked_children.add(self)

    def stamp(self) -> _Stamp:
        return (self.host_counter.read(), self._remote_moves)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction that changes links: the database's counter is raised as its
        last statement, the host counter once it has committed (raised before the commit, a
        redirect could fill the cache with the old row under the new stamp)."""
        with self.database.write() as connection:
            yield connection
            bump_row(connection)
        self.host_counter.bump()

    def watch(self) -> None:
        """Starts this process's poller of the database's counter, once per process. Its first
        read is made here, before the cache is filled: a move it sees later is a change."""
        if self._poller_pid == os.getpid() or self._stopped.is_set():
            return
        with self._lock:
            if self._poller_pid == os.getpid():
                return
            self._poller_pid = os.getpid()
            last = self._poll_once(_UNREAD)
            self._poller = threading.Thread(
                target=_poll, args=(weakref.ref(self), last), name="link-changes", daemon=True
            )
            self._poller.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stops the poller and waits for its read to end (before the connections go)."""
        self._stopped.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout)

    def _poll_once(self, last: object) -> object:
        try:
            with self.database.read() as connection:
                value = read_row(connection)
        except Exception as error:  # noqa: BLE001 - the poller must outlive database outages
            logger.debug("link changes not polled: %s", error)
            return last
        if value != last:
            self._remote_moves += 1  # only this thread writes it
        return value

    def _after_fork(self) -> None:
        self._poller_pid, self._poller = None, None  # threads do not survive a fork
        self._lock = threading.Lock()


def _poll(changes_ref: weakref.ref[LinkChanges], last: object) -> None:
    """The poller's loop; it ends when its LinkChanges is closed or collected. Until a read
    succeeds, the first one that does counts as a move."""
    while True:
        changes = changes_ref()
        if changes is None or changes._stopped.is_set():
            return
        stopped, interval = changes._stopped, changes.poll_seconds
        del changes  # no strong reference while sleeping: an unused app can be collected
        if stopped.wait(interval):
            return
        changes = changes_ref()
        if changes is None:
            return
        last = changes._poll_once(last)
        del changes


class LinkCache:
    """Found links by slug, at most ``size`` of them (least recently used evicted)."""

    def __init__(
        self, load: Callable[[str], Redirect | None], changes: LinkChanges, *, size: int
    ) -> None:
        if size < 1:
            raise ValueError("a link cache holds at least one entry")
        self._load = load
        self._changes = changes
        self.size = size
        self._entries: OrderedDict[str, Redirect] = OrderedDict()
        self._stamp: _Stamp | None = None
        self._lock = threading.Lock()
        _forked_children.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, slug: str) -> Redirect | None:
        stamp = self._changes.stamp()
        if stamp != self._stamp:
            stamp = self._forget()
        entries = self._entries
        found = entries.get(slug)
        if found is not None:
            try:
                entries.move_to_end(slug)
            except KeyError:  # evicted or dropped by another thread meanwhile
                pass
            return found
        found = self._load(slug)
        if found is not None:
            with self._lock:
                if self._stamp == stamp and self._changes.stamp() == stamp:
                    entries[slug] = found
                    if len(entries) > self.size:
                        entries.popitem(last=False)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._stamp = None

    def _forget(self) -> _Stamp:
        """Drops every entry: the counters moved (or this process starts). Returns the stamp
        the cache is filled under from now on."""
        self._changes.watch()
        stamp = self._changes.stamp()
        with self._lock:
            if stamp != self._stamp:
                self._entries.clear()
                self._stamp = stamp
        return stamp

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._entries.clear()
        self._stamp = None


# A forked child (a worker forked after the app was built) starts with an empty cache and
# its own poller: entries and threads of the parent are not its own.
_forked_children: weakref.WeakSet = weakref.WeakSet()


def _reset_after_fork() -> None:
    for instance in list(_forked_children):
        instance._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
