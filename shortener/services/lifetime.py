"""Link lifetime and visit caps: when a link redirects, and what it answers otherwise.

A link may have a window (``valid_since`` inclusive, ``valid_until`` exclusive) and a cap
(``max_visits``). Its status, in this order of precedence:

- ``scheduled``: before ``valid_since``; the redirect answers 404, as for a link that does not
  exist yet (the owner sees it through the API).
- ``expired``: at or after ``valid_until``.
- ``exhausted``: ``max_visits`` visits were let through (``cap_used``, counted by one atomic
  UPDATE per GET of a capped link, so the cap is exact across workers and hosts).
- ``active``: otherwise.

An expired or exhausted link answers 410 Gone, or redirects (302) to ``expired_target`` when
it has one. Windows are checked in memory, from the cached link, at every request (a link
expires with time, with no change event); only capped links pay for a write per GET.
"""

from __future__ import annotations

from datetime import datetime

from .errors import InvalidInput

ACTIVE, SCHEDULED, EXPIRED, EXHAUSTED = "active", "scheduled", "expired", "exhausted"
STATUSES = (ACTIVE, SCHEDULED, EXPIRED, EXHAUSTED)
# Largest cap accepted (JSON numbers stay exact, the column is a BIGINT).
MAX_VISITS_LIMIT = 1_000_000_000
# Where the status of a link that is past its window or cap sends visitors, when it has an
# expired_target: always a temporary redirect (a cached permanent one would outlive a change).
EXPIRED_TARGET_STATUS = 302
# Answers of links with a window or a cap are never kept by caches: a cached redirect would
# outlive the window and skip the count.
LIMITED_CACHE_CONTROL = "no-store"


def window_status(valid_since: datetime | None, valid_until: datetime | None, now: datetime):
    """``scheduled``, ``expired`` or None (within the window) at ``now``."""
    if valid_since is not None and now < valid_since:
        return SCHEDULED
    if valid_until is not None and now >= valid_until:
        return EXPIRED
    return None


def status_of(link, now: datetime) -> str:
    """The status of a LinkRecord (or anything with its lifetime fields) at ``now``."""
    window = window_status(link.valid_since, link.valid_until, now)
    if window is not None:
        return window
    if link.max_visits is not None and link.cap_used >= link.max_visits:
        return EXHAUSTED
    return ACTIVE


def check_window(valid_since: datetime | None, valid_until: datetime | None) -> None:
    """422 naming ``valid_until`` unless it is after ``valid_since`` (both as the link will
    be stored: a PATCH of one is checked against the other's stored value)."""
    if valid_since is not None and valid_until is not None and valid_until <= valid_since:
        raise InvalidInput(
            "The link has invalid fields.",
            errors={"valid_until": ["Must be after valid_since."]},
        )


def parse_age(text: str) -> tuple[int, str]:
    """``30d``, ``12h`` or ``2w`` as (number, unit); ValueError with a readable message."""
    units = {"d": "days", "h": "hours", "w": "weeks"}
    text = text.strip()
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not (number.isascii() and number.isdigit()) or len(number) > 6:
        raise ValueError(
            f"'{text}' is not an age: write a whole number followed by d (days), h (hours) "
            "or w (weeks), such as 30d."
        )
    return int(number), units[unit]
