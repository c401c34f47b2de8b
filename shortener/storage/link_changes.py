"""Counters of link changes, which tell every worker's link cache when to forget.

Two counters, each raised by every change of a link (create, replace, update, delete, a
user's links purged):

- ``HostCounter``: 8 bytes in a file that every process of this host maps into memory. The
  process that changed a link raises it after its transaction commits; every worker reads it
  on every redirect (a read of shared memory, no system call), so the very next redirect on
  this host, in any worker, sees the change.
- The ``link_changes`` row in the database, raised in the same transaction as the change:
  workers on other hosts (with their own host counter) poll it and see the change within
  their poll interval.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, select, update

from .tables import link_changes

_COUNTER = struct.Struct("=Q")  # one native unsigned 64-bit integer, 8-byte aligned
COUNTER_ROW = "links"


def bump_row(connection: Connection) -> None:
    """Raises the database's counter inside the caller's (write) transaction; a rollback
    undoes it with the change. Meant as the transaction's last statement: on PostgreSQL it
    holds the row's lock until the commit."""
    connection.execute(
        update(link_changes)
        .where(link_changes.c.name == COUNTER_ROW)
        .values(counter=link_changes.c.counter + 1)
    )


def read_row(connection: Connection) -> int | None:
    """The database's counter (None if its row is missing)."""
    return connection.execute(
        select(link_changes.c.counter).where(link_changes.c.name == COUNTER_ROW)
    ).scalar()


class HostCounter:
    """A 64-bit counter in a file mapped into memory, shared by every process that maps it.

    Reading it is a copy of 8 aligned bytes from the mapping. Raising it (changes of links are
    rare) opens the file, takes an exclusive ``flock`` for the read-modify-write and writes
    through the file, which every mapping of it sees at once. The file is created (zero) if
    missing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with _locked_file(path) as descriptor:
            if os.fstat(descriptor).st_size < _COUNTER.size:
                os.ftruncate(descriptor, _COUNTER.size)
            self._map = mmap.mmap(descriptor, _COUNTER.size)  # stays valid once closed

    def read(self) -> bytes:
        """The counter's 8 bytes: compared, never computed with, so no conversion."""
        return self._map[: _COUNTER.size]

    def value(self) -> int:
        return _COUNTER.unpack(self.read())[0]

    def bump(self) -> None:
        with _locked_file(self.path) as descriptor:
            (value,) = _COUNTER.unpack(os.pread(descriptor, _COUNTER.size, 0).ljust(8, b"\0"))
            os.pwrite(descriptor, _COUNTER.pack((value + 1) % 2**64), 0)


@contextmanager
def _locked_file(path: str) -> Iterator[int]:
    """The file, opened (created if missing) and held under an exclusive flock. A descriptor
    of its own each time: flock locks are shared by descriptors inherited across a fork."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield descriptor
        finally:
            # Explicitly: a duplicate of the descriptor (mmap keeps one) would hold it on.
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
