"""Migrated PostgreSQL schemas, recycled: the PostgreSQL counterpart of the migrated SQLite
file that a test's new database is copied from (tests/conftest.py).

Migrating a schema costs a few hundred DDL statements' worth of catalog work (a quarter of a
second and more on a loaded 2-core machine), and dropping it as much again: ~1,500 tests of the
PostgreSQL half paid both. Instead, ``adopt`` gives an *empty* schema (as ``fresh_database``
makes) the tables of one migrated by the real migrations: the empty schema is dropped and a
migrated one from the pool is renamed to its name (a catalog update). When a test is done,
``release`` empties its schema back to the state the migrations left (rows deleted, the rows
the migrations inserted put back, every sequence where it was) and returns it to the pool, but
only when its structure is still exactly the migrated one: a test that altered, added or
dropped anything gets its schema dropped as before. Connections a test left open keep the old
name in their search_path, which no longer exists once the schema is renamed: they fail rather
than reach the next test's data.
"""

from __future__ import annotations

import atexit
import re
import threading
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from shortener.storage import Database, migrations

_SEARCH_PATH = re.compile(r"-csearch_path=(\S+)")

# The schema's structure, with its own name taken out: relations and their kinds, columns
# (type, nullability, default, identity), constraints, indexes, sequences' parameters,
# triggers (not the foreign keys' own), rules, policies, functions and types. Equal to the
# template's, or not reused.
_STRUCTURE = """
SELECT 'rel', c.relname, c.relkind::text || c.relpersistence::text
       || coalesce(array_to_string(c.reloptions, ','), '') || c.relrowsecurity::text
FROM pg_class c WHERE c.relnamespace = :oid
UNION ALL
SELECT 'col', c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod) || a.attnotnull::text || a.attidentity::text
       || a.attgenerated::text || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = :oid AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'con', c.relname || '.' || k.conname,
       pg_get_constraintdef(k.oid) || k.convalidated::text || k.condeferrable::text
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = :oid
UNION ALL
SELECT 'idx', x.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid
WHERE c.relnamespace = :oid
UNION ALL
SELECT 'seq', c.relname, concat_ws(',', s.seqtypid, s.seqstart, s.seqincrement, s.seqmax,
       s.seqmin, s.seqcache, s.seqcycle)
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = :oid
UNION ALL
SELECT 'trg', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = :oid AND NOT t.tgisinternal
UNION ALL
SELECT 'rule', c.relname || '.' || r.rulename, pg_get_ruledef(r.oid)
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = :oid
UNION ALL
SELECT 'pol', c.relname || '.' || p.polname, p.polcmd::text
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = :oid
UNION ALL
SELECT 'fn', p.proname, pg_get_function_identity_arguments(p.oid)
FROM pg_proc p WHERE p.pronamespace = :oid
UNION ALL
SELECT 'type', t.typname, t.typtype::text
FROM pg_type t WHERE t.typnamespace = :oid AND t.typrelid = 0 AND t.typelem = 0
"""


# (referencing table, referenced table) of every foreign key between the schema's tables.
_FOREIGN_KEYS = """
SELECT c.relname, r.relname FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
WHERE k.contype = 'f' AND c.relnamespace = :oid AND r.relnamespace = :oid
"""


def _referencing_first(tables, references) -> tuple[str, ...]:
    """The tables in an order that deletes every referencing row before what it references."""
    remaining = set(tables)
    edges = {(child, parent) for child, parent in references if child != parent}
    ordered = []
    while remaining:
        free = sorted(
            table for table in remaining if not any(p == table for c, p in edges if c in remaining)
        )
        if not free:
            raise RuntimeError(f"foreign keys in a cycle: {sorted(remaining)}")
        ordered += free
        remaining -= set(free)
    return tuple(ordered)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_of(url: str) -> str | None:
    """The schema a URL of ``postgres_schema_url`` names in its search_path."""
    options = make_url(url).query.get("options") or ""
    if isinstance(options, tuple):
        options = " ".join(options)
    match = _SEARCH_PATH.search(options)
    return match.group(1) if match else None


@dataclass(frozen=True)
class _Template:
    structure: frozenset[tuple[str, str, str]]
    tables: tuple[str, ...]
    rows: dict[str, tuple[tuple[str, ...], list[tuple]]]
    sequences: dict[str, tuple[int, bool]]


