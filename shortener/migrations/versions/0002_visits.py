"""Visits and their hourly rollups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visits",
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
    )
    op.create_index("ix_visits_link_id_id", "visits", ["link_id", "id"])
    op.create_index("ix_visits_link_id_visited_at", "visits", ["link_id", "visited_at"])
    op.create_table(
        "visit_rollups",
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
            ["link_id"], ["links.id"], name="fk_visit_rollups_link_id_links", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_visit_rollups_dimension_hour", "visit_rollups", ["dimension", "hour"])


def downgrade() -> None:
    op.drop_index("ix_visit_rollups_dimension_hour", table_name="visit_rollups")
    op.drop_table("visit_rollups")
    op.drop_index("ix_visits_link_id_visited_at", table_name="visits")
    op.drop_index("ix_visits_link_id_id", table_name="visits")
    op.drop_table("visits")
