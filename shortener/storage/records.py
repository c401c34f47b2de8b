"""Plain records handed to the layers above, so they never see SQLAlchemy rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    password_hash: str
    is_admin: bool
    created_at: datetime
    version: int  # raised by every change (see services/preconditions.py)


@dataclass(frozen=True, slots=True)
class LinkRecord:
    id: int
    slug: str
    target: str
    title: str | None
    redirect_status: int
    visit_count: int
    owner_id: int
    owner_username: str
    created_at: datetime
    updated_at: datetime
    version: int  # raised by every change but visits (see services/preconditions.py)
    crawlable: bool  # listed as allowed in GET /robots.txt
    # Lifetime and visit cap (services/lifetime.py): cap_used counts the visits the cap let
    # through, exhausted_at is when it reached max_visits.
    valid_since: datetime | None = None
    valid_until: datetime | None = None
    max_visits: int | None = None
    cap_used: int = 0
    exhausted_at: datetime | None = None
    expired_target: str | None = None
    # Query forwarding and UTM fields (services/forwarding.py); the hash of the link's
    # password, None for a link anyone may follow.
    forward_query: bool = False
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    password_hash: str | None = None
    # Redirect rules and A/B variants as stored: JSON text, None for none (services/rules.py).
    rules: str | None = None
    variants: str | None = None
    # The link's tags as named, in their order (storage/tag_queries.py, migration 0014).
    tags: tuple[str, ...] = ()
    # active | scheduled | expired | exhausted: worked out by the link service, at its clock.
    status: str = "active"

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    @property
    def limited(self) -> bool:
        return (
            self.valid_since is not None
            or self.valid_until is not None
            or self.max_visits is not None
        )


@dataclass(frozen=True, slots=True)
class Redirect:
    link_id: int
    target: str
    status: int
    # True when the link has a window or a cap: the fast path hands it to the view, which
    # checks them (services/lifetime.py). Plain links never look at the fields below.
    limited: bool = False
    valid_since: datetime | None = None
    valid_until: datetime | None = None
    max_visits: int | None = None
    expired_target: str | None = None
    # True when the link forwards the visitor's query or has a password: the fast path hands
    # it to the view when it has to (a query string to forward, a password to ask for).
    # ``target`` already carries the link's UTM fields (services/forwarding.py).
    options: bool = False
    forward_query: bool = False
    password_hash: str | None = None
    # The link's rules and variants, compiled (services/rules.Routing), or None: the fast path
    # hands a link that has them to the view, which decides per visitor.
    routing: object | None = None


@dataclass(frozen=True, slots=True)
class VisitRecord:
    id: int
    link_slug: str
    visited_at: datetime
    referrer: str | None
    user_agent: str | None
    browser: str | None
    os: str | None
    ip: str | None
    is_bot: bool
    # Where the visitor was sent and by which rule or variant; the country (migration 0011).
    target_used: str | None = None
    rule: int | None = None
    variant: int | None = None
    country: str | None = None
