"""What POST /api/v1.0/links takes, and each item of POST /api/v1.0/links/batch: a link
(LinkSchema's fields and rules), and whether an existing one will do (README "Deduplication")."""

from __future__ import annotations

from .fields import StrictBoolean
from .links import LinkSchema


class NewLinkSchema(LinkSchema):
    find_if_exists = StrictBoolean(
        load_only=True,
        load_default=False,
        metadata={
            "description": "Answer 200 with your oldest link that has the same target (as "
            "normalised) and the same options (every other field you may send equal, the "
            "slug too when you give one, tags in any order and case, the same password or "
            "none) instead of creating another; else create (201)."
        },
    )
