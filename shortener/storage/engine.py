"""Engine set-up: SQLite tuned for concurrent use, PostgreSQL through psycopg 3.

A write that waits longer than ``lock_timeout_ms`` for a lock another connection holds fails
(SQLite's busy_timeout, PostgreSQL's lock_timeout), and the API answers 503. A SQLite file is
opened read-write but never created by a connection (``Database`` creates it once, at
start-up), and a connection whose file was moved, deleted or replaced is dropped: the API
answers 503 rather than write to a file that is no longer the database, and recovers as soon
as the file is back.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Executable, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError

from .errors import DatabaseUnavailable, DuplicateKey

DEFAULT_LOCK_TIMEOUT_MS = 5000
_FILE_IDENTITY = "shortener_sqlite_file"
# How often a redirect's held SQLite connection checks that its file is still the database
# file (a stat costs ~2 us, a tenth of the redirect's Python); between checks it may read a
# file that was just moved, which holds the same data.
FILE_CHECK_SECONDS = 0.5


class Database:
    """One engine per process, with read and write transactions that hide the dialect."""

    def __init__(self, url: str, *, lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.sqlite_path: str | None = None
        # A file (not :memory:, and not a file: URI of the caller's, which is left as given).
        if self.is_sqlite and parsed.database not in (None, "", ":memory:"):
            if not parsed.query.get("uri"):
                self.sqlite_path = os.path.abspath(parsed.database)
                parsed = _open_existing_only(parsed, self.sqlite_path)
        options = {"pool_pre_ping": not self.is_sqlite}
        self.engine = create_engine(parsed, **options)
        # Single-statement reads on the hot path: no BEGIN/COMMIT round trips, no ORM or
        # Result objects, straight on the driver (see PreparedRead).
        self.autocommit_engine = create_engine(
            parsed, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **options
        )
        self._prepared: list[PreparedRead] = []
        for engine in (self.engine, self.autocommit_engine):
            if self.is_sqlite:
                _tune_sqlite(engine, lock_timeout_ms, self.sqlite_path)
            elif parsed.get_backend_name() == "postgresql":
                _tune_postgresql(engine, lock_timeout_ms)

    def ping(self) -> None:
        """One trivial query; raises DatabaseUnavailable unless the database answers."""
        with self.read() as connection:
            connection.exec_driver_sql("SELECT 1")

    def is_stale(self, pooled) -> bool:
        """Whether a pooled SQLite connection's file is no longer the file at the path."""
        return self.sqlite_path is not None and _file_changed(pooled.info, self.sqlite_path)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads."""
        with translated_errors(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes: on SQLite it takes the write lock up front."""
        with translated_errors(), self.engine.connect() as connection:
            connection.execution_options(shortener_write=True)
            with connection.begin():
                yield connection

    def prepare(self, statement: Executable) -> PreparedRead:
        prepared = PreparedRead(self, statement)
        self._prepared.append(prepared)
        return prepared

    def dispose(self) -> None:
        for prepared in self._prepared:
            prepared.release()
        self.engine.dispose()
        self.autocommit_engine.dispose()


