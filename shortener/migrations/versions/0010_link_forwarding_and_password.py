"""Query forwarding, UTM fields and password-protected links.

``forward_query`` (false for every existing link) merges the visitor's query string into the
target's; ``utm_source`` .. ``utm_content`` are appended to the target when set;
``password_hash`` holds the hash of a link's password (same algorithm as user passwords),
null for a link anyone may follow.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def upgrade() -> None:
    op.add_column(
        "links",
        sa.Column("forward_query", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    for column in UTM_COLUMNS:
        op.add_column("links", sa.Column(column, sa.String(255), nullable=True))
    op.add_column("links", sa.Column("password_hash", sa.String(255), nullable=True))


def downgrade() -> None:
    op.drop_column("links", "password_hash")
    for column in reversed(UTM_COLUMNS):
        op.drop_column("links", column)
    op.drop_column("links", "forward_query")
