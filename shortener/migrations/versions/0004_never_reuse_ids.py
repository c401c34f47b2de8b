"""Never reuse ids: SQLite tables with AUTOINCREMENT.

Without AUTOINCREMENT SQLite hands the id of the newest row, once deleted, to the next row,
so a retried DELETE of a token's URI could revoke another user's token. With it, SQLite keeps
the largest id ever used in ``sqlite_sequence`` and never goes below it.

PostgreSQL needs nothing: the ids are BIGSERIAL, a sequence that never hands out a value
twice (it is not CYCLE, and rolled-back or deleted values are skipped, not reused).

SQLite cannot add AUTOINCREMENT to a table, so each table is rebuilt, following SQLite's own
procedure (https://www.sqlite.org/lang_altertable.html#otheralter) but with foreign keys left
on, since the migration runs inside the caller's transaction where that PRAGMA is a no-op:

1. rename every old table to ``_old_<name>``: SQLite rewrites the REFERENCES of the other
   old tables to follow, so the old tables only point at each other;
2. drop the old indexes (index names are global) and create the new tables, constraints and
   indexes under the real names;
3. copy the rows parents first, ids included (which also sets ``sqlite_sequence``);
4. drop the old tables children first, so no cascade or foreign-key check reaches a new one.

The table shapes are written out here as they stand at this revision, not taken from
shortener.storage.tables, so that a later change there cannot change what this step does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Parents before children: the order rows are copied in (and the reverse, tables dropped in).
TABLES = ("users", "links", "visits", "visit_rollups", "api_tokens")
INDEXES = {
    "links": {"ix_links_owner_id_id": ["owner_id", "id"]},
    "visits": {
        "ix_visits_link_id_id": ["link_id", "id"],
        "ix_visits_link_id_visited_at": ["link_id", "visited_at"],
    },
    "visit_rollups": {"ix_visit_rollups_dimension_hour": ["dimension", "hour"]},
    "api_tokens": {"ix_api_tokens_user_id_id": ["user_id", "id"]},
}


def _columns_and_constraints(table: str) -> list:
    """Every column and constraint of ``table`` at revision 0003 (and this one)."""
    if table == "users":
        return [
            sa.Column("id", Identifier, primary_key=True, autoincrement=True),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("is_admin", sa.Boolean, nullable=False),
            sa.Column("created_at", UTCDateTime, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_users"),
            sa.UniqueConstraint("username", name="uq_users_username"),
        ]
    if table == "links":
        return [
            sa.Column("id", Identifier, primary_key=True, autoincrement=True),
            sa.Column("slug", sa.String(64), nullable=False),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("title", sa.String(255), nullable=True),
            sa.Column("redirect_status", sa.SmallInteger, nullable=False),
            sa.Column("visit_count", sa.BigInteger, nullable=False),
            sa.Column("owner_id", Identifier, nullable=False),
            sa.Column("created_at", UTCDateTime, nullable=False),
            sa.Column("updated_at", UTCDateTime, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_links"),
            sa.UniqueConstraint("slug", name="uq_links_slug"),
            sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_links_owner_id_users"),
        ]
    if table == "visits":
        return [
            sa.Column("id", Identifier, primary_key=True, autoincrement=True),
            sa.Column("link_id", Identifier, nullable=False),
            sa.Column("visited_at", UTCDateTime, nullable=False),
            sa.Column("referrer", sa.String(1024), nullable=True),
            sa.Column("user_agent", sa.String(512), nullable=True),
            sa.Column("browser", sa.String(64), nullable=True),
            sa.Column("os", sa.String(64), nullable=True),
            sa.Column("is_bot", sa.Boolean, nullable=False),
            sa.Column("ip", sa.String(45), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_visits"),
            sa.ForeignKeyConstraint(
                ["link_id"], ["links.id"], name="fk_visits_link_id_links", ondelete="CASCADE"
            ),
        ]
    if table == "visit_rollups":  # no id of its own; rebuilt because it references links
        return [
            sa.Column("link_id", Identifier, nullable=False),
            sa.Column("dimension", sa.String(16), nullable=False),
            sa.Column("hour", UTCDateTime, nullable=False),
            sa.Column("value", sa.String(255), nullable=False),
            sa.Column("is_bot", sa.Boolean, nullable=False),
            sa.Column("visits", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint(
                "link_id", "dimension", "hour", "value", "is_bot", name="pk_visit_rollups"
            ),
            sa.ForeignKeyConstraint(
                ["link_id"],
                ["links.id"],
                name="fk_visit_rollups_link_id_links",
                ondelete="CASCADE",
            ),
        ]
    assert table == "api_tokens"
    return [
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("user_id", Identifier, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("digest", name="uq_api_tokens_digest"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
    ]


def _rebuild_sqlite_tables(*, autoincrement: bool) -> None:
    """Rebuilds every table with or without AUTOINCREMENT, keeping rows, ids and indexes."""
    for table in TABLES:
        op.rename_table(table, f"_old_{table}")
        for index in INDEXES.get(table, {}):
            op.drop_index(index, table_name=f"_old_{table}")
    for table in TABLES:
        columns = _columns_and_constraints(table)
        has_id = table != "visit_rollups"
        kwargs = {"sqlite_autoincrement": True} if autoincrement and has_id else {}
        op.create_table(table, *columns, **kwargs)
        for index, indexed in INDEXES.get(table, {}).items():
            op.create_index(index, table, indexed)
        names = ", ".join(column.name for column in columns if isinstance(column, sa.Column))
        op.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _old_{table}")
    for table in reversed(TABLES):
        op.drop_table(f"_old_{table}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_tables(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_tables(autoincrement=False)
