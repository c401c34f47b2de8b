"""Redirect rules and A/B splits; what each visit was sent to, and why.

Links gain ``rules`` and ``variants``: JSON text (a list each, as the API shows them), NULL for
a link without (every existing link). They are read with the link, in the redirect's one
indexed lookup, and compiled once per cached link (services/rules.py); tables of their own
would cost every redirect of such a link a join or a second read, and they are only ever
read and replaced whole.

Visits gain ``target_used`` (the URL the visitor was sent to), ``rule`` and ``variant`` (the
index of the rule or variant that chose it, NULL when neither did) and ``country`` (ISO 3166-1
alpha-2 from the GeoIP database, NULL without one). Existing visits keep NULL: what they were
sent to was not recorded.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("links", sa.Column("rules", sa.Text, nullable=True))
    op.add_column("links", sa.Column("variants", sa.Text, nullable=True))
    op.add_column("visits", sa.Column("target_used", sa.Text, nullable=True))
    op.add_column("visits", sa.Column("rule", sa.SmallInteger, nullable=True))
    op.add_column("visits", sa.Column("variant", sa.SmallInteger, nullable=True))
    op.add_column("visits", sa.Column("country", sa.String(2), nullable=True))


def downgrade() -> None:
    for column in ("country", "variant", "rule", "target_used"):
        op.drop_column("visits", column)
    op.drop_column("links", "variants")
    op.drop_column("links", "rules")
