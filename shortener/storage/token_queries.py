"""Queries on API tokens. Only digests are stored; the secret itself never reaches this layer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from .engine import Database
from .keyset import newest_first
from .records import UserRecord
from .tables import api_tokens, users
from .typed_reads import TypedRead


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    scopes: tuple[str, ...]
    owner_id: int
    owner_username: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


_TOKEN_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.name,
    api_tokens.c.scopes,
    api_tokens.c.user_id.label("owner_id"),
    users.c.username.label("owner_username"),
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.last_used_at,
)
_JOIN = api_tokens.join(users, api_tokens.c.user_id == users.c.id)
_SELECT_TOKENS = select(*_TOKEN_COLUMNS).select_from(_JOIN)
# One indexed read per token-authenticated request: the token, its digest and its owner.
_SELECT_FOR_AUTHENTICATION = select(
    *_TOKEN_COLUMNS,
    api_tokens.c.digest,
    users.c.password_hash,
    users.c.is_admin,
    users.c.created_at.label("user_created_at"),
    users.c.version.label("user_version"),
).select_from(_JOIN)


def _record(mapping) -> TokenRecord:
    return TokenRecord(
        id=mapping["id"],
        name=mapping["name"],
        scopes=tuple(mapping["scopes"].split()),
        owner_id=mapping["owner_id"],
        owner_username=mapping["owner_username"],
        created_at=mapping["created_at"],
        expires_at=mapping["expires_at"],
        last_used_at=mapping["last_used_at"],
    )


def find_by_id(connection: Connection, token_id: int) -> TokenRecord | None:
    row = connection.execute(_SELECT_TOKENS.where(api_tokens.c.id == token_id)).first()
    return None if row is None else _record(row._mapping)


class TokenByDigest:
    """(token, its owner, the stored digest) for the token with this digest, or None.

    Every token-authenticated request makes this read: prepared once
    (storage/typed_reads.py), outside any transaction."""

    def __init__(self, database: Database) -> None:
        self._read = TypedRead(
            database, _SELECT_FOR_AUTHENTICATION.where(api_tokens.c.digest == bindparam("digest"))
        )

    def __call__(self, digest: str) -> tuple[TokenRecord, UserRecord, str] | None:
        row = self._read.first({"digest": digest})
        return None if row is None else _authenticated(row)


def _authenticated(mapping) -> tuple[TokenRecord, UserRecord, str]:
    owner = UserRecord(
        id=mapping["owner_id"],
        username=mapping["owner_username"],
        password_hash=mapping["password_hash"],
        is_admin=mapping["is_admin"],
        created_at=mapping["user_created_at"],
        version=mapping["user_version"],
    )
    return _record(mapping), owner, mapping["digest"]


def page(
    connection: Connection, *, owner_id: int | None, before_id: int | None, limit: int
) -> list[TokenRecord]:
    """Newest first, keyset-paginated on the primary key, like links and users."""
    query = _SELECT_TOKENS
    if owner_id is not None:
        query = query.where(api_tokens.c.user_id == owner_id)
    query = newest_first(query, api_tokens.c.id, before_id=before_id, limit=limit)
    return [_record(row._mapping) for row in connection.execute(query)]


def insert_token(
    connection: Connection,
    *,
    owner_id: int,
    name: str,
    digest: str,
    scopes: Iterable[str],
    now: datetime,
    expires_at: datetime | None,
) -> int:
    result = connection.execute(
        insert(api_tokens)
        .values(
            user_id=owner_id,
            name=name,
            digest=digest,
            scopes=" ".join(scopes),
            created_at=now,
            expires_at=expires_at,
            last_used_at=None,
        )
        .returning(api_tokens.c.id)
    )
    return result.scalar_one()


def delete_token(connection: Connection, token_id: int) -> None:
    connection.execute(delete(api_tokens).where(api_tokens.c.id == token_id))


def set_last_used(connection: Connection, token_id: int, moment: datetime) -> None:
    connection.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=moment)
    )


def set_expires_at(connection: Connection, token_id: int, moment: datetime | None) -> None:
    connection.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(expires_at=moment)
    )
