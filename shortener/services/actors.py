"""Who is acting: an authenticated user, or the operator at the command line."""

from __future__ import annotations

from datetime import UTC, datetime

from ..storage.records import UserRecord

# The CLI acts with full rights; it is never a row in the users table (id 0 is never issued).
OPERATOR = UserRecord(
    id=0,
    username="(operator)",
    password_hash="",
    is_admin=True,
    created_at=datetime(1970, 1, 1, tzinfo=UTC),
    version=1,
)


def can_see_owner(actor: UserRecord, owner_id: int) -> bool:
    return actor.is_admin or actor.id == owner_id


def utcnow() -> datetime:
    return datetime.now(UTC)
