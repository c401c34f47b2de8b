"""Users and links.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "links",
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
    )
    op.create_index("ix_links_owner_id_id", "links", ["owner_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_links_owner_id_id", table_name="links")
    op.drop_table("links")
    op.drop_table("users")
