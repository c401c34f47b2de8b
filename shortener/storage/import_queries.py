"""What an import writes besides the link itself (services/importing.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update

from .tables import links


def set_imported(
    connection: Connection, link_id: int, *, created_at: datetime | None, visits: int
) -> None:
    """An overwritten link takes the source's creation time (when it has one) and its count
    of visits: ``visit_count`` keeps the visits recorded here and swaps the imported part."""
    values: dict[str, object] = {
        "visit_count": links.c.visit_count - links.c.imported_visits + visits,
        "imported_visits": visits,
    }
    if created_at is not None:
        values["created_at"] = created_at
    connection.execute(update(links).where(links.c.id == link_id).values(**values))


def owned_targets(connection: Connection, owner_id: int, targets: Sequence[str]) -> set[str]:
    """Those of ``targets`` the owner already has a link to (one query for a chunk's rows
    without a slug: an import skips, fails or overwrites those)."""
    if not targets:
        return set()
    query = select(links.c.target).where(
        links.c.owner_id == owner_id, links.c.target.in_(sorted(set(targets)))
    )
    return set(connection.execute(query).scalars())
