"""Accounts: creating them, authenticating them, and who may change what."""

from __future__ import annotations

import secrets

from ..storage import Database, DuplicateKey, link_queries, user_queries
from ..storage.records import UserRecord
from .actors import utcnow
from .errors import Forbidden, LastAdmin, NotFound, UsernameTaken, UserOwnsLinks
from .link_cache import LinkChanges
from .link_events import LinkEvents, current_acting, deleted
from .links import EVENT_FIELDS
from .pagination import Page, decode_cursor, paginate
from .passwords import CredentialCache, PasswordHasher
from .preconditions import NO_PRECONDITION, Precondition, entity_tag


def generate_password() -> str:
    """A strong random password (about 190 bits)."""
    return secrets.token_urlsafe(24)


class UserService:
    def __init__(
        self,
        database: Database,
        *,
        hasher: PasswordHasher,
        link_changes: LinkChanges,
        link_events: LinkEvents | None = None,
    ) -> None:
        self.database = database
        self.hasher = hasher
        self.link_changes = link_changes  # a purge deletes links: the link caches must know
        # ... and so must the history and webhooks (link_events.py): one event a link.
        self.link_events = link_events if link_events is not None else LinkEvents()
        self.credentials = CredentialCache()
        self._named = user_queries.UserByName(database)

    def authenticate(self, username: str, password: str) -> UserRecord | None:
        """The user these credentials belong to, or None. Unknown names cost a full verify."""
        if not username and not password:
            return None  # no credentials at all: nothing to time, nothing to hash
        user = self._named(username)
        if user is not None and self.credentials.hit(username, password, user.password_hash):
            return user
        stored_hash = user.password_hash if user else None
        # Single flight: threads presenting the same credential at once share one hash.
        verified = self.credentials.verify_once(
            username, password, stored_hash, lambda: self.hasher.verify(stored_hash, password)
        )
        return user if verified else None

    def create(
        self, actor: UserRecord, *, username: str, password: str, is_admin: bool = False
    ) -> UserRecord:
        """A new account; the name and password come checked by the schema."""
        self.require_admin(actor)
        password_hash = self.hasher.hash(password)
        try:
            with self.database.write() as connection:
                user_queries.insert_user(
                    connection,
                    username=username,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    now=utcnow(),
                )
                return user_queries.find_by_name(connection, username)
        except DuplicateKey:
            raise UsernameTaken(f"The username '{username}' is already taken.") from None

    def get(self, actor: UserRecord, username: str) -> UserRecord:
        self.require_self_or_admin(actor, username)
        with self.database.read() as connection:
            user = user_queries.find_by_name(connection, username)
        if user is None:
            raise self._not_found(username)
        return user

    def list(self, actor: UserRecord, *, cursor: str | None, limit: int) -> Page[UserRecord]:
        self.require_admin(actor)
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            rows = user_queries.page(connection, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda user: user.id)

    def count(self) -> int:
        with self.database.read() as connection:
            return user_queries.count_users(connection)

    def update(
        self,
        actor: UserRecord,
        username: str,
        *,
        password: str | None = None,
        is_admin: bool | None = None,
        precondition: Precondition = NO_PRECONDITION,
    ) -> UserRecord:
        """Users may change their own password; only admins change roles or others."""
        self.require_self_or_admin(actor, username)
        if is_admin is not None and not actor.is_admin:
            raise Forbidden("Only an administrator can change is_admin.")
        changes: dict[str, object] = {}
        if password is not None:
            changes["password_hash"] = self.hasher.hash(password)
        with self.database.write() as connection:
            user = user_queries.find_by_name(connection, username)
            if user is None:
                raise self._not_found(username)
            guarded = precondition.check(entity_tag(user), f"The user '{username}'")
            if is_admin is not None and is_admin != user.is_admin:
                if not is_admin and user_queries.count_admins(connection) <= 1:
                    raise LastAdmin("The last administrator cannot lose the role.")
                changes["is_admin"] = is_admin
            if changes:
                if not user_queries.update_user(
                    connection,
                    user.id,
                    changes,
                    expected_version=user.version if guarded else None,
                ):
                    raise self._changed_meanwhile(precondition, guarded, username)
                user = user_queries.find_by_name(connection, username)
        return user

    def delete(
        self,
        actor: UserRecord,
        username: str,
        *,
        purge: bool = False,
        precondition: Precondition = NO_PRECONDITION,
    ) -> None:
        self.require_admin(actor)
        # Links go with a purge: the link caches are told, as for any change of a link.
        with (self.link_changes.writing if purge else self.database.write)() as connection:
            user = user_queries.find_by_name(connection, username)
            if user is None:
                raise self._not_found(username)
            guarded = precondition.check(entity_tag(user), f"The user '{username}'")
            if user.is_admin and user_queries.count_admins(connection) <= 1:
                raise LastAdmin("The last administrator cannot be deleted.")
            if link_queries.owner_has_links(connection, user.id):
                if not purge:
                    raise UserOwnsLinks(
                        f"'{username}' still owns links; delete them first, "
                        "or repeat the request with ?purge=true to delete them too."
                    )
                gone = link_queries.links_of_owner(connection, user.id)
                link_queries.delete_links_of_owner(connection, user.id)
                acting, now = current_acting(actor), utcnow()
                self.link_events.publish(
                    connection, [deleted(link, EVENT_FIELDS, acting, now) for link in gone]
                )
            if not user_queries.delete_user(
                connection, user.id, expected_version=user.version if guarded else None
            ):  # raising rolls back the links deleted above
                raise self._changed_meanwhile(precondition, guarded, username)

    @staticmethod
    def require_admin(actor: UserRecord) -> None:
        if not actor.is_admin:
            raise Forbidden("This needs an administrator.")

    @staticmethod
    def require_self_or_admin(actor: UserRecord, username: str) -> None:
        if not actor.is_admin and actor.username != username:
            raise Forbidden("Only administrators can see or change other users.")

    @classmethod
    def _changed_meanwhile(
        cls, precondition: Precondition, guarded: bool, username: str
    ) -> Exception:
        """412 if a guarded write lost to a concurrent change; 404 if the user was deleted."""
        if guarded:
            return precondition.failed(f"The user '{username}'")
        return cls._not_found(username)

    @staticmethod
    def _not_found(username: str) -> NotFound:
        return NotFound(f"There is no user '{username}'.")
