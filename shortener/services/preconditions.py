"""Conditional requests (RFC 9110 section 13): entity tags and the If-Match precondition.

Every tag is ``"<state>-<usage>"`` or ``"<state>"``:

- ``state`` names what a client changes: the row's id (never reused) and its ``version``,
  which every change raises in the same UPDATE. ``If-Match`` compares only this part.
- ``usage`` is bookkeeping the server does on its own: a link's ``visit_count``, a token's
  ``last_used_at``. It is part of the tag, so the tag changes with every change of the
  representation (``If-None-Match`` and caches see a new visit), but a visit between a GET
  and a PUT never makes the PUT fail: the client did not lose an update it could have seen.

Tokens have no version: they cannot be changed, only deleted, and their ids are never reused,
so the id alone is their state. A user's representation has no usage part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..storage.records import LinkRecord, UserRecord
from ..storage.token_queries import TokenRecord
from ..storage.webhook_queries import WebhookRecord
from .errors import PreconditionFailed, PreconditionRequired


@dataclass(frozen=True, slots=True)
class EntityTag:
    """A strong entity tag: ``state`` is what If-Match compares (see the module)."""

    state: str
    usage: str = ""

    @property
    def opaque(self) -> str:
        """The tag without its quotes."""
        return f"{self.state}-{self.usage}" if self.usage else self.state

    def __str__(self) -> str:
        return f'"{self.opaque}"'


def entity_tag(record: LinkRecord | UserRecord | TokenRecord | WebhookRecord) -> EntityTag:
    if isinstance(record, LinkRecord):
        if record.limited:  # its status and cap move without a change of the link
            usage = f"{record.visit_count}.{record.cap_used}.{record.status}"
            return EntityTag(f"{record.id}.{record.version}", usage)
        return EntityTag(f"{record.id}.{record.version}", str(record.visit_count))
    if isinstance(record, UserRecord):
        return EntityTag(f"{record.id}.{record.version}")
    if isinstance(record, TokenRecord):
        used = record.last_used_at.isoformat() if record.last_used_at else ""
        expires = record.expires_at.isoformat() if record.expires_at else ""
        usage = hashlib.sha256(f"{used}|{expires}".encode()).hexdigest()[:12]
        return EntityTag(str(record.id), usage)
    if isinstance(record, WebhookRecord):  # failures are the sender's bookkeeping
        return EntityTag(f"{record.id}.{record.version}", str(record.consecutive_failures))
    raise TypeError(f"no entity tag for {type(record).__name__}")


def state_of(opaque_tag: str | None) -> str:
    """The state part of a tag a client sent back (without quotes). Werkzeug gives the empty
    tag ``""`` (a valid one, which none of ours is) as None."""
    return (opaque_tag or "").partition("-")[0]


@dataclass(frozen=True, slots=True)
class Precondition:
    """The ``If-Match`` of a PUT, PATCH or DELETE, checked by the service inside its write.

    ``tags``: the strong tags sent (unquoted), None when the header is absent; ``any``:
    ``If-Match: *``; ``required``: SHORTENER_REQUIRE_IF_MATCH, so an existing resource
    cannot be changed without one (428).
    """

    tags: frozenset[str] | None = None
    any: bool = False
    required: bool = False

    @property
    def given(self) -> bool:
        return self.any or self.tags is not None

    def check(self, current: EntityTag | None, what: str) -> bool:
        """Raises 428 or 412 unless the write may go on; True when it must be guarded by the
        version just read (``UPDATE ... WHERE version = :read``), so a concurrent change in
        between still fails it. ``current`` None: the resource does not exist (a PUT creates).
        """
        if current is None:
            if self.given:
                raise PreconditionFailed(
                    f"{what} does not exist, so If-Match cannot match; "
                    "leave If-Match out to create it."
                )
            return False
        if not self.given:
            if self.required:
                raise PreconditionRequired(
                    f"Changing {what} needs an If-Match header with its current ETag "
                    "(or '*'): GET it first."
                )
            return False
        if self.any:
            return False
        if current.state not in {state_of(tag) for tag in self.tags or ()}:
            raise self.failed(what)
        return True

    @staticmethod
    def failed(what: str) -> PreconditionFailed:
        return PreconditionFailed(
            f"{what} has changed since the ETag given in If-Match; GET it again and repeat "
            "the change if it still applies. Nothing was changed."
        )


NO_PRECONDITION = Precondition()
