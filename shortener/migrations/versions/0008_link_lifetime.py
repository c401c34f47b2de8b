"""Link lifetime and visit caps: validity window, visit cap, fallback target.

``valid_since``/``valid_until`` bound when a link redirects; ``max_visits`` caps how many visits
it sends to its target, counted exactly in ``cap_used`` (one atomic UPDATE per redirect of a
capped link only); ``exhausted_at`` is when the last allowed visit was counted (purging);
``expired_target`` is where a link sends visitors once it has expired or is exhausted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("links", sa.Column("valid_since", UTCDateTime, nullable=True))
    op.add_column("links", sa.Column("valid_until", UTCDateTime, nullable=True))
    op.add_column("links", sa.Column("max_visits", sa.BigInteger, nullable=True))
    op.add_column("links", sa.Column("cap_used", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("links", sa.Column("exhausted_at", UTCDateTime, nullable=True))
    op.add_column("links", sa.Column("expired_target", sa.Text, nullable=True))
    # Purging expired links finds them by date.
    op.create_index("ix_links_valid_until", "links", ["valid_until"])
    op.create_index("ix_links_exhausted_at", "links", ["exhausted_at"])


def downgrade() -> None:
    op.drop_index("ix_links_exhausted_at", table_name="links")
    op.drop_index("ix_links_valid_until", table_name="links")
    for column in (
        "expired_target",
        "exhausted_at",
        "cap_used",
        "max_visits",
        "valid_until",
        "valid_since",
    ):
        op.drop_column("links", column)
