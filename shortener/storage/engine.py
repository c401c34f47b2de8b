"""Engine set-up: SQLite tuned for concurrent use, PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from .errors import DatabaseUnavailable, DuplicateKey

SQLITE_BUSY_TIMEOUT_MS = 5000


class Database:
    """One engine per process, with read and write transactions that hide the dialect."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options = {"pool_pre_ping": not self.is_sqlite}
        self.engine = create_engine(parsed, **options)
        # Single-statement reads on the hot path: no BEGIN/COMMIT round trips, no ORM or
        # Result objects, straight on the driver (see PreparedRead).
        self.autocommit_engine = create_engine(
            parsed, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **options
        )
        self._prepared: list[PreparedRead] = []
        if self.is_sqlite:
            _tune_sqlite(self.engine)
            _tune_sqlite(self.autocommit_engine)

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
        try:
            cursor = pooled.dbapi_connection.cursor()
            cursor.execute(self._sql, bound)
            row = cursor.fetchone()
            cursor.close()
            return row
        except self._driver_error as error:
            self._local.connection = None
            with self._held_lock:
                if pooled in self._held:
                    self._held.remove(pooled)
            pooled.invalidate(error)  # whatever went wrong, start afresh next time
            raise DatabaseUnavailable(str(error)) from error

    def _thread_connection(self):
        local = self._local
        pooled = getattr(local, "connection", None)
        if pooled is None or local.pid != os.getpid():
            try:
                pooled = self._engine.raw_connection()
            except OperationalError as error:
                raise DatabaseUnavailable(str(error.orig)) from error
            local.connection, local.pid = pooled, os.getpid()
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


def _tune_sqlite(engine) -> None:
    """WAL, NORMAL sync and a busy timeout; BEGIN IMMEDIATE for writes so they never deadlock."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("shortener_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
