"""Search of links (GET /links?q=): trigram indexes of slug, title and target.

``q`` matches a substring of the slug, title or target, case-insensitively. On PostgreSQL a
GIN index with pg_trgm's operator class over ``lower(slug || chr(1) || coalesce(title, '') ||
chr(1) || target)`` (storage/link_filters.SEARCH_TEXT, the same expression) answers such a
LIKE without reading every link. pg_trgm ships with PostgreSQL and is a trusted extension; it
is created in the public schema when it can be (in a savepoint). Where it cannot (no right to
create it), nothing fails: searches read every link of the owner instead, and the log says
so. On SQLite an FTS5 table with the trigram tokenizer, ``links_search`` (rowid: the link's
id; contentless: it keeps the index only), kept by triggers on links (insert, delete, and an
update of slug, title or target: visits never touch it), answers a search of three characters
or more (storage/link_filters.py).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

logger = logging.getLogger(__name__)

INDEX = "ix_links_search"


# What a link's row in links_search holds: its slug, title and target, apart.
_BODY = "{0}.slug || char(1) || coalesce({0}.title, '') || char(1) || {0}.target"
SQLITE = [
    "CREATE VIRTUAL TABLE links_search USING fts5(body, content='', tokenize='trigram')",
    "INSERT INTO links_search (rowid, body) SELECT id, " + _BODY.format("links") + " FROM links",
    "CREATE TRIGGER links_search_insert AFTER INSERT ON links BEGIN "
    "INSERT INTO links_search (rowid, body) VALUES (new.id, " + _BODY.format("new") + "); END",
    "CREATE TRIGGER links_search_delete AFTER DELETE ON links BEGIN "
    "INSERT INTO links_search (links_search, rowid, body) VALUES ('delete', old.id, "
    + _BODY.format("old")
    + "); END",
    "CREATE TRIGGER links_search_update AFTER UPDATE OF slug, title, target ON links BEGIN "
    "INSERT INTO links_search (links_search, rowid, body) VALUES ('delete', old.id, "
    + _BODY.format("old")
    + "); "
    "INSERT INTO links_search (rowid, body) VALUES (new.id, " + _BODY.format("new") + "); END",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
        return
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
            schema = bind.exec_driver_sql(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            ).scalar_one()
    except DBAPIError as error:
        logger.warning("pg_trgm is not available (%s): searches of links read every link", error)
        return
    bind.exec_driver_sql(
        f"CREATE INDEX {INDEX} ON links USING gin "
        "(lower(slug || chr(1) || coalesce(title, '') || chr(1) || target) "
        f'"{schema}".gin_trgm_ops)'
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER links_search_{trigger}")
        op.execute("DROP TABLE links_search")
    elif dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
