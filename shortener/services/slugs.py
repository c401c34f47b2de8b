"""Slug rules: what a slug may be, which are reserved, and how random ones are made."""

from __future__ import annotations

import re
import secrets
import string

SLUG_ALPHABET = string.ascii_letters + string.digits + "-_"
SLUG_MAX_LENGTH = 64
SLUG_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Paths the application serves or will serve at the top level; routes add theirs at start-up.
ALWAYS_RESERVED = frozenset({"api", "static", "health", "favicon.ico", "robots.txt", "problems"})


def is_well_formed(slug: str) -> bool:
    return SLUG_PATTERN.fullmatch(slug) is not None


def slug_problems(slug: str, reserved: frozenset[str]) -> list[str]:
    """Why ``slug`` cannot be used, or an empty list. Reserved words match case-insensitively."""
    if not is_well_formed(slug):
        return [
            f"Must be 1 to {SLUG_MAX_LENGTH} characters, each a letter A-Z or a-z, a digit, "
            "'-' or '_'."
        ]
    if slug.lower() in reserved:
        return [f"'{slug}' is reserved."]
    return []


def generate_slug(length: int) -> str:
    """An unguessable slug from the URL-safe alphabet."""
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(length))
