"""A unique id on every visit, so writing one twice (a redelivered visit) stores it once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Visits written before this revision keep NULL: a unique index allows any number of them.
    op.add_column("visits", sa.Column("uid", sa.String(40), nullable=True))
    op.create_index("ix_visits_uid", "visits", ["uid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_visits_uid", table_name="visits")
    op.drop_column("visits", "uid")
