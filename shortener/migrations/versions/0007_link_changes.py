"""The link_changes counter: raised by every change of a link, polled by other hosts' workers
to know when their link cache is stale.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "link_changes",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("counter", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name", name="pk_link_changes"),
    )
    op.bulk_insert(table, [{"name": "links", "counter": 0}])


def downgrade() -> None:
    op.drop_table("link_changes")
