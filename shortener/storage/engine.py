"""Engine set-up: SQLite tuned for concurrent use, PostgreSQL through psycopg 3.

A write that waits longer than ``lock_timeout_ms`` for a lock another connection holds fails
(SQLite's busy_timeout, PostgreSQL's lock_timeout), and the API answers 503. A SQLite file is
opened read-write but never created by a connection (``Database`` creates it once, at
start-up), and a connection whose file was moved, deleted or replaced is dropped: the API
answers 503 rather than write to a file that is no longer the database, and recovers as soon
as the file is back. A file at the path that is not a SQLite database is never opened as one:
SQLite would pair it with the real database's write-ahead log, replay that log into it and
delete the log, losing what was committed.

SQLite's processes share the write-ahead log through POSIX locks on the database file, and
POSIX drops every lock a process holds on a file as soon as the process closes *any*
descriptor of it. The header check above therefore never closes a descriptor of a database
file while connections may be open on it (``_HeldFiles``): a close there let another process
(the visit writer, reconnecting) find no lock, take the last connection's exclusive lock,
delete the log and start a new one, while this process's connections went on committing into
the deleted log (answered as committed, seen by no one, lost). As a second line, a connection
is dropped at checkout unless the database file and the log at the path are still the ones it
opened, and once any change is seen every connection opened before it is dropped too.

PostgreSQL never hangs a request: connecting gives up after ``database_timeout_ms`` (libpq's
``connect_timeout``, whole seconds, at least 2), TCP keepalives and ``tcp_user_timeout`` find
a peer that is gone, a statement is cancelled by the server after ``statement_timeout_ms``,
and the client stops waiting for an answer that does not come (a cut network, a middlebox
that swallows packets, a server that does not answer): ``database_timeout_ms`` for the pool's
check of a connection and the redirect's read, ``statement_timeout_ms`` plus a second for
other statements. The connection is then closed and the request answers 503.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Executable, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError

from .errors import DatabaseUnavailable, DuplicateKey

DEFAULT_LOCK_TIMEOUT_MS = 5000
# How often a write polls for SQLite's write lock that another process holds (see
# _begin_writing): from 0.2 ms, doubling up to 5 ms.
_FIRST_LOCK_POLL_SECONDS = 0.0002
_LAST_LOCK_POLL_SECONDS = 0.005
DEFAULT_DATABASE_TIMEOUT_MS = 2000
DEFAULT_STATEMENT_TIMEOUT_MS = 3000
# Connections a process keeps for one-row reads (the redirect, authentication), and as many
# again at most for transactions (half kept, half opened on demand): SHORTENER_DATABASE_POOL_SIZE.
DEFAULT_POOL_SIZE = 12
# How much longer than the server's statement_timeout the client waits for its answer (the
# cancellation itself has to reach the client).
STATEMENT_ANSWER_GRACE_SECONDS = 1.0
# libpq's TCP keepalives on PostgreSQL connections: a pooled connection whose peer is gone is
# found within KEEPALIVES_IDLE + KEEPALIVES_INTERVAL * KEEPALIVES_COUNT seconds.
KEEPALIVES_IDLE = 5
KEEPALIVES_INTERVAL = 1
KEEPALIVES_COUNT = 3
# The first bytes of every SQLite database file (an empty file is a database not made yet).
SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite result codes that mean the file cannot serve (not a bug in a statement): busy,
# locked, read-only, I/O error, corrupt, full, cannot open, not a database.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 8, 10, 11, 13, 14, 26})
# PostgreSQL SQLSTATEs of a server that cannot serve now: connection exceptions (08),
# insufficient resources (53), operator intervention (57: shut down, restarting, cancelled),
# and a read-only transaction (25006: a standby after failover, or a read-only default).
_POSTGRESQL_UNAVAILABLE_CLASSES = ("08", "53", "57")
_POSTGRESQL_READ_ONLY = "25006"


class NoAnswer(Exception):
    """Marks a driver error raised because the database did not answer in time."""


_FILE_IDENTITY = "shortener_sqlite_file"
_LOG_IDENTITY = "shortener_sqlite_log"  # the -wal file the connection opened
_GENERATION = "shortener_sqlite_generation"  # _SQLiteFile.generation when it was opened
_FILE_CHECKED_AT = "shortener_file_checked_at"  # when a held connection checks its file next
_UNBOUNDED = "shortener_unbounded"  # execution option: no deadline for answers (migrations)
_DISPOSALS = "shortener_disposals"  # Database.disposals when the connection was opened
# How often a redirect's held SQLite connection checks that its file is still the database
# file (a stat costs ~2 us, a tenth of the redirect's Python); between checks it may read a
# file that was just moved, which holds the same data.
FILE_CHECK_SECONDS = 0.5


class Database:
    """One engine per process, with read and write transactions that hide the dialect."""

    def __init__(
        self,
        url: str,
        *,
        lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
        database_timeout_ms: int = DEFAULT_DATABASE_TIMEOUT_MS,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.sqlite_path: str | None = None
        # A file (not :memory:, and not a file: URI of the caller's, which is left as given).
        if self.is_sqlite and parsed.database not in (None, "", ":memory:"):
            if not parsed.query.get("uri"):
                self.sqlite_path = os.path.abspath(parsed.database)
                parsed = _open_existing_only(parsed, self.sqlite_path)
        self.is_postgresql = parsed.get_backend_name() == "postgresql"
        options: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_postgresql:
            options["connect_args"] = _postgresql_connect_args(parsed, database_timeout_ms)
        # Pools sized for a gevent worker's concurrent requests. SQLAlchemy's default (5, and
        # up to 10 more closed again on their return) made a PostgreSQL worker under load open
        # and close a connection for most redirects that missed the link cache (py-spy: 12%
        # of its time in connecting). A request past the pool waits for a connection instead.
        pooled = not self.is_sqlite or self.sqlite_path is not None  # a file or a server
        if pooled:
            options["pool_size"] = max(1, pool_size // 2)
            options["max_overflow"] = max(0, pool_size - pool_size // 2)
        self.engine = create_engine(parsed, **options)
        # Single-statement reads on the hot path: no BEGIN/COMMIT round trips, no ORM or
        # Result objects, straight on the driver (see PreparedRead). No ping at checkout
        # either: PreparedRead repeats a read that found its connection dead, and the ping
        # was a second round trip per read (PostgreSQL: 434 us against 199 us, measured).
        self.autocommit_engine = create_engine(
            parsed,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            **{
                **options,
                "pool_pre_ping": False,
                **({"pool_size": pool_size, "max_overflow": 0} if pooled else {}),
            },
        )
        self._prepared: list[PreparedRead] = []
        self.disposals = 0
        self._after_dispose: list[tuple[Any, Callable[..., None]]] = []
        sqlite_file = _SQLiteFile(self.sqlite_path) if self.sqlite_path is not None else None
        self._sqlite_file = sqlite_file
        for engine in (self.engine, self.autocommit_engine):
            self._close_after_dispose(engine)
            if self.is_sqlite:
                # PreparedRead checks the file of its autocommit connections itself, at most
                # every FILE_CHECK_SECONDS: the two stat calls a checkout were a tenth of a
                # redirect that missed the link cache, and a read is all it does.
                _tune_sqlite(
                    engine,
                    lock_timeout_ms,
                    sqlite_file,
                    check_at_checkout=engine is not self.autocommit_engine,
                )
            elif self.is_postgresql:
                _tune_postgresql(
                    engine,
                    lock_timeout_ms,
                    statement_timeout_ms,
                    check_seconds=database_timeout_ms / 1000,
                    # The redirect's read (the only user of the autocommit engine) is one
                    # indexed row that never waits for a lock: no answer soon means none.
                    statement_seconds=(
                        database_timeout_ms / 1000
                        if engine is self.autocommit_engine
                        else statement_timeout_ms / 1000 + STATEMENT_ANSWER_GRACE_SECONDS
                    ),
                )

    def _close_after_dispose(self, engine) -> None:
        """``dispose`` closes the pool's idle connections, not one a thread still uses (a
        visit write waiting for a database that does not answer, say). Given back after it,
        that one went into the disposed pool, where nothing closed it: the garbage collector
        deleted it still open (psycopg's ResourceWarning). It is closed when given back: the
        check is listened for from the first ``dispose`` on, so no checkin pays for it before.
        """

        @event.listens_for(engine, "connect")
        def _opened(dbapi_connection, connection_record) -> None:
            connection_record.info[_DISPOSALS] = self.disposals

        def _given_back(dbapi_connection, connection_record) -> None:
            if dbapi_connection is not None and (
                connection_record.info.get(_DISPOSALS) != self.disposals
            ):
                connection_record.invalidate()  # closes it

        self._after_dispose.append((engine, _given_back))

    def ping(self) -> None:
        """One trivial query; raises DatabaseUnavailable unless the database answers."""
        with self.read() as connection:
            connection.exec_driver_sql("SELECT 1")

    def is_stale(self, pooled) -> bool:
        """Whether a pooled SQLite connection's file (or log) is no longer the one at the path."""
        return self._sqlite_file is not None and _file_changed(pooled.info, self._sqlite_file)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads. Its connection comes checked from the pool (a held
        connection that died, e.g. when PostgreSQL restarted, is replaced by a new one)."""
        with translated_errors(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def maintenance(self) -> Iterator[Connection]:
        """A transaction without a statement timeout, for migrations (an index on a large
        table may take minutes)."""
        with translated_errors(), self.engine.connect() as connection:
            connection.execution_options(**{_UNBOUNDED: True})
            if self.is_postgresql:
                connection.connection.dbapi_connection.answer_seconds = None
            with connection.begin():
                if self.is_postgresql:
                    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
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
        """Closes every connection: the idle ones now, the ones in use when they are given
        back. The database can be used again (on new connections)."""
        self.disposals += 1
        for engine, given_back in self._after_dispose:
            if not event.contains(engine, "checkin", given_back):
                event.listen(engine, "checkin", given_back)
        for prepared in self._prepared:
            prepared.release()
        self.engine.dispose()
        self.autocommit_engine.dispose()
        if self._sqlite_file is not None:
            self._sqlite_file.release()


class PreparedRead:
    """A SELECT compiled once for this dialect and run straight on the driver.

    It runs on an autocommit connection from the pool, returned right after: no reset, no
    BEGIN/COMMIT. This works the same for threads and for gevent's greenlets. A connection that
    fails is dropped (invalidated), so the read recovers by itself when the database comes
    back; one that had died (a restart ended its session) is replaced and the read repeated
    once. Rows come as the driver gives them (storage/typed_reads.py converts them by type).
    """

    def __init__(self, database: Database, statement: Executable) -> None:
        engine = database.autocommit_engine
        compiled = statement.compile(dialect=engine.dialect)
        self._engine = engine
        self._sql = compiled.string
        self._positional_names = compiled.positiontup if compiled.positional else None
        self._driver_error = engine.dialect.loaded_dbapi.Error
        self._is_stale = database.is_stale if database.sqlite_path is not None else None

    def release(self) -> None:
        """Nothing is held between calls: every connection goes back to the pool."""

    def first(self, parameters: Mapping[str, Any]) -> tuple | None:
        if self._positional_names is not None:
            bound: Any = tuple(parameters[name] for name in self._positional_names)
        else:
            bound = parameters
        pooled = self._take()
        if self._is_stale is not None and time.monotonic() > pooled.info[_FILE_CHECKED_AT]:
            if self._is_stale(pooled):
                pooled.invalidate()  # its file was moved or replaced: open the path again
                pooled = self._checkout()
            pooled.info[_FILE_CHECKED_AT] = time.monotonic() + FILE_CHECK_SECONDS
        try:
            row = self._run(pooled, bound)
        except self._driver_error as error:
            died = self._died(error, pooled)
            pooled.invalidate(error)  # whatever went wrong, start afresh next time
            if not died:
                raise DatabaseUnavailable(str(error)) from error
            # The connection had died (the server restarted, or ended the session): a read is
            # safe to repeat, once, on a new connection, which the pool checks first.
            pooled = self._checkout()
            try:
                row = self._run(pooled, bound)
            except self._driver_error as error:
                pooled.invalidate(error)
                raise DatabaseUnavailable(str(error)) from error
        self._put_back(pooled)
        return row

    def _run(self, pooled, bound: Any) -> tuple | None:
        cursor = pooled.dbapi_connection.cursor()
        cursor.execute(self._sql, bound)
        row = cursor.fetchone()
        cursor.close()
        return row

    def _died(self, error: Exception, pooled) -> bool:
        """Whether the connection was found dead (not: the database did not answer in time,
        where a second try would only wait as long again)."""
        if isinstance(error, NoAnswer):
            return False
        return self._engine.dialect.is_disconnect(error, pooled.dbapi_connection, None)

    def _take(self):
        return self._checkout()

    def _put_back(self, pooled) -> None:
        """Straight back to the pool. Connections kept aside here (as before) starved the
        pool under gevent: a request waiting in the pool never saw the ones set aside, and
        redirects hung for the pool's 30 s timeout."""
        pooled.close()

    def _checkout(self):
        try:
            pooled = self._engine.raw_connection()
        except OperationalError as error:
            raise DatabaseUnavailable(str(error.orig)) from error
        except self._driver_error as error:  # the pool raises the driver's own errors
            raise DatabaseUnavailable(str(error)) from error
        # A connection opened now was checked as it opened; one from the pool keeps its time.
        pooled.info.setdefault(_FILE_CHECKED_AT, time.monotonic() + FILE_CHECK_SECONDS)
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
        if error.connection_invalidated or cannot_serve(error.orig):
            raise DatabaseUnavailable(str(error.orig)) from error
        raise


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """A part of a write transaction that fails alone (SAVEPOINT): its writes are undone on
    any exception and the transaction goes on; a unique key's refusal is ``DuplicateKey``."""
    try:
        with connection.begin_nested():
            yield
    except IntegrityError as error:
        raise DuplicateKey(str(error.orig)) from error


def cannot_serve(error: BaseException | None) -> bool:
    """Whether a driver error says the database cannot serve now (503), not that a statement
    is wrong (a bug, 500): a file that is not a database, a read-only database (a standby
    after failover), a server shutting down."""
    sqlite_code = getattr(error, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _SQLITE_UNAVAILABLE
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate == _POSTGRESQL_READ_ONLY or sqlstate[:2] in _POSTGRESQL_UNAVAILABLE_CLASSES
    return False


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


class _HeldFiles:
    """One descriptor per database file (device, inode) this process has checked, kept open
    while a ``Database`` of the process may have connections on it, and read with ``pread``.

    Opening and closing the file for each check would drop every POSIX lock this process
    holds on it, the SQLite connections' locks included (SQLite itself keeps its descriptors
    open while a lock is held for that reason): other processes would then take it for unused,
    and the last one to close a connection would delete the write-ahead log our connections
    still write into. Shared by every ``Database`` of the process (tests run several on one
    file), counted per user, and closed only when no user is left."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._descriptors: dict[tuple[int, int], list[int]] = {}
        self._users: dict[tuple[int, int], int] = {}

    def header(self, path: str, user: set) -> tuple[tuple[int, int], bytes] | None:
        """(identity, first bytes) of the file at ``path``, or None if there is none; the
        identity is added to ``user`` (a ``_SQLiteFile``'s set), to give back on release."""
        try:
            identity = _identity_of(os.stat(path))
        except OSError:
            return None
        with self._lock:
            if identity not in self._descriptors:
                try:
                    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None
                opened = _identity_of(os.fstat(descriptor))
                # Replaced between the stat and the open: keep what was opened, and never
                # close a second descriptor of a file already held.
                self._descriptors.setdefault(opened, []).append(descriptor)
                identity = opened
            if identity not in user:
                user.add(identity)
                self._users[identity] = self._users.get(identity, 0) + 1
            descriptor = self._descriptors[identity][0]
            try:
                return identity, os.pread(descriptor, len(SQLITE_MAGIC), 0)
            except OSError:
                return None

    def release(self, user: set) -> None:
        with self._lock:
            for identity in user:
                self._users[identity] -= 1
                if self._users[identity] == 0:
                    del self._users[identity]
                    for descriptor in self._descriptors.pop(identity, ()):
                        os.close(descriptor)
            user.clear()


_HELD_FILES = _HeldFiles()


class _SQLiteFile:
    """The database file at a path, checked before SQLite opens it (SQLite opens lazily, so
    the check runs before it reads or writes anything). A file that is not a database would
    otherwise be paired with the write-ahead log next to it (the real database's), which
    SQLite replays into it and then deletes, losing what was committed. An empty file is a
    database not made yet only until this process has seen the real one (SQLite would turn it
    into a database and delete the log beside it too).

    ``generation`` counts the changes seen at the path (the file or its log moved, deleted or
    replaced): a connection opened in an earlier generation is dropped at its next checkout,
    so no connection that lived through a change is used again."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.log_path = path + "-wal"
        self.seen_database = False
        self.generation = 0
        self._held: set[tuple[int, int]] = set()

    def checked_identity(self) -> tuple[int, int] | None:
        """Its (device, inode); raises a driver error (503) if it is not a database."""
        read = _HELD_FILES.header(self.path, self._held)
        if read is None:
            return None  # SQLite's own open then fails ("unable to open database file")
        identity, header = read
        if header == SQLITE_MAGIC:
            self.seen_database = True
            return identity
        if not header and not self.seen_database and _empty_or_missing(self.log_path):
            return identity
        error = sqlite3.DatabaseError(f"{self.path} is not a SQLite database")
        error.sqlite_errorcode = sqlite3.SQLITE_NOTADB
        raise error

    def changed(self) -> None:
        """A change was seen: every connection opened until now is to be dropped."""
        self.generation += 1

    def release(self) -> None:
        _HELD_FILES.release(self._held)


def _empty_or_missing(path: str) -> bool:
    try:
        return os.stat(path).st_size == 0
    except FileNotFoundError:
        return True


def _identity_of(stat: os.stat_result) -> tuple[int, int]:
    return (stat.st_dev, stat.st_ino)


def _file_changed(connection_info: dict, file: _SQLiteFile) -> bool:
    """Whether a connection must not be used: the database file or the write-ahead log at the
    path is not the one it opened (moved, deleted, replaced; a log that is not the one the
    connection writes into holds no commit of it), or a change was seen since it opened."""
    if connection_info.get(_GENERATION) != file.generation:
        return True
    if connection_info.get(_FILE_IDENTITY) != _file_identity(file.path) or connection_info.get(
        _LOG_IDENTITY
    ) != _file_identity(file.log_path):
        file.changed()
        return True
    return False


def _tune_sqlite(
    engine, lock_timeout_ms: int, file: _SQLiteFile | None, *, check_at_checkout: bool = True
) -> None:
    """WAL, NORMAL sync and a busy timeout; BEGIN IMMEDIATE for writes so they never deadlock."""
    path = file.path if file is not None else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:
        if file is not None:  # which file this connection opened, before SQLite reads it
            connection_record.info[_GENERATION] = file.generation
            connection_record.info[_FILE_IDENTITY] = file.checked_identity()
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if file is not None:
            # The log it opened: the connection now holds its lock on the database file, so
            # no other connection can delete this log while it stays open.
            connection_record.info[_LOG_IDENTITY] = _file_identity(file.log_path)

    if path is not None and check_at_checkout:

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_connection, connection_record, connection_proxy) -> None:
            if _file_changed(connection_record.info, file):
                # The pool drops this connection and opens the path again, which fails with
                # "unable to open database file" while the file is missing.
                raise DisconnectionError("the SQLite file was moved, deleted or replaced")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("shortener_write"):
            _begin_writing(connection, lock_timeout_ms)
        else:
            connection.exec_driver_sql("BEGIN")


def _begin_writing(connection: Connection, lock_timeout_ms: int) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock in short sleeps of our
    own instead of in SQLite's busy handler. That handler sleeps inside the C library (1 ms,
    then 2, 5, 10 ...) and blocks every greenlet of a gevent worker, redirects included, for
    the whole wait (tests/test_sqlite_write_lock.py). ``time.sleep`` yields to them."""
    raw = connection.connection.dbapi_connection
    deadline = time.monotonic() + lock_timeout_ms / 1000
    delay = _FIRST_LOCK_POLL_SECONDS
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() + delay >= deadline:
                    break
            time.sleep(delay)
            delay = min(delay * 2, _LAST_LOCK_POLL_SECONDS)
        # The last try, through SQLAlchemy: it takes the lock, or raises its wrapped error
        # (503 for a lock held too long, or for a file that is not a database).
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        with suppress(sqlite3.Error):
            raw.execute(f"PRAGMA busy_timeout={int(lock_timeout_ms)}")


def _postgresql_connect_args(url: URL, database_timeout_ms: int) -> dict[str, Any]:
    """libpq's timeouts and keepalives; any of them given in the URL wins."""
    arguments = {
        "connect_timeout": max(2, math.ceil(database_timeout_ms / 1000)),  # libpq's minimum: 2
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE,
        "keepalives_interval": KEEPALIVES_INTERVAL,
        "keepalives_count": KEEPALIVES_COUNT,
        # Data sent and not acknowledged for this long: the peer is gone.
        "tcp_user_timeout": int(database_timeout_ms),
    }
    return {name: value for name, value in arguments.items() if name not in url.query}


def _tune_postgresql(
    engine,
    lock_timeout_ms: int,
    statement_timeout_ms: int,
    *,
    check_seconds: float,
    statement_seconds: float,
) -> None:
    """lock_timeout: a statement waiting for another transaction's lock gives up (then 503);
    statement_timeout: so does one that runs too long. On the client, how long a connection
    waits for an answer: ``check_seconds`` for the pool's check, ``statement_seconds`` for
    statements and their commit."""
    connection_class = _answering_connection_class()

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, connection_record, cargs, cparams):
        connection = connection_class.connect(*cargs, **cparams)
        connection.answer_seconds = check_seconds
        return connection

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(
            f"SET lock_timeout = {int(lock_timeout_ms)}; "
            f"SET statement_timeout = {int(statement_timeout_ms)}"
        )
        cursor.close()
        dbapi_connection.commit()

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(connection, cursor, statement, parameters, context, executemany) -> None:
        if not connection.get_execution_options().get(_UNBOUNDED):
            cursor.connection.answer_seconds = statement_seconds

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, connection_record) -> None:
        if dbapi_connection is not None:  # the next use starts with the pool's check
            dbapi_connection.answer_seconds = check_seconds


def _answering_connection_class():
    """psycopg's Connection, but a wait for the server's answer has a deadline
    (``answer_seconds``): past it the connection is closed and the call fails. TCP cannot
    tell a peer that accepts bytes and never answers from a slow one; this can."""
    import psycopg
    from psycopg import errors
    from psycopg.connection import _WAIT_INTERVAL

    class AnsweringConnection(psycopg.Connection):
        answer_seconds: float | None = None

        def wait(self, gen, interval=_WAIT_INTERVAL, timeout=None):
            if timeout is None:
                timeout = self.answer_seconds
            try:
                return super().wait(gen, interval, timeout)
            except errors._WaitTimeout:  # psycopg's own, internal: converted as it asks
                self.pgconn.finish()  # mid-protocol: the connection cannot be used again
                raise _NoAnswerError(f"the database did not answer within {timeout:g} s") from None

    class _NoAnswerError(psycopg.OperationalError, NoAnswer):
        pass

    return AnsweringConnection
