"""Visits counted elsewhere and brought in by ``shortener import``.

Links gain ``imported_visits``: the part of ``visit_count`` that another shortener counted
(Bitly's clicks, YOURLS' clicks, Kutt's visit_count, Shlink's visitsCount). ``visit_count``
stays the one number a client reads (recorded here + imported) and the one column the visit
writer raises; ``imported_visits`` tells the two parts apart: statistics and visit lists only
hold visits recorded here, and an import that overwrites a link replaces only its imported
part. Existing links keep 0.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "links",
        sa.Column("imported_visits", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("links", "imported_visits")
