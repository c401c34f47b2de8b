"""Fewer rollup rows a visit: the target breakdown moves into the total rows, and visits
without a referrer no longer add a referrer row.

Every visit added five rollup rows (total, browser, os, referrer, target), each an upsert into
the rollups' primary key: on SQLite a tenth of a visit's cost each. A visit's ``total`` row is
now kept under the URL it was sent to (what the ``target`` rows held), and the direct visits
are read as the total less the referred ones. Existing rows are moved to that shape: within
each link, hour and bot flag, the target rows become total rows and the old total row keeps
only the visits no target was recorded for (before migration 0011); the referrer rows of
direct visits are dropped. No count changes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_SAME_BUCKET = (
    "t.link_id = visit_rollups.link_id AND t.hour = visit_rollups.hour "
    "AND t.is_bot = visit_rollups.is_bot"
)


def upgrade() -> None:
    op.execute(
        "UPDATE visit_rollups SET visits = visits - (SELECT coalesce(sum(t.visits), 0) "
        f"FROM visit_rollups t WHERE t.dimension = 'target' AND {_SAME_BUCKET}) "
        "WHERE dimension = 'total'"
    )
    op.execute("DELETE FROM visit_rollups WHERE dimension = 'total' AND visits <= 0")
    op.execute("UPDATE visit_rollups SET dimension = 'total' WHERE dimension = 'target'")
    op.execute("DELETE FROM visit_rollups WHERE dimension = 'referrer' AND value = ''")


def downgrade() -> None:
    op.execute(
        "INSERT INTO visit_rollups (link_id, dimension, hour, value, is_bot, visits) "
        "SELECT link_id, 'referrer', hour, '', is_bot, direct FROM ("
        "SELECT link_id, hour, is_bot, sum(CASE WHEN dimension = 'total' THEN visits "
        "ELSE -visits END) AS direct FROM visit_rollups WHERE dimension IN ('total', 'referrer') "
        "GROUP BY link_id, hour, is_bot) AS buckets WHERE direct > 0"
    )
    op.execute(
        "INSERT INTO visit_rollups (link_id, dimension, hour, value, is_bot, visits) "
        "SELECT link_id, 'target', hour, value, is_bot, visits FROM visit_rollups "
        "WHERE dimension = 'total' AND value <> ''"
    )
    op.execute(
        "INSERT INTO visit_rollups (link_id, dimension, hour, value, is_bot, visits) "
        "SELECT link_id, 'total', hour, '', is_bot, sum(visits) FROM visit_rollups "
        "WHERE dimension = 'target' GROUP BY link_id, hour, is_bot "
        "ON CONFLICT (link_id, dimension, hour, value, is_bot) "
        "DO UPDATE SET visits = visit_rollups.visits + excluded.visits"
    )
    op.execute("DELETE FROM visit_rollups WHERE dimension = 'total' AND value <> ''")
