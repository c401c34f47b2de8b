"""Creating, reading, changing, deleting and following short links."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from ..storage import Database, DuplicateKey, savepoint
from ..storage import link_queries as queries
from ..storage.link_filters import DEFAULT_SORT, NO_FILTER, LinkFilter
from ..storage.records import LinkRecord, Redirect, UserRecord
from .actors import OPERATOR, can_see_owner, utcnow
from .errors import LinkGone, NotFound, SlugSpaceExhausted, SlugTaken
from .forwarding import UTM_FIELDS, clean_query, forward, with_utm
from .lifetime import (
    EXHAUSTED,
    EXPIRED,
    EXPIRED_TARGET_STATUS,
    LIMITED_CACHE_CONTROL,
    SCHEDULED,
    check_window,
    status_of,
    window_status,
)
from .link_cache import LinkCache, LinkChanges
from .link_events import LinkEvents, created, current_acting, deleted, updated
from .link_finding import find_page
from .pagination import Page
from .passwords import CredentialCache, PasswordHasher
from .preconditions import NO_PRECONDITION, Precondition, entity_tag
from .rules import Decision, Routing, Visitor, compile_stored, decide, dump_json
from .slugs import generate_slug, is_well_formed
from .tags import set_tags_on, tag_key

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
DEFAULT_REDIRECT_STATUS = 302
TITLE_MAX_LENGTH = 255
GENERATED_SLUG_ATTEMPTS = 16


class _Keep:
    """A PUT without ``password``: the stored one stays (it is write-only, so a client that
    read the link and sends it back could not repeat it)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


@dataclass(frozen=True, slots=True)
class LinkFields:
    """The fields a client owns; the server owns everything else."""

    target: str
    title: str | None = None
    redirect_status: int = DEFAULT_REDIRECT_STATUS
    # Lifetime and visit cap (services/lifetime.py)
    valid_since: datetime | None = None
    valid_until: datetime | None = None
    max_visits: int | None = None
    expired_target: str | None = None
    crawlable: bool = False
    # Query forwarding and UTM fields (services/forwarding.py)
    forward_query: bool = False
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    # The password to set (hashed before it is stored), None for none, KEEP for the stored one.
    password: str | None | _Keep = None
    # Redirect rules and A/B variants (services/rules.py): lists as the schema checked them.
    rules: list[dict] | None = None
    variants: list[dict] | None = None
    # Tags (services/tags.py): names as the schema checked them, in order.
    tags: Sequence[str] = ()


# What a link event (history, webhooks) shows of a link: its slug and every client-owned
# field, a password only as has_password (services/link_events.py).
EVENT_FIELDS = (
    "slug",
    *(name for name in LinkFields.__slots__ if name != "password"),
    "has_password",
)


