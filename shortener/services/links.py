"""Creating, reading, changing, deleting and following short links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

from ..storage import Database, DuplicateKey, user_queries
from ..storage import link_queries as queries
from ..storage.records import LinkRecord, Redirect, UserRecord
from .actors import can_see_owner, utcnow
from .errors import NotFound, SlugSpaceExhausted, SlugTaken
from .link_cache import LinkCache, LinkChanges
from .pagination import Page, decode_cursor, paginate
from .preconditions import NO_PRECONDITION, Precondition, entity_tag
from .slugs import generate_slug, is_well_formed

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
DEFAULT_REDIRECT_STATUS = 302
TITLE_MAX_LENGTH = 255
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
    return _visible(link, actor, slug)


def _visible(link: LinkRecord | None, actor: UserRecord, slug: str) -> LinkRecord:
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
        changes: LinkChanges,
        cache_size: int = 0,
    ) -> None:
        self.database = database
        self.slug_length = slug_length
        self.max_target_length = max_target_length
        self.reserved_slugs = frozenset(slug.lower() for slug in reserved_slugs)
        self.changes = changes
        resolver = queries.Resolver(database)
        self._by_slug = queries.LinkBySlug(database)
        self.cache = LinkCache(resolver, changes, size=cache_size) if cache_size else None
        self._lookup = self.cache.get if self.cache is not None else resolver

    # -- the hot path -------------------------------------------------------------------
    def resolve(self, slug: str) -> Redirect | None:
        """Where a slug points: the worker's link cache, else one indexed read. Visits are
        recorded by the recorder."""
        if not is_well_formed(slug):
            return None
        return self._lookup(slug)

    def close(self) -> None:
        self.changes.close()

    # -- the API --------------------------------------------------------------------------
    def get(self, actor: UserRecord, slug: str) -> LinkRecord:
        link = self._by_slug(slug) if is_well_formed(slug) else None
        return _visible(link, actor, slug)

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
    ) -> LinkRecord:
        """A new link at ``slug``, or at a generated slug. Fields come checked by the schema."""
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
        self,
        actor: UserRecord,
        slug: str,
        fields: LinkFields,
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> tuple[LinkRecord, bool]:
        """PUT: replace every client-owned field, or create the link if the slug is free."""
        for _ in range(2):  # a concurrent PUT may create the slug between our read and insert
            with self.changes.writing() as connection:
                link = queries.find_by_slug(connection, slug)
                if link is not None:
                    if not can_see_owner(actor, link.owner_id):
                        raise self._taken(slug)
                    guarded = precondition.check(entity_tag(link), f"The link '{slug}'")
                    changed = queries.update_link(
                        connection,
                        link.id,
                        {
                            "target": fields.target,
                            "title": fields.title,
                            "redirect_status": fields.redirect_status,
                            "updated_at": utcnow(),
                        },
                        expected_version=link.version if guarded else None,
                    )
                    if changed:
                        return queries.find_by_slug(connection, slug), False
                    if guarded:
                        raise precondition.failed(f"The link '{slug}'")
                    continue  # deleted meanwhile: create it
                precondition.check(None, f"The link '{slug}'")
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
        precondition: Precondition = NO_PRECONDITION,
    ) -> LinkRecord:
        """PATCH: change only the client-owned fields given; a ``None`` title clears it."""
        unknown = set(changes) - set(LinkFields.__slots__)
        if unknown:  # a programming error: the schema lets only these through
            raise ValueError(f"not client-owned fields: {sorted(unknown)}")
        with self.changes.writing() as connection:
            link = visible_link(connection, actor, slug)
            guarded = precondition.check(entity_tag(link), f"The link '{slug}'")
            if changes:
                if not queries.update_link(
                    connection,
                    link.id,
                    {**changes, "updated_at": utcnow()},
                    expected_version=link.version if guarded else None,
                ):
                    raise self._changed_meanwhile(precondition, guarded, slug)
                link = queries.find_by_slug(connection, slug)
            return link

    def delete(
        self, actor: UserRecord, slug: str, *, precondition: Precondition = NO_PRECONDITION
    ) -> None:
        with self.changes.writing() as connection:
            link = visible_link(connection, actor, slug)
            guarded = precondition.check(entity_tag(link), f"The link '{slug}'")
            if not queries.delete_link(
                connection, link.id, expected_version=link.version if guarded else None
            ):
                raise self._changed_meanwhile(precondition, guarded, slug)

    def _insert(self, actor: UserRecord, slug: str, fields: LinkFields) -> LinkRecord:
        with self.changes.writing() as connection:
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
    def _changed_meanwhile(precondition: Precondition, guarded: bool, slug: str) -> Exception:
        """A guarded write that matched no row lost to a concurrent change (412); an unguarded
        one found the link deleted meanwhile (404)."""
        if guarded:
            return precondition.failed(f"The link '{slug}'")
        return NotFound(f"There is no link '{slug}'.")

    @staticmethod
    def _taken(slug: str) -> SlugTaken:
        return SlugTaken(f"The slug '{slug}' is already taken; choose another.")
