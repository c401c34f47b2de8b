"""API tokens: scoped credentials for scripts, so they never carry a user's password.

A token is ``shr_`` followed by 256 random bits. Only its SHA-256 digest is stored; a request
finds its token by that digest, so revoking (deleting the row) or expiry takes effect on the
very next request in every worker.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..storage import Database, DatabaseUnavailable, DuplicateKey, user_queries
from ..storage import token_queries as queries
from ..storage.records import UserRecord
from ..storage.token_queries import TokenRecord
from .actors import utcnow
from .errors import Forbidden, InvalidInput, NotFound
from .pagination import Page, decode_cursor, paginate
from .preconditions import NO_PRECONDITION, Precondition, entity_tag

logger = logging.getLogger(__name__)

LINKS_READ = "links:read"
LINKS_WRITE = "links:write"
STATS_READ = "stats:read"
USERS_ADMIN = "users:admin"
WEBHOOKS_READ = "webhooks:read"
WEBHOOKS_WRITE = "webhooks:write"
SCOPES = (LINKS_READ, LINKS_WRITE, STATS_READ, WEBHOOKS_READ, WEBHOOKS_WRITE, USERS_ADMIN)
DEFAULT_SCOPES = (LINKS_READ, LINKS_WRITE, STATS_READ, WEBHOOKS_READ, WEBHOOKS_WRITE)
USER_SCOPES = frozenset(DEFAULT_SCOPES)
ADMIN_SCOPES = frozenset(SCOPES)

TOKEN_PREFIX = "shr_"
TOKEN_BYTES = 32  # 256 bits
# Longer than any token we issue: such a value is refused without touching the database.
TOKEN_MAX_LENGTH = 128
NAME_MAX_LENGTH = 100
_MAX_ID = 2**63 - 1
# last_used_at is written at most once per interval per token and process.
LAST_USED_INTERVAL_SECONDS = 60.0


def scopes_of(user: UserRecord) -> frozenset[str]:
    """Every scope this user may hold: users:admin only for administrators."""
    return ADMIN_SCOPES if user.is_admin else USER_SCOPES


def generate_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def ordered(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes in their canonical order, each once."""
    given = set(scopes)
    return tuple(scope for scope in SCOPES if scope in given)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: the only moment its secret exists outside the client."""

    record: TokenRecord
    secret: str


@dataclass(frozen=True, slots=True)
class TokenUse:
    """Who a presented token speaks for, and with which scopes."""

    user: UserRecord
    scopes: frozenset[str]
    token_id: int


class TokenService:
    def __init__(
        self, database: Database, *, last_used_interval: float = LAST_USED_INTERVAL_SECONDS
    ) -> None:
        self.database = database
        self.last_used_interval = last_used_interval
        self._last_written: dict[int, float] = {}  # token id -> time.monotonic() of the write
        self._last_written_lock = threading.Lock()
        self._by_digest = queries.TokenByDigest(database)

    # -- authentication -------------------------------------------------------------------
    def authenticate(self, secret: str) -> TokenUse | None:
        """The token's owner and scopes, or None if it is unknown, revoked or expired."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > TOKEN_MAX_LENGTH:
            return None
        digest = digest_of(secret)
        found = self._by_digest(digest)
        if found is None:
            return None
        token, user, stored_digest = found
        if not hmac.compare_digest(stored_digest, digest):
            return None
        now = utcnow()
        if token.expires_at is not None and token.expires_at <= now:
            return None
        self._note_use(token, now)
        # A demoted admin's token loses users:admin with the role.
        return TokenUse(user, frozenset(token.scopes) & scopes_of(user), token.id)

    def _note_use(self, token: TokenRecord, now: datetime) -> None:
        """Writes last_used_at at most once per interval, not on every request."""
        interval = self.last_used_interval
        if token.last_used_at is not None and (now - token.last_used_at).total_seconds() < interval:
            return  # this or another worker wrote it a moment ago
        moment = time.monotonic()
        with self._last_written_lock:
            written = self._last_written.get(token.id)
            if written is not None and moment - written < interval:
                return
            self._last_written[token.id] = moment
            if len(self._last_written) > 10_000:
                self._last_written = {
                    key: value
                    for key, value in self._last_written.items()
                    if moment - value < interval
                }
        try:
            with self.database.write() as connection:
                queries.set_last_used(connection, token.id, now)
        except DatabaseUnavailable as error:
            # The token was valid; a missed timestamp must not fail the request.
            logger.warning("could not record the use of token %d: %s", token.id, error)

    # -- management -----------------------------------------------------------------------
    def create(
        self,
        actor: UserRecord,
        *,
        owner: str,
        name: str,
        scopes: Iterable[str] | None = None,
        expires_at: datetime | None = None,
        grantable: frozenset[str] | None = None,
    ) -> NewToken:
        """A new token for ``owner``.

        ``grantable``: the scopes of the token the request came with (None for a password or
        the operator); a token can only create tokens with a subset of its own scopes.
        """
        self.require_access(actor, owner)
        with self.database.read() as connection:
            owner_record = user_queries.find_by_name(connection, owner)
        if owner_record is None:
            raise self._no_user(owner)
        wanted = list(DEFAULT_SCOPES if scopes is None else scopes)
        now = utcnow()
        # The fields come checked by the schema; what the owner may hold needs the owner.
        if USERS_ADMIN in wanted and not owner_record.is_admin:
            raise InvalidInput(
                "The token has invalid fields.",
                errors={"scopes": [f"{USERS_ADMIN} is only for administrators."]},
            )
        if grantable is not None and (missing := ordered(set(wanted) - grantable)):
            raise Forbidden(
                "A token can only create tokens with scopes it has itself; this one lacks "
                + ", ".join(missing)
                + "."
            )
        secret = generate_secret()
        try:
            with self.database.write() as connection:
                token_id = queries.insert_token(
                    connection,
                    owner_id=owner_record.id,
                    name=name,
                    digest=digest_of(secret),
                    scopes=ordered(wanted),
                    now=now,
                    expires_at=expires_at,
                )
                record = queries.find_by_id(connection, token_id)
        except DuplicateKey:  # the owner was deleted meanwhile (a digest never repeats)
            raise self._no_user(owner) from None
        return NewToken(record, secret)

    def list(
        self, actor: UserRecord, *, owner: str | None, cursor: str | None, limit: int
    ) -> Page[TokenRecord]:
        """``owner``'s tokens, newest first; ``None``: everyone's (administrators only)."""
        if owner is None:
            if not actor.is_admin:
                raise Forbidden("Only administrators can list every user's tokens.")
        else:
            self.require_access(actor, owner)
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            owner_id = None
            if owner is not None:
                owner_record = user_queries.find_by_name(connection, owner)
                if owner_record is None:
                    raise self._no_user(owner)
                owner_id = owner_record.id
            rows = queries.page(connection, owner_id=owner_id, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda token: token.id)

    def get(self, actor: UserRecord, token_id: str | int) -> TokenRecord:
        """Another user's token is reported as missing, never as forbidden."""
        number = _parse_id(token_id)
        token = None
        if number is not None:
            with self.database.read() as connection:
                token = queries.find_by_id(connection, number)
        if token is None or not _can_see(actor, token):
            raise self._not_found(token_id)
        return token

    def revoke(
        self,
        actor: UserRecord,
        token_id: str | int,
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> TokenRecord:
        """Deletes the token: the next request that presents it gets 401, in every worker.
        A token never changes (no version): If-Match compares its id, never reused."""
        number = _parse_id(token_id)
        if number is None:
            raise self._not_found(token_id)
        with self.database.write() as connection:
            token = queries.find_by_id(connection, number)
            if token is None or not _can_see(actor, token):
                raise self._not_found(token_id)
            precondition.check(entity_tag(token), f"The token '{token_id}'")
            queries.delete_token(connection, number)
        return token

    @staticmethod
    def require_access(actor: UserRecord, owner: str) -> None:
        if not actor.is_admin and actor.username != owner:
            raise Forbidden("Only administrators can manage other users' tokens.")

    @staticmethod
    def _not_found(token_id: str | int) -> NotFound:
        return NotFound(f"There is no token '{token_id}'.")

    @staticmethod
    def _no_user(username: str) -> NotFound:
        return NotFound(f"There is no user '{username}'.")


def _can_see(actor: UserRecord, token: TokenRecord) -> bool:
    return actor.is_admin or actor.id == token.owner_id


def _parse_id(token_id: str | int) -> int | None:
    """The integer id in a URI, or None when it cannot name a token."""
    if isinstance(token_id, int):
        number = token_id
    elif isinstance(token_id, str) and token_id.isascii() and token_id.isdigit():
        number = int(token_id)
    else:
        return None
    if str(number) != str(token_id):  # "007" is not how we write 7
        return None
    return number if 1 <= number <= _MAX_ID else None