@dataclass(frozen=True, slots=True)
class Imported:
    """What an imported link keeps from where it came from (services/importing.py): when it
    was created there, and how many visits were counted there (shown in its visit_count)."""

    created_at: datetime | None = None
    visits: int = 0


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
        clock: Callable[[], datetime] = utcnow,
        hasher: PasswordHasher | None = None,
        country_of: Callable[[str | None], str | None] | None = None,
        events: LinkEvents | None = None,
    ) -> None:
        self.database = database
        # Every change is published to these inside its transaction (history, webhooks).
        self.events = events if events is not None else LinkEvents()
        # Address -> ISO country (services/geoip.py); None without SHORTENER_GEOIP_DB.
        self.country_of = country_of
        self.clock = clock  # a link's status depends on it; tests move time forward
        self.slug_length = slug_length
        self.max_target_length = max_target_length
        self.reserved_slugs = frozenset(slug.lower() for slug in reserved_slugs)
        self.changes = changes
        self.hasher = hasher or PasswordHasher("scrypt")
        # Passwords of links verified lately, by link id (as API credentials are cached).
        self.passwords = CredentialCache()
        resolver = queries.Resolver(database, with_utm, routing=compile_stored)
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

    # -- rules and A/B splits (services/rules.py) ------------------------------------------
    def route(self, found: Redirect, visitor: Visitor, cookie: str | None) -> Decision:
        """Where a link with rules or variants sends this visitor, and why."""
        routing: Routing = found.routing  # type: ignore[assignment]
        return decide(routing, found.target, visitor, cookie)

    def set_rules(
        self,
        actor: UserRecord,
        slug: str,
        rules: list[dict],
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> LinkRecord:
        """PUT /links/<slug>/rules: the whole list replaced; the link's other fields stay."""
        return self.update(actor, slug, {"rules": rules}, precondition=precondition)

    # -- query forwarding and passwords (services/forwarding.py) -------------------------
    @staticmethod
    def destination(found: Redirect, target: str, query_string: bytes) -> str:
        """Where this request goes: ``target`` (the link's, with its UTM fields, or the one
        its rules chose), with the visitor's query merged in when the link forwards it."""
        if not (found.forward_query and query_string):
            return target
        return forward(target, clean_query(query_string))

    def unlocks(self, found: Redirect, password: str) -> bool:
        """Whether ``password`` is the link's. Verified passwords are remembered for a
        minute (keyed digests; a changed password stops matching at once), and one hash at
        a time is computed for a given password (single flight)."""
        stored_hash = found.password_hash
        if stored_hash is None:
            return True
        name = f"link:{found.link_id}"
        if self.passwords.hit(name, password, stored_hash):
            return True
        return self.passwords.verify_once(
            name, password, stored_hash, lambda: self.hasher.verify(stored_hash, password)
        )

    def crawlable_slugs(self) -> list[str]:
        """Slugs that crawlers may follow (GET /robots.txt), sorted; read on every request, so a
        change shows on the next one."""
        with self.database.read() as connection:
            return queries.crawlable_slugs(connection)

    def close(self) -> None:
        self.changes.close()

    # -- lifetime and visit caps (services/lifetime.py) -----------------------------------
    def admit(self, found: Redirect, slug: str, *, counts: bool) -> Redirect:
        """Where a link with a window or a cap sends this request now: its target, or its
        expired_target (302); raises NotFound before valid_since, LinkGone once it expired or
        is exhausted without an expired_target. ``counts``: a GET, which uses up the cap
        (a HEAD only asks whether one is left)."""
        state = window_status(found.valid_since, found.valid_until, self.clock())
        if state == SCHEDULED:
            raise NotFound(f"There is no short link '{slug}'.")
        if state is None and found.max_visits is not None:
            left = self.use_visit(found.link_id) if counts else self.has_visits_left(found.link_id)
            if not left:
                state = EXHAUSTED
        if state is None:
            return found
        if found.expired_target is not None:
            return replace(found, target=found.expired_target, status=EXPIRED_TARGET_STATUS)
        reason = "has expired" if state == EXPIRED else "has reached its visit limit"
        raise LinkGone(
            f"The short link '{slug}' {reason}.",
            headers={"Cache-Control": LIMITED_CACHE_CONTROL},  # it may come back (a PATCH)
        )

    def use_visit(self, link_id: int) -> bool:
        """A GET of a capped link: counts it against the cap; False if none was left."""
        with self.database.write() as connection:
            return queries.use_cap(connection, link_id, self.clock())

    def has_visits_left(self, link_id: int) -> bool:
        """A HEAD of a capped link: whether a GET would be let through (counts nothing)."""
        with self.database.read() as connection:
            return queries.has_cap_left(connection, link_id)

    def purge_expired(self, older_than: timedelta, *, dry_run: bool = False) -> list[LinkRecord]:
        """Links expired (valid_until) or exhausted (max_visits reached) more than
        ``older_than`` ago: deleted with their visits, unless ``dry_run``. Returns them."""
        cutoff = self.clock() - older_than
        if dry_run:
            with self.database.read() as connection:
                return [self._at_now(link) for link in queries.gone_before(connection, cutoff)]
        acting, now = current_acting(OPERATOR), utcnow()
        with self.changes.writing() as connection:
            gone = queries.gone_before(connection, cutoff)
            queries.delete_gone_before(connection, [link.id for link in gone], cutoff)
            self.events.publish(
                connection, [deleted(link, EVENT_FIELDS, acting, now) for link in gone]
            )
        return [self._at_now(link) for link in gone]

    def _at_now(self, link: LinkRecord) -> LinkRecord:
        """The link with its status at the service's clock (plain links are always active)."""
        if not link.limited:
            return link
        return replace(link, status=status_of(link, self.clock()))

    # -- the API --------------------------------------------------------------------------
    def get(self, actor: UserRecord, slug: str) -> LinkRecord:
        link = self._by_slug(slug) if is_well_formed(slug) else None
        return self._at_now(_visible(link, actor, slug))

    def list(
        self,
        actor: UserRecord,
        link_filter: LinkFilter = NO_FILTER,
        *,
        sort: str = DEFAULT_SORT,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[LinkRecord]:
        """GET /links: the links the actor may see matching ``link_filter``, in ``sort`` order
        (services/link_finding.py)."""
        with self.database.read() as connection:
            page = find_page(
                connection,
                actor,
                link_filter,
                sort=sort,
                cursor=cursor,
                limit=limit,
                now=self.clock(),
            )
        return Page([self._at_now(row) for row in page.items], page.next_cursor)

    def create(
        self,
        actor: UserRecord,
        fields: LinkFields,
        *,
        slug: str | None = None,
        imported: Imported | None = None,
    ) -> LinkRecord:
        """A new link at ``slug``, or at a generated slug. Fields come checked by the schema;
        ``imported``: an import's creation time and visits (services/importing.py)."""
        fields = self.prepare(fields)
        if slug is not None:
            try:
                return self._insert(actor, slug, fields, imported)
            except DuplicateKey:
                raise self.slug_taken(slug) from None
        for _ in range(GENERATED_SLUG_ATTEMPTS):
            candidate = generate_slug(self.slug_length)
            if candidate.lower() in self.reserved_slugs:
                continue
            try:
                return self._insert(actor, candidate, fields, imported)
            except DuplicateKey:
                continue
        raise self._exhausted()

    def prepare(self, fields: LinkFields, hashes: dict[str, str] | None = None) -> LinkFields:
        """The checks across fields, and the password hashed (~150 ms: outside any
        transaction), before ``create_on``. ``hashes``: passwords already hashed by this
        caller (a batch hashes each distinct password once), filled in as it goes."""
        check_window(fields.valid_since, fields.valid_until)
        if hashes is None or not isinstance(fields.password, str):
            return self._hashed(fields)
        if fields.password not in hashes:
            hashes[fields.password] = self.hasher.hash(fields.password)
        return replace(fields, password=_Hashed(hashes[fields.password]))

    def create_on(
        self,
        connection: Connection,
        actor: UserRecord,
        fields: LinkFields,
        *,
        slug: str | None = None,
        imported: Imported | None = None,
        savepoints: bool = True,
    ) -> LinkRecord:
        """``create`` inside the caller's write transaction (a batch, an import's chunk):
        ``fields`` come from ``prepare``; each attempt at a slug is a savepoint, so a taken
        slug undoes nothing else of the transaction. Without ``savepoints`` (a batch's first,
        optimistic pass: one round trip less each) a taken slug fails the whole transaction
        instead (DuplicateKey once the transaction is left)."""
        attempt = (lambda: savepoint(connection)) if savepoints else nullcontext
        if slug is not None:
            try:
                with attempt():
                    return self._insert_on(connection, actor, slug, fields, imported)
            except DuplicateKey:
                raise self.slug_taken(slug) from None
        for _ in range(GENERATED_SLUG_ATTEMPTS):
            candidate = generate_slug(self.slug_length)
            if candidate.lower() in self.reserved_slugs:
                continue
            try:
                with attempt():
                    return self._insert_on(connection, actor, candidate, fields, imported)
            except DuplicateKey:
                continue
        raise self._exhausted()

    @staticmethod
    def taken_slugs(connection: Connection, slugs: Sequence[str]) -> set[str]:
        """Those of ``slugs`` that a link already has (one query), for a batch to fail those
        items without trying them (``slug_taken``)."""
        return queries.taken_slugs(connection, slugs)

    def find_or_create(
        self, actor: UserRecord, fields: LinkFields, *, slug: str | None = None
    ) -> tuple[LinkRecord, bool]:
        """POST with ``find_if_exists``: the actor's oldest link with the same target and the
        same options (``same_options``), or a new one; True when created. Race-safe: see
        ``find_or_create_on``."""
        prepared = self.prepare(fields)
        with self.database.write() as connection:
            return self.find_or_create_on(connection, actor, fields, prepared, slug=slug)

    def find_or_create_on(
        self,
        connection: Connection,
        actor: UserRecord,
        fields: LinkFields,
        prepared: LinkFields,
        *,
        slug: str | None = None,
        savepoints: bool = True,
    ) -> tuple[LinkRecord, bool]:
        """``find_or_create`` in the caller's write transaction; ``prepared`` is
        ``prepare(fields)``. The owner's target is locked first (storage: SQLite's write
        transaction, a PostgreSQL advisory lock), so two concurrent calls never both create."""
        queries.lock_target(connection, actor.id, fields.target)
        for link in queries.same_target(connection, actor.id, fields.target):
            if (slug is None or link.slug == slug) and self.same_options(link, fields):
                return self._at_now(link), False
        return self.create_on(connection, actor, prepared, slug=slug, savepoints=savepoints), True

    @staticmethod
    def lock_targets(connection: Connection, actor: UserRecord, targets: Sequence[str]) -> None:
        """What ``find_or_create_on`` locks, for many targets at once and always in the same
        order: a batch takes them all first, so two batches never wait for each other in
        a circle."""
        queries.lock_targets(connection, actor.id, targets)

    def same_options(self, link: LinkRecord, fields: LinkFields) -> bool:
        """Whether ``link`` has every client-owned field of ``fields`` (the slug aside): equal
        values, rules and variants as stored, and the same password (none, or one that
        verifies against the link's hash)."""
        for name in LinkFields.__slots__:
            if name == "password":
                continue
            wanted, stored = getattr(fields, name), getattr(link, name, None)
            if name in ("rules", "variants"):
                wanted = dump_json(wanted)  # type: ignore[arg-type]
            elif name == "tags":  # a set of tags, compared case-insensitively
                wanted = {tag_key(tag) for tag in wanted or ()}  # type: ignore[union-attr]
                stored = {tag_key(tag) for tag in stored or ()}
            if _comparable(stored) != _comparable(wanted):
                return False
        password = None if fields.password is KEEP else fields.password
        if password is None or link.password_hash is None:
            return password is None and link.password_hash is None
        return self.hasher.verify(link.password_hash, password)  # type: ignore[arg-type]

    def _exhausted(self) -> SlugSpaceExhausted:
        return SlugSpaceExhausted(
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
        """PUT: replace every client-owned field, or create the link if the slug is free (but
        a password not sent stays: see KEEP)."""
        check_window(fields.valid_since, fields.valid_until)
        fields = self._hashed(fields)
        for _ in range(2):  # a concurrent PUT may create the slug between our read and insert
            with self.changes.writing() as connection:
                link = queries.find_by_slug(connection, slug)
                if link is not None:
                    if not can_see_owner(actor, link.owner_id):
                        raise self.slug_taken(slug)
                    guarded = precondition.check(entity_tag(link), f"The link '{slug}'")
                    changed = queries.update_link(
                        connection,
                        link.id,
                        {
                            "target": fields.target,
                            "title": fields.title,
                            "redirect_status": fields.redirect_status,
                            **self._lifetime(_lifetime_of(fields)),
                            "crawlable": fields.crawlable,
                            **_options_of(fields),
                            **_routing_of(fields),
                            "updated_at": utcnow(),
                        },
                        expected_version=link.version if guarded else None,
                    )
                    if changed:
                        set_tags_on(
                            connection,
                            link.id,
                            link.owner_id,
                            fields.tags,
                            utcnow(),
                            current=link.tags,
                        )
                        after = queries.find_by_slug(connection, slug)
                        self._published_update(connection, actor, link, after)
                        return self._at_now(after), False
                    if guarded:
                        raise precondition.failed(f"The link '{slug}'")
                    continue  # deleted meanwhile: create it
                precondition.check(None, f"The link '{slug}'")
            try:
                return self._insert(
                    actor,
                    slug,
                    replace(fields, password=None) if fields.password is KEEP else fields,
                ), True
            except DuplicateKey:
                continue
        raise self.slug_taken(slug)

    def update(
        self,
        actor: UserRecord,
        slug: str,
        changes: dict[str, object],
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> LinkRecord:
        """PATCH: change only the client-owned fields given; a ``None`` title clears it."""
        changes = self.prepare_changes(changes)
        with self.changes.writing() as connection:
            return self.update_on(connection, actor, slug, changes, precondition=precondition)[1]

    def prepare_changes(self, changes: dict[str, object]) -> dict[str, object]:
        """A PATCH's fields as columns, the password hashed (outside any transaction: it takes
        ~150 ms), before ``update_on``."""
        unknown = set(changes) - set(LinkFields.__slots__)
        if unknown:  # a programming error: the schema lets only these through
            raise ValueError(f"not client-owned fields: {sorted(unknown)}")
        if "password" in changes:  # hashed before the transaction: it takes ~150 ms
            changes = dict(changes)
            password = changes.pop("password")
            changes["password_hash"] = None if password is None else self.hasher.hash(password)
        return {  # rules and variants are stored as JSON text
            name: dump_json(value) if name in ("rules", "variants") else value
            for name, value in changes.items()
        }

    def update_on(
        self,
        connection: Connection,
        actor: UserRecord,
        slug: str,
        changes: dict[str, object],
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> tuple[LinkRecord, LinkRecord]:
        """``update`` inside the caller's ``changes.writing()`` transaction (a batch);
        ``changes`` come from ``prepare_changes``. Returns the link before and after."""
        link = before = visible_link(connection, actor, slug)
        guarded = precondition.check(entity_tag(link), f"The link '{slug}'")
        check_window(
            changes.get("valid_since", link.valid_since),
            changes.get("valid_until", link.valid_until),
        )
        if changes:
            columns = {name: value for name, value in changes.items() if name != "tags"}
            if not queries.update_link(
                connection,
                link.id,
                {**self._lifetime(columns), "updated_at": utcnow()},
                expected_version=link.version if guarded else None,
            ):
                raise self._changed_meanwhile(precondition, guarded, slug)
            if "tags" in changes:  # PATCH replaces the whole list
                set_tags_on(
                    connection,
                    link.id,
                    link.owner_id,
                    changes["tags"],
                    utcnow(),
                    current=link.tags,
                )
            link = queries.find_by_slug(connection, slug)
            self._published_update(connection, actor, before, link)
        return self._at_now(before), self._at_now(link)

    def delete(
        self, actor: UserRecord, slug: str, *, precondition: Precondition = NO_PRECONDITION
    ) -> None:
        with self.changes.writing() as connection:
            self.delete_on(connection, actor, slug, precondition=precondition)

    def delete_on(
        self,
        connection: Connection,
        actor: UserRecord,
        slug: str,
        *,
        precondition: Precondition = NO_PRECONDITION,
    ) -> LinkRecord:
        """``delete`` inside the caller's ``changes.writing()`` transaction (a batch);
        returns the link as it was."""
        link = visible_link(connection, actor, slug)
        guarded = precondition.check(entity_tag(link), f"The link '{slug}'")
        if not queries.delete_link(
            connection, link.id, expected_version=link.version if guarded else None
        ):
            raise self._changed_meanwhile(precondition, guarded, slug)
        self.events.publish(
            connection, [deleted(link, EVENT_FIELDS, current_acting(actor), utcnow())]
        )
        return self._at_now(link)

    def _insert(
        self,
        actor: UserRecord,
        slug: str,
        fields: LinkFields,
        imported: Imported | None = None,
    ) -> LinkRecord:
        # Not ``self.changes.writing()``: the link caches hold found links only, so a new slug
        # is in none of them and nothing needs forgetting (a slug deleted and made again was
        # forgotten by the delete). On PostgreSQL the change counter's row lock would also
        # serialise every create.
        with self.database.write() as connection:
            return self._insert_on(connection, actor, slug, fields, imported)

    def _insert_on(
        self,
        connection: Connection,
        actor: UserRecord,
        slug: str,
        fields: LinkFields,
        imported: Imported | None = None,
    ) -> LinkRecord:
        """The one INSERT of a new link, in the caller's transaction."""
        row = queries.insert_link(
            connection,
            slug=slug,
            target=fields.target,
            title=fields.title,
            redirect_status=fields.redirect_status,
            crawlable=fields.crawlable,
            owner_id=actor.id,
            now=utcnow(),
            lifetime=_lifetime_of(fields),
            options=_options_of(fields),
            routing=_routing_of(fields),
            imported_visits=imported.visits if imported else 0,
            created_at=imported.created_at if imported else None,
        )
        owner_has_webhooks = bool(row.pop("owner_has_webhooks"))
        link = LinkRecord(**row, owner_username=actor.username)
        if fields.tags:
            tags = set_tags_on(connection, link.id, actor.id, fields.tags, utcnow(), current=())
            link = replace(link, tags=tags)
        event = created(
            link, EVENT_FIELDS, current_acting(actor), owner_has_webhooks=owner_has_webhooks
        )
        self.events.publish(connection, [event])
        return self._at_now(link)

    def _published_update(
        self, connection: Connection, actor: UserRecord, before: LinkRecord, after: LinkRecord
    ) -> None:
        """Publishes the change from ``before`` to ``after`` (nothing if no field changed)."""
        event = updated(before, after, EVENT_FIELDS, current_acting(actor))
        if event is not None:
            self.events.publish(connection, [event])

    def _hashed(self, fields: LinkFields) -> LinkFields:
        """The fields with the password hashed (outside any transaction: it takes ~150 ms)."""
        if fields.password is None or fields.password is KEEP:
            return fields
        return replace(fields, password=_Hashed(self.hasher.hash(fields.password)))

    def _lifetime(self, changes: dict[str, object]) -> dict[str, object]:
        """``changes`` with what goes with a new ``max_visits`` (its exhausted_at)."""
        if "max_visits" not in changes:
            return changes
        return {**changes, **queries.cap_changes(changes["max_visits"], self.clock())}

    @staticmethod
    def _changed_meanwhile(precondition: Precondition, guarded: bool, slug: str) -> Exception:
        """A guarded write that matched no row lost to a concurrent change (412); an unguarded
        one found the link deleted meanwhile (404)."""
        if guarded:
            return precondition.failed(f"The link '{slug}'")
        return NotFound(f"There is no link '{slug}'.")

    @staticmethod
    def slug_taken(slug: str) -> SlugTaken:
        return SlugTaken(f"The slug '{slug}' is already taken; choose another.")


def _comparable(value: object) -> object:
    """A field's value for ``same_options``: sequences compared as lists."""
    if isinstance(value, tuple | list):
        return [_comparable(item) for item in value]
    return value


def _lifetime_of(fields: LinkFields) -> dict[str, object]:
    return {
        "valid_since": fields.valid_since,
        "valid_until": fields.valid_until,
        "max_visits": fields.max_visits,
        "expired_target": fields.expired_target,
    }


class _Hashed(str):
    """A password already hashed by ``LinkService._hashed``."""


def _options_of(fields: LinkFields) -> dict[str, object]:
    """Query forwarding, UTM fields and the password hash, as columns (KEEP: left out)."""
    options: dict[str, object] = {
        "forward_query": fields.forward_query,
        **{name: getattr(fields, name) for name in UTM_FIELDS},
    }
    if fields.password is not KEEP:
        if fields.password is not None and not isinstance(fields.password, _Hashed):
            raise ValueError("a link's password is hashed before it is stored")
        options["password_hash"] = fields.password
    return options


def _routing_of(fields: LinkFields) -> dict[str, object]:
    """Rules and variants as columns: JSON text, NULL for none."""
    return {"rules": dump_json(fields.rules), "variants": dump_json(fields.variants)}