class MigratedSchemas:
    """The pool of one session's migrated schemas on the database of ``admin_url``."""

    def __init__(self, admin_url: str, schema_url) -> None:
        self._admin_url = admin_url
        self._schema_url = schema_url  # schema name -> URL whose search_path is that schema
        self._engine: Engine | None = None
        self._template: _Template | None = None
        self._pool: list[str] = []
        self._lock = threading.Lock()
        atexit.register(self.close)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self._admin_url, pool_size=2)
        return self._engine

    # -- the pool ---------------------------------------------------------------------------
    def adopt(self, url: str) -> bool:
        """When ``url``'s schema is empty, makes it a migrated one; False when it is not empty
        (or not a schema of ours): the caller migrates it."""
        schema = schema_of(url)
        if schema is None:
            return False
        with self.engine.begin() as connection:
            oid = _namespace(connection, schema)
            if oid is None or _has_relations(connection, oid):
                return False
        migrated = self._take()
        try:
            with self.engine.begin() as connection:
                connection.execute(text("SET LOCAL synchronous_commit = off"))  # scaffolding
                connection.execute(text(f"DROP SCHEMA {_quoted(schema)}"))
                connection.execute(
                    text(f"ALTER SCHEMA {_quoted(migrated)} RENAME TO {_quoted(schema)}")
                )
        except BaseException:
            self._drop(migrated)
            raise
        return True

    def release(self, schema: str) -> None:
        """Back to the pool as the migrations left it when its structure is unchanged (an
        empty schema that was never migrated is dropped); dropped otherwise."""
        pooled = f"pool_{uuid.uuid4().hex[:16]}"
        try:
            reset = self._template is not None and self._reset(schema, pooled)
        except DBAPIError:
            reset = False
        if reset:
            with self._lock:
                self._pool.append(pooled)
            return
        self._drop(schema)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, []
        for schema in pool:
            try:
                self._drop(schema)
            except Exception:  # the server may be gone at exit; nothing to report then
                pass
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- internals --------------------------------------------------------------------------
    def _take(self) -> str:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        schema = f"pool_{uuid.uuid4().hex[:16]}"
        with self.engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            database = Database(self._schema_url(schema))
            try:
                migrations.upgrade(database)  # the real migrations
            finally:
                database.dispose()
            if self._template is None:
                with self.engine.begin() as connection:
                    self._template = _read_template(connection, schema)
        except BaseException:
            self._drop(schema)
            raise
        return schema

    def _reset(self, schema: str, pooled: str) -> bool:
        template = self._template
        with self.engine.begin() as connection:
            oid = _namespace(connection, schema)
            if oid is None or _structure(connection, oid, schema) != template.structure:
                return False
            # A lock some leftover connection holds: dropped instead (which waits, as before).
            connection.execute(text("SET LOCAL lock_timeout = '5s'"))
            connection.execute(text("SET LOCAL synchronous_commit = off"))  # scaffolding only
            # DELETE, referencing tables first: cheaper than TRUNCATE's new files on small tables.
            for table in template.tables:
                connection.execute(text(f"DELETE FROM {_quoted(schema)}.{_quoted(table)}"))
            for table, (columns, rows) in template.rows.items():
                if not rows:
                    continue
                column_list = ", ".join(_quoted(column) for column in columns)
                values = ", ".join(f":{index}" for index in range(len(columns)))
                connection.execute(
                    text(
                        f"INSERT INTO {_quoted(schema)}.{_quoted(table)} ({column_list}) "
                        f"VALUES ({values})"
                    ),
                    [{str(index): value for index, value in enumerate(row)} for row in rows],
                )
            for sequence, (last_value, is_called) in template.sequences.items():
                connection.execute(
                    text("SELECT setval(CAST(:name AS regclass), :value, :called)"),
                    {
                        "name": f"{_quoted(schema)}.{_quoted(sequence)}",
                        "value": last_value,
                        "called": is_called,
                    },
                )
            connection.execute(text(f"ALTER SCHEMA {_quoted(schema)} RENAME TO {pooled}"))
        return True

    def _drop(self, schema: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE"))


def _namespace(connection: Connection, schema: str) -> int | None:
    return connection.execute(
        text("SELECT oid FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).scalar()


def _has_relations(connection: Connection, oid: int) -> bool:
    query = "SELECT EXISTS (SELECT FROM pg_class WHERE relnamespace = :oid)"
    return connection.execute(text(query), {"oid": oid}).scalar_one()


def _structure(connection: Connection, oid: int, schema: str) -> frozenset[tuple[str, str, str]]:
    rows = connection.execute(text(_STRUCTURE), {"oid": oid}).all()

    # Definitions name the schema (indexes, foreign keys, defaults' sequences): taken out, the
    # schemas compare. The names are unique hex (test_..., pool_...): nothing else matches.
    def unqualified(detail: str | None) -> str:
        return (detail or "").replace(f"{_quoted(schema)}.", "").replace(f"{schema}.", "")

    return frozenset((kind, name, unqualified(detail)) for kind, name, detail in rows)


def _read_template(connection: Connection, schema: str) -> _Template:
    oid = _namespace(connection, schema)
    tables = _referencing_first(
        connection.execute(
            text("SELECT relname FROM pg_class WHERE relnamespace = :oid AND relkind = 'r'"),
            {"oid": oid},
        ).scalars(),
        connection.execute(text(_FOREIGN_KEYS), {"oid": oid}).all(),
    )
    rows = {}
    for table in tables:
        result = connection.execute(text(f"SELECT * FROM {_quoted(schema)}.{_quoted(table)}"))
        rows[table] = (tuple(result.keys()), [tuple(row) for row in result])
    sequences = {}
    for name in connection.execute(
        text("SELECT relname FROM pg_class WHERE relnamespace = :oid AND relkind = 'S'"),
        {"oid": oid},
    ).scalars():
        last_value, is_called = connection.execute(
            text(f"SELECT last_value, is_called FROM {_quoted(schema)}.{_quoted(name)}")
        ).one()
        sequences[name] = (last_value, is_called)
    return _Template(_structure(connection, oid, schema), tables, rows, sequences)
