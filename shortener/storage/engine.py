"""Engine set-up: SQLite tuned for concurrent use, PostgreSQL through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine, event
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
        if self.is_sqlite:
            _tune_sqlite(self.engine)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads."""
        with _translated_errors(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes: on SQLite it takes the write lock up front."""
        with _translated_errors(), self.engine.connect() as connection:
            connection.execution_options(shortener_write=True)
            with connection.begin():
                yield connection

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated_errors() -> Iterator[None]:
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
