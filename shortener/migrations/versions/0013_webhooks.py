"""Webhooks: subscriptions, the outbox of their messages, and every delivery attempt.

``webhooks`` holds each subscription with its signing secret (kept as given: signing needs
it), the events and tags it filters on, and its run of consecutive failures (disabled at 20).
``webhook_messages`` is the outbox: a message is inserted in the same transaction as the
change it reports, and the sender (shortener/webhook_sender.py) takes those whose
``next_attempt_at`` has come; NULL once delivered or given up. ``webhook_deliveries`` records
each attempt: status, response time, error.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("user_id", Identifier, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.String(255), nullable=False),
        sa.Column("tags", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_webhooks_user_id_users", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhooks_user_id_id", "webhooks", ["user_id", "id"])
    op.create_table(
        "webhook_messages",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", Identifier, nullable=False),
        sa.Column("uid", sa.String(40), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_messages"),
        sa.UniqueConstraint("uid", name="uq_webhook_messages_uid"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_webhook_messages_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_messages_next_attempt_at", "webhook_messages", ["next_attempt_at"])
    op.create_index("ix_webhook_messages_webhook_id_id", "webhook_messages", ["webhook_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", Identifier, nullable=False),
        sa.Column("message_id", Identifier, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("attempted_at", UTCDateTime, nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=True),
        sa.Column("response_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_webhook_deliveries_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["webhook_messages.id"],
            name="fk_webhook_deliveries_message_id_webhook_messages",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_id_id", "webhook_deliveries", ["webhook_id", "id"]
    )
    op.create_index("ix_webhook_deliveries_message_id", "webhook_deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_messages")
    op.drop_table("webhooks")
