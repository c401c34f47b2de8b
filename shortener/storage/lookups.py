"""Keys from clients that no row can hold, answered without asking the database."""

from __future__ import annotations


def cannot_be_stored(key: str) -> bool:
    """Whether no stored name or slug can equal ``key``.

    PostgreSQL text cannot hold NUL: a query comparing with it fails instead of finding
    nothing. Nothing we write holds one on SQLite either, so both answer "no such row".
    """
    return "\x00" in key
