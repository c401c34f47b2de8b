"""Queries on users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from .keyset import newest_first
from .lookups import cannot_be_stored
from .records import UserRecord
from .tables import users

_SELECT_USERS = select(
    users.c.id, users.c.username, users.c.password_hash, users.c.is_admin, users.c.created_at
)


def find_by_name(connection: Connection, username: str) -> UserRecord | None:
    if cannot_be_stored(username):
        return None
    row = connection.execute(_SELECT_USERS.where(users.c.username == username)).first()
    return None if row is None else UserRecord(**row._mapping)


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


def update_user(connection: Connection, user_id: int, changes: dict[str, Any]) -> None:
    connection.execute(update(users).where(users.c.id == user_id).values(**changes))


def delete_user(connection: Connection, user_id: int) -> None:
    connection.execute(delete(users).where(users.c.id == user_id))


def count_users(connection: Connection) -> int:
    return connection.execute(select(func.count()).select_from(users)).scalar_one()


def count_admins(connection: Connection) -> int:
    query = select(func.count()).select_from(users).where(users.c.is_admin.is_(True))
    return connection.execute(query).scalar_one()
