"""Tags on links, and indexes for finding links (filters and sorts of GET /links).

``tags`` holds each owner's tags: ``name`` as first given, ``key`` its case-folded form (one
tag per owner and key, so "News" and "news" are one tag). ``link_tags`` ties links to them,
with the tag's ``position`` in the link's list (a link shows its tags in the order given).
Both go with their link, tag or owner (ON DELETE CASCADE).

Indexes on ``links`` for each sort of the collection, per owner and across owners (admins),
each ending in ``id``: keyset pages on (key, id) are index range scans, so the last page of
100,000 links costs what the first does. ``sort_title``: the title, '' for none, which the
title sort orders by (NULLs sort differently on each database; storage/link_queries.py keeps
it with the title). ``target``: exact lookups of a
normalised target (a hash index on PostgreSQL, which has no length limit on its entries).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shortener.storage.tables import Identifier, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", Identifier, primary_key=True, autoincrement=True),
        sa.Column("owner_id", Identifier, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_tags_owner_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("owner_id", "key", name="uq_tags_owner_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tags_key", "tags", ["key"])
    op.create_table(
        "link_tags",
        sa.Column("link_id", Identifier, nullable=False),
        sa.Column("tag_id", Identifier, nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("link_id", "tag_id", name="pk_link_tags"),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name="fk_link_tags_link_id_links", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name="fk_link_tags_tag_id_tags", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_link_tags_tag_id_link_id", "link_tags", ["tag_id", "link_id"])
    op.add_column(
        "links",
        sa.Column("sort_title", sa.String(255), nullable=False, server_default=sa.text("''")),
    )
    op.execute("UPDATE links SET sort_title = title WHERE title IS NOT NULL")
    op.create_index("ix_links_owner_id_created_at_id", "links", ["owner_id", "created_at", "id"])
    op.create_index("ix_links_created_at_id", "links", ["created_at", "id"])
    op.create_index("ix_links_owner_id_visit_count_id", "links", ["owner_id", "visit_count", "id"])
    op.create_index("ix_links_visit_count_id", "links", ["visit_count", "id"])
    op.create_index("ix_links_owner_id_slug", "links", ["owner_id", "slug"])
    op.create_index("ix_links_owner_id_sort_title_id", "links", ["owner_id", "sort_title", "id"])
    op.create_index("ix_links_sort_title_id", "links", ["sort_title", "id"])
    op.create_index("ix_links_target", "links", ["target"], postgresql_using="hash")


def downgrade() -> None:
    for name in (
        "ix_links_target",
        "ix_links_sort_title_id",
        "ix_links_owner_id_sort_title_id",
        "ix_links_owner_id_slug",
        "ix_links_visit_count_id",
        "ix_links_owner_id_visit_count_id",
        "ix_links_created_at_id",
        "ix_links_owner_id_created_at_id",
    ):
        op.drop_index(name, table_name="links")
    op.drop_column("links", "sort_title")
    op.drop_index("ix_link_tags_tag_id_link_id", table_name="link_tags")
    op.drop_table("link_tags")
    op.drop_index("ix_tags_key", table_name="tags")
    op.drop_table("tags")
