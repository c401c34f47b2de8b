"""Creating, reading, changing, deleting and following short links."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

from ..storage import Database, DuplicateKey, user_queries
from ..storage import link_queries as queries
from ..storage.records import LinkRecord, Redirect, UserRecord
from .actors import can_see_owner, utcnow
from .errors import InvalidInput, NotFound, SlugSpaceExhausted, SlugTaken
from .pagination import Page, decode_cursor, paginate
from .slugs import generate_slug, is_well_formed, slug_problems
from .targets import TargetRejected, normalize_target

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
DEFAULT_REDIRECT_STATUS = 302
TITLE_MAX_LENGTH = 255
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
GENERATED_SLUG_ATTEMPTS = 16


@dataclass(frozen=True, slots=True)
class LinkFields:
    """The fields a client owns; the server owns everything else."""

    target: str
    title: str | None = None
    redirect_status: int = DEFAULT_REDIRECT_STATUS


def visible_link(connection: Connection, actor: UserRecord, slug: str) -> LinkRecord:
    """The link, if the actor may see it: another user's link is reported as missing, never
    as forbidden, so slugs of other users cannot be probed through the API."""
    link = queries.find_by_slug(connection, slug) if is_well_formed(slug) else None
    if link is None or not can_see_owner(actor, link.owner_id):
        raise NotFound(f"There is no link '{slug}'.")
    return link


class LinkService:
    def __init__(
        self,
        database: Database,
        *,
        slug_length: int,
        max_target_length: int,
        reserved_slugs: Iterable[str],
    ) -> None:
        self.database = database
        self.slug_length = slug_length
        self.max_target_length = max_target_length
        self.reserved_slugs = frozenset(slug.lower() for slug in reserved_slugs)
        self._resolve = queries.Resolver(database)

    # -- the hot path -------------------------------------------------------------------
    def resolve(self, slug: str) -> Redirect | None:
        """Where a slug points: one indexed read. Visits are recorded by the VisitRecorder."""
        if not is_well_formed(slug):
            return None
        return self._resolve(slug)

    # -- the API --------------------------------------------------------------------------
    def get(self, actor: UserRecord, slug: str) -> LinkRecord:
        with self.database.read() as connection:
            return visible_link(connection, actor, slug)

    def list(
        self, actor: UserRecord, *, owner: str | None, cursor: str | None, limit: int
    ) -> Page[LinkRecord]:
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            owner_id: int | None = None if actor.is_admin else actor.id
            if owner is not None:
                owner_record = user_queries.find_by_name(connection, owner)
                if owner_record is None or not can_see_owner(actor, owner_record.id):
                    return Page([], None)
                owner_id = owner_record.id
            rows = queries.page(connection, owner_id=owner_id, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda link: link.id)

    def create(
        self,
        actor: UserRecord,
        fields: LinkFields,
        *,
        slug: str | None = None,
        own_hosts: Iterable[str] = (),
    ) -> LinkRecord:
        fields = self._validated(fields, own_hosts, slug=slug)
        if slug is not None:
            try:
                return self._insert(actor, slug, fields)
            except DuplicateKey:
                raise self._taken(slug) from None
        for _ in range(GENERATED_SLUG_ATTEMPTS):
            candidate = generate_slug(self.slug_length)
            if candidate.lower() in self.reserved_slugs:
                continue
            try:
                return self._insert(actor, candidate, fields)
            except DuplicateKey:
                continue
        raise SlugSpaceExhausted(
            f"No free slug of length {self.slug_length} was found; choose a slug, "
            "or ask the operator to raise SHORTENER_SLUG_LENGTH."
        )

    def replace(
        self, actor: UserRecord, slug: str, fields: LinkFields, *, own_hosts: Iterable[str] = ()
    ) -> tuple[LinkRecord, bool]:
        """PUT: replace every client-owned field, or create the link if the slug is free."""
        fields = self._validated(fields, own_hosts, slug=slug)
        for _ in range(2):  # a concurrent PUT may create the slug between our read and insert
            with self.database.write() as connection:
                link = queries.find_by_slug(connection, slug)
                if link is not None:
                    if not can_see_owner(actor, link.owner_id):
                        raise self._taken(slug)
                    queries.update_link(
                        connection,
                        link.id,
                        {
                            "target": fields.target,
                            "title": fields.title,
                            "redirect_status": fields.redirect_status,
                            "updated_at": utcnow(),
                        },
                    )
                    return queries.find_by_slug(connection, slug), False
            try:
                return self._insert(actor, slug, fields), True
            except DuplicateKey:
                continue
        raise self._taken(slug)

    def update(
        self,
        actor: UserRecord,
        slug: str,
        changes: dict[str, object],
        *,
        own_hosts: Iterable[str] = (),
    ) -> LinkRecord:
        """PATCH: change only the fields given; a ``None`` title clears it."""
        unknown = set(changes) - {"target", "title", "redirect_status"}
        if unknown:
            raise InvalidInput(
                "Only target, title and redirect_status can be changed.",
                errors={name: ["Cannot be changed."] for name in sorted(unknown)},
            )
        with self.database.write() as connection:
            link = visible_link(connection, actor, slug)
            if changes:
                merged = LinkFields(
                    target=changes.get("target", link.target),  # type: ignore[arg-type]
                    title=changes.get("title", link.title),  # type: ignore[arg-type]
                    redirect_status=changes.get(  # type: ignore[arg-type]
                        "redirect_status", link.redirect_status
                    ),
                )
                merged = self._validated(merged, own_hosts, only=set(changes))
                values = {name: getattr(merged, name) for name in changes}
                queries.update_link(connection, link.id, {**values, "updated_at": utcnow()})
                link = queries.find_by_slug(connection, slug)
            return link

    def delete(self, actor: UserRecord, slug: str) -> None:
        with self.database.write() as connection:
            link = visible_link(connection, actor, slug)
            queries.delete_link(connection, link.id)

    # -- rules ----------------------------------------------------------------------------
    def _validated(
        self,
        fields: LinkFields,
        own_hosts: Iterable[str],
        *,
        slug: str | None = None,
        only: set[str] | None = None,
    ) -> LinkFields:
        """Checks every rule at once so a client sees all its mistakes in one answer."""
        errors: dict[str, list[str]] = {}
        target = fields.target
        if only is None or "target" in only:
            try:
                target = normalize_target(
                    fields.target, max_length=self.max_target_length, own_hosts=own_hosts
                )
            except TargetRejected as rejected:
                errors["target"] = [str(rejected)]
        if fields.title is not None and len(fields.title) > TITLE_MAX_LENGTH:
            errors["title"] = [f"Must be at most {TITLE_MAX_LENGTH} characters long."]
        elif fields.title is not None and _CONTROL_CHARACTER.search(fields.title):
            # PostgreSQL cannot store NUL; no control character belongs in a one-line label.
            errors["title"] = ["Must not contain control characters."]
        if fields.redirect_status not in REDIRECT_STATUSES:
            errors["redirect_status"] = [
                "Must be one of " + ", ".join(map(str, REDIRECT_STATUSES)) + "."
            ]
        if slug is not None and (problems := slug_problems(slug, self.reserved_slugs)):
            errors["slug"] = problems
        if errors:
            raise InvalidInput("The link has invalid fields.", errors=errors)
        return LinkFields(target, fields.title, fields.redirect_status)

    def _insert(self, actor: UserRecord, slug: str, fields: LinkFields) -> LinkRecord:
        with self.database.write() as connection:
            queries.insert_link(
                connection,
                slug=slug,
                target=fields.target,
                title=fields.title,
                redirect_status=fields.redirect_status,
                owner_id=actor.id,
                now=utcnow(),
            )
            return queries.find_by_slug(connection, slug)

    @staticmethod
    def _taken(slug: str) -> SlugTaken:
        return SlugTaken(f"The slug '{slug}' is already taken; choose another.")
