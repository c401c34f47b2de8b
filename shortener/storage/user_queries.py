"""Queries on users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from .engine import Database
from .keyset import newest_first
from .lookups import cannot_be_stored
from .records import UserRecord
from .tables import users
from .typed_reads import TypedRead

_SELECT_USERS = select(
    users.c.id,
    users.c.username,
    users.c.password_hash,
    users.c.is_admin,
    users.c.created_at,
    users.c.version,
)


def find_by_name(connection: Connection, username: str) -> UserRecord | None:
    if cannot_be_stored(username):
        return None
    row = connection.execute(_SELECT_USERS.where(users.c.username == username)).first()
    return None if row is None else UserRecord(**row._mapping)


class UserByName:
    """``find_by_name`` for authentication, which every Basic-authenticated request makes:
    prepared once (storage/typed_reads.py), outside any transaction."""

    def __init__(self, database: Database) -> None:
        self._read = TypedRead(database, _SELECT_USERS.where(users.c.username == bindparam("name")))

    def __call__(self, username: str) -> UserRecord | None:
        if cannot_be_stored(username):
            return None
        row = self._read.first({"name": username})
        return None if row is None else UserRecord(**row)


def page(connection: Connection, *, before_id: int | None, limit: int) -> list[UserRecord]:
    """Newest first, keyset-paginated on the primary key, like links."""
    query = _SELECT_USERS
    query = newest_first(query, users.c.id, before_id=before_id, limit=limit)
    return [UserRecord(**row._mapping) for row in connection.execute(query)]


def insert_user(
    connection: Connection, *, username: str, password_hash: str, is_admin: bool, now: datetime
) -> int:
    result = connection.execute(
        insert(users)
        .values(username=username, password_hash=password_hash, is_admin=is_admin, created_at=now)
        .returning(users.c.id)
    )
    return result.scalar_one()


def update_user(
    connection: Connection,
    user_id: int,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> bool:
    """Like link_queries.update_link: the version is raised in the same UPDATE."""
    query = update(users).where(users.c.id == user_id)
    if expected_version is not None:
        query = query.where(users.c.version == expected_version)
    result = connection.execute(query.values(**changes, version=users.c.version + 1))
    return result.rowcount == 1


def delete_user(
    connection: Connection, user_id: int, *, expected_version: int | None = None
) -> bool:
    query = delete(users).where(users.c.id == user_id)
    if expected_version is not None:
        query = query.where(users.c.version == expected_version)
    return connection.execute(query).rowcount == 1


def count_users(connection: Connection) -> int:
    return connection.execute(select(func.count()).select_from(users)).scalar_one()


def count_admins(connection: Connection) -> int:
    query = select(func.count()).select_from(users).where(users.c.is_admin.is_(True))
    return connection.execute(query).scalar_one()
