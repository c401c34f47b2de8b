"""Link events: every change of a link (created, updated, deleted), handed to subscribers
inside the transaction that makes it, so a change and what it leaves behind (a history
revision, a webhook's outbox message) commit together or not at all.

    events = LinkEvents()
    events.subscribe(history.record)   # (connection, [LinkEvent, ...]) -> None
    LinkService(..., events=events)    # publishes every change it makes

Who acted, and with which credential, is set once per request (resources/operations.py) by
``acting_as``; without it (the command line, a background job) the change is the operator's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from ..instants import rfc3339
from ..storage.records import LinkRecord, UserRecord
from .actors import OPERATOR

CREATED = "link.created"
UPDATED = "link.updated"
DELETED = "link.deleted"
Kind = Literal["link.created", "link.updated", "link.deleted"]

# How a change was made: ``via`` in a revision.
PASSWORD = "password"  # HTTP Basic with the user's password
TOKEN = "token"  # an API token (Acting.token_id says which)
COMMAND_LINE = "cli"  # the operator, at the command line (or any code outside a request)
Channel = Literal["password", "token", "cli"]

# Fields whose stored form is JSON text; the events carry them parsed, as a client sees them.
_JSON_TEXT = frozenset({"rules", "variants"})


@dataclass(frozen=True, slots=True)
class Acting:
    """Who changed a link, and with which credential."""

    user: UserRecord  # OPERATOR (id 0) for the command line
    channel: Channel
    token_id: int | None = None  # the token's id when channel is TOKEN

    @property
    def is_operator(self) -> bool:
        return self.user.id == OPERATOR.id


_ACTING: ContextVar[Acting | None] = ContextVar("shortener_acting", default=None)


@contextmanager
def acting_as(user: UserRecord, *, token_id: int | None = None) -> Iterator[Acting]:
    """Every change made inside is ``user``'s, made with a password (``token_id`` None) or
    with that token."""
    acting = Acting(user, PASSWORD if token_id is None else TOKEN, token_id)
    reset = _ACTING.set(acting)
    try:
        yield acting
    finally:
        _ACTING.reset(reset)


def current_acting(actor: UserRecord) -> Acting:
    """Who is making a change for ``actor``: the request's credential when one is set (and
    speaks for that user), else ``actor`` at the command line."""
    acting = _ACTING.get()
    if acting is not None and acting.user.id == actor.id:
        return acting
    return Acting(actor, COMMAND_LINE)


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """One change of one link. ``changes`` holds the changed client-visible fields as
    ``{field: (old, new)}`` in their JSON form (datetimes as RFC 3339 text, rules as lists);
    a password never appears, only ``has_password``."""

    kind: Kind
    link_id: int
    slug: str
    owner_id: int
    at: datetime
    acting: Acting
    changes: dict[str, tuple[object, object]]
    before: LinkRecord | None = None  # None for link.created
    after: LinkRecord | None = None  # None for link.deleted
    # Whether the owner had an active webhook when the change was written, when the change's
    # own statement read it (a create's INSERT); None: not known, the webhooks' outbox reads.
    owner_has_webhooks: bool | None = None


Subscriber = Callable[[Connection, Sequence[LinkEvent]], None]


@dataclass
class LinkEvents:
    """The subscribers of link events, called in order inside the changing transaction: an
    exception from one rolls the change back."""

    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def publish(self, connection: Connection, events: Sequence[LinkEvent]) -> None:
        if not events:
            return
        gathering = _GATHERING.get()
        if gathering is not None:  # inside ``gathered``: kept for one publish at its end
            gathering.extend(events)
            return
        for subscriber in self.subscribers:
            subscriber(connection, events)

    @contextmanager
    def gathered(self, connection: Connection) -> Iterator[list[LinkEvent]]:
        """Inside, this thread's events are kept, and published all at once when it ends
        without an exception (still inside the caller's transaction): a batch of 1,000 links
        costs its subscribers one call, not 1,000. The caller drops the events of an item it
        rolled back (to a savepoint) from the list it is given."""
        events: list[LinkEvent] = []
        reset = _GATHERING.set(events)
        try:
            yield events
        finally:
            _GATHERING.reset(reset)
        self.publish(connection, events)


# The events kept by ``LinkEvents.gathered`` in this thread (None: publish at once).
_GATHERING: ContextVar[list[LinkEvent] | None] = ContextVar("shortener_gathering", default=None)


# -- what changed --------------------------------------------------------------------------
def visible_values(link: LinkRecord, names: Sequence[str]) -> dict[str, object]:
    """The link's client-visible ``names`` in their JSON form."""
    return {name: _json_form(name, getattr(link, name)) for name in names}


def _json_form(name: str, value: object) -> object:
    if name in _JSON_TEXT:  # as the representation shows them: none stored is []
        return [] if value is None else json.loads(value)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    return value


def _is_set(value: object) -> bool:
    return value is not None and value is not False and value != []


def created(
    link: LinkRecord,
    names: Sequence[str],
    acting: Acting,
    *,
    owner_has_webhooks: bool | None = None,
) -> LinkEvent:
    """A new link: every field it has a value for, as ``(None, value)``."""
    values = visible_values(link, names)
    return LinkEvent(
        CREATED,
        link.id,
        link.slug,
        link.owner_id,
        link.updated_at,
        acting,
        {name: (None, value) for name, value in values.items() if _is_set(value)},
        after=link,
        owner_has_webhooks=owner_has_webhooks,
    )


def updated(
    before: LinkRecord, after: LinkRecord, names: Sequence[str], acting: Acting
) -> LinkEvent | None:
    """A changed link: the fields that differ, as ``(old, new)``; None if none does. A new
    password over an old one shows as ``has_password (True, True)``."""
    old, new = visible_values(before, names), visible_values(after, names)
    changes = {name: (old[name], new[name]) for name in names if old[name] != new[name]}
    if (
        "has_password" in names
        and before.password_hash is not None
        and after.password_hash is not None
        and before.password_hash != after.password_hash
    ):
        changes["has_password"] = (True, True)
    if not changes:
        return None
    return LinkEvent(
        UPDATED,
        after.id,
        after.slug,
        after.owner_id,
        after.updated_at,
        acting,
        changes,
        before=before,
        after=after,
    )


def deleted(link: LinkRecord, names: Sequence[str], acting: Acting, at: datetime) -> LinkEvent:
    """A deleted link: every field it had a value for, as ``(value, None)``."""
    values = visible_values(link, names)
    return LinkEvent(
        DELETED,
        link.id,
        link.slug,
        link.owner_id,
        at,
        acting,
        {name: (value, None) for name, value in values.items() if _is_set(value)},
        before=link,
    )
