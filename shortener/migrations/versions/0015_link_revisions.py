"""Link history: one revision per change of a link (created, each PUT/PATCH, deleted).

``link_revisions`` is written in the same transaction as the change (services/history.py,
a link-events subscriber): one INSERT per change. It has no foreign keys: a link's revisions
outlive the link (administrators read them by slug) and its owner. ``by_username`` is kept as
it was (user names never change); ``by_id`` NULL: the command line's operator. ``changes`` is
JSON text, ``{field: [old, new]}``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_revisions",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("link_id", Identifier, nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("owner_id", Identifier, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("by_id", Identifier, nullable=True),
        sa.Column("by_username", sa.String(64), nullable=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("token_id", Identifier, nullable=True),
        sa.Column("changes", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_link_revisions"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_link_revisions_link_id_id", "link_revisions", ["link_id", "id"])
    op.create_index("ix_link_revisions_slug_id", "link_revisions", ["slug", "id"])


def downgrade() -> None:
    op.drop_table("link_revisions")
