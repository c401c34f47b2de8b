"""Versions of links and users (for ETags and If-Match), and Idempotency-Key claims.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Every existing row starts at version 1, like a new one.
VERSIONED = ("users", "links")


def upgrade() -> None:
    for table in VERSIONED:
        op.add_column(table, sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "idempotency_keys",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("user_id", Identifier, nullable=False),
        sa.Column("token_id", Identifier, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.String(32), nullable=False),
        sa.Column("response_status", sa.SmallInteger, nullable=True),
        sa.Column("response_location", sa.Text, nullable=True),
        sa.Column("response_etag", sa.String(255), nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("user_id", "token_id", "key", name="uq_idempotency_keys_user_id"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_idempotency_keys_user_id_users", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    for table in reversed(VERSIONED):
        op.drop_column(table, "version")
