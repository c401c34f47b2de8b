"""Newest-first keyset pages: every collection continues before the last id it showed."""

from __future__ import annotations

from sqlalchemy import Column, Select


def newest_first(query: Select, id_column: Column, *, before_id: int | None, limit: int) -> Select:
    """Page N costs what page 1 costs: an index range scan, never an OFFSET."""
    if before_id is not None:
        query = query.where(id_column < before_id)
    return query.order_by(id_column.desc()).limit(limit)
