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


@dataclass(frozen=True, slots=True)
class Redirect:
    link_id: int
    target: str
    status: int


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
