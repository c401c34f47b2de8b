"""Crawlable links: ``crawlable`` (false for every existing link), and a partial index of the
crawlable slugs, so GET /robots.txt reads only those however many links there are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "links",
        sa.Column("crawlable", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # As the table definition and the queries write it, or SQLite would not use the index.
    crawlable = sa.column("crawlable", sa.Boolean) == sa.true()
    op.create_index(
        "ix_links_crawlable_slug",
        "links",
        ["slug"],
        sqlite_where=crawlable,
        postgresql_where=crawlable,
    )


def downgrade() -> None:
    op.drop_index("ix_links_crawlable_slug", table_name="links")
    op.drop_column("links", "crawlable")