class PreparedRead:
    """A SELECT compiled once for this dialect and run straight on the driver.

    Each request thread keeps one autocommit connection for it: no pool checkout, no reset,
    no BEGIN/COMMIT. A connection that fails is dropped (invalidated) and the next call opens
    a new one, so the read recovers by itself when the database comes back.
    Only for statements whose columns need no type processing (ints and strings).
    """

    def __init__(self, database: Database, statement: Executable) -> None:
        engine = database.autocommit_engine
        compiled = statement.compile(dialect=engine.dialect)
        self._engine = engine
        self._sql = compiled.string
        self._positional_names = compiled.positiontup if compiled.positional else None
        self._driver_error = engine.dialect.loaded_dbapi.Error
        self._is_stale = database.is_stale if database.sqlite_path is not None else None
        self._local = threading.local()
        self._held: list = []  # every thread's connection, so release() can return them
        self._held_lock = threading.Lock()

    def release(self) -> None:
        """Returns every thread's connection to the pool (at shutdown)."""
        with self._held_lock:
            held, self._held = self._held, []
        for pooled in held:
            pooled.close()
        self._local = threading.local()

    def first(self, parameters: Mapping[str, Any]) -> tuple | None:
        if self._positional_names is not None:
            bound: Any = tuple(parameters[name] for name in self._positional_names)
        else:
            bound = parameters
        pooled = self._thread_connection()
        if self._is_stale is not None and time.monotonic() > self._local.file_checked_at:
            if self._is_stale(pooled):
                self._drop(pooled, None)  # its file was moved or replaced: open the path again
                pooled = self._thread_connection()
            self._local.file_checked_at = time.monotonic() + FILE_CHECK_SECONDS
        try:
            cursor = pooled.dbapi_connection.cursor()
            cursor.execute(self._sql, bound)
            row = cursor.fetchone()
            cursor.close()
            return row
        except self._driver_error as error:
            self._drop(pooled, error)  # whatever went wrong, start afresh next time
            raise DatabaseUnavailable(str(error)) from error

    def _drop(self, pooled, error: Exception | None) -> None:
        self._local.connection = None
        with self._held_lock:
            if pooled in self._held:
                self._held.remove(pooled)
        pooled.invalidate(error)

    def _thread_connection(self):
        local = self._local
        pooled = getattr(local, "connection", None)
        if pooled is None or local.pid != os.getpid():
            try:
                pooled = self._engine.raw_connection()
            except OperationalError as error:
                raise DatabaseUnavailable(str(error.orig)) from error
            except self._driver_error as error:  # the pool raises the driver's own errors
                raise DatabaseUnavailable(str(error)) from error
            local.connection, local.pid = pooled, os.getpid()
            local.file_checked_at = time.monotonic() + FILE_CHECK_SECONDS  # checked at checkout
            with self._held_lock:
                self._held.append(pooled)
        return pooled


@contextmanager
def translated_errors() -> Iterator[None]:
    try:
        yield
    except IntegrityError as error:
        raise DuplicateKey(str(error.orig)) from error
    except OperationalError as error:
        raise DatabaseUnavailable(str(error.orig)) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise DatabaseUnavailable(str(error.orig)) from error
        raise


def _open_existing_only(url: URL, path: str) -> URL:
    """Creates the file once, now; connections then open it read-write (``mode=rw``) and fail
    while it is missing, instead of creating an empty database in its place."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not os.path.exists(path):
        try:
            sqlite3.connect(path).close()
        except sqlite3.Error:
            pass  # every connection then fails, and the API answers 503, until it exists
    return url.set(database="file:" + quote(path), query={**url.query, "mode": "rw", "uri": "true"})


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _file_changed(connection_info: dict, path: str) -> bool:
    """Whether the file a connection opened is no longer the file at ``path``."""
    return connection_info.get(_FILE_IDENTITY) != _file_identity(path)


def _tune_sqlite(engine, lock_timeout_ms: int, path: str | None) -> None:
    """WAL, NORMAL sync and a busy timeout; BEGIN IMMEDIATE for writes so they never deadlock."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:
        if path is not None:  # which file this connection opened
            connection_record.info[_FILE_IDENTITY] = _file_identity(path)
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if path is not None:

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_connection, connection_record, connection_proxy) -> None:
            if _file_changed(connection_record.info, path):
                # The pool drops this connection and opens the path again, which fails with
                # "unable to open database file" while the file is missing.
                raise DisconnectionError("the SQLite file was moved, deleted or replaced")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("shortener_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _tune_postgresql(engine, lock_timeout_ms: int) -> None:
    """lock_timeout: a statement waiting for another transaction's lock gives up (then 503)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        cursor.close()
        dbapi_connection.commit()
