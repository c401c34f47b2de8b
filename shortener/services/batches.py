"""Batches of link writes: up to ``MAX_BATCH_ITEMS`` creations, changes or deletions in one
request, each through the same LinkService code as a single one (validation, link events for
history and webhooks, the link cache's invalidation), all in one write transaction.

- Each item runs in a savepoint: a failing item undoes only its own writes and the others go
  on; its result carries the problem a single request would have answered.
- ``atomic``: all or nothing. Any failing item rolls the whole transaction back and the batch
  is refused (``BatchInvalid`` 422 when an item is invalid, else ``BatchFailed`` 409) with
  every failing item's problem.
- ``dry_run`` (changes and deletions): every item is applied as it would be, then the
  transaction is rolled back; the results say what would have happened.
- One transaction, one commit, one bump of the link caches' counter per batch: a thousand
  links cost a thousand INSERTs and their savepoints, not a thousand commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection

from ..storage import DuplicateKey, savepoint
from ..storage.link_filters import LinkFilter
from ..storage.records import LinkRecord, UserRecord
from .errors import BatchFailed, BatchInvalid, BatchRefused, InvalidInput, ShortenerError
from .links import LinkFields, LinkService

MAX_BATCH_ITEMS = 1000
# Distinct link passwords in one batch: each is hashed with the password hash method (scrypt:
# ~150 ms), so 1,000 of them would hold a worker for minutes. The same password is hashed once.
MAX_BATCH_PASSWORDS = 20


@dataclass(frozen=True, slots=True)
class NewLink:
    """One item of a batch creation, as the schema loaded it."""

    fields: LinkFields
    slug: str | None = None
    find_if_exists: bool = False


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What became of one item: ``status`` is what a single request would have answered
    (201 created, 200 found or changed, 204 deleted, or the problem's)."""

    index: int
    status: int
    link: LinkRecord | None = None  # created, found, changed; deleted: as it was
    before: LinkRecord | None = None  # changed: the link before
    problem: ShortenerError | None = None
    slug: str | None = None  # changes and deletions: the selected slug


class _RollBack(Exception):
    """Ends a batch's transaction without committing it (atomic failure, dry run)."""


def _failed(index: int, error: ShortenerError, slug: str | None = None) -> ItemResult:
    return ItemResult(index, error.status, problem=error, slug=slug)


class BatchService:
    def __init__(self, links: LinkService) -> None:
        self.links = links

    def create(
        self,
        actor: UserRecord,
        items: Sequence[NewLink | ShortenerError],
        *,
        atomic: bool = False,
    ) -> list[ItemResult]:
        """POST /links/batch: each item a new link (or, with ``find_if_exists``, an existing
        one); an item given as an error (the schema refused it) fails as it is."""
        results: list[ItemResult | None] = [None] * len(items)
        prepared: dict[int, LinkFields] = {}
        hashes: dict[str, str] = {}
        for index, item in enumerate(items):
            if isinstance(item, ShortenerError):
                results[index] = _failed(index, item)
                continue
            password = item.fields.password
            if isinstance(password, str) and password not in hashes:
                if len(hashes) >= MAX_BATCH_PASSWORDS:
                    results[index] = _failed(index, _too_many_passwords())
                    continue
            try:  # checks across fields, and hashing, outside the transaction
                prepared[index] = self.links.prepare(item.fields, hashes)
            except ShortenerError as error:
                results[index] = _failed(index, error)

        new_links = {index: item for index, item in enumerate(items) if index in prepared}

        def apply(connection: Connection, index: int, savepoints: bool) -> ItemResult:
            item = new_links[index]
            if item.find_if_exists:
                link, created = self.links.find_or_create_on(
                    connection,
                    actor,
                    item.fields,
                    prepared[index],
                    slug=item.slug,
                    savepoints=savepoints,
                )
            else:
                link = self.links.create_on(
                    connection, actor, prepared[index], slug=item.slug, savepoints=savepoints
                )
                created = True
            return ItemResult(index, 201 if created else 200, link=link)

        def lock_targets(connection: Connection) -> None:
            """The targets of the find_if_exists items, locked up front in one order."""
            targets = [item.fields.target for item in new_links.values() if item.find_if_exists]
            self.links.lock_targets(connection, actor, targets)

        def taken_slugs(connection: Connection) -> None:
            """Slugs a link has, or an earlier item of the batch: those items fail untried."""
            lock_targets(connection)
            given = {
                index: item.slug
                for index, item in new_links.items()
                if item.slug is not None and not item.find_if_exists
            }
            seen = self.links.taken_slugs(connection, list(given.values()))
            for index, slug in given.items():
                if slug in seen:
                    results[index] = _failed(index, self.links.slug_taken(slug))
                seen.add(slug)

        # First without savepoints (a round trip each, the links' INSERT alone); if an item
        # fails all the same (a slug taken meanwhile, a subscriber's refusal), everything is
        # rolled back and done again, each item in savepoints (create_on's, around all of an
        # item's writes), where it fails alone.
        untried = list(results)
        try:
            return self._run(
                self.links.database.write,
                results,
                list(prepared),
                lambda connection, index: apply(connection, index, False),
                atomic=atomic,
                savepoints=False,
                first=taken_slugs,
            )
        except BatchRefused:
            raise  # atomic, and an item failed before it was tried
        except (ShortenerError, DuplicateKey):
            results[:] = untried
        return self._run(
            self.links.database.write,
            results,
            list(prepared),
            lambda connection, index: apply(connection, index, True),
            atomic=atomic,
            savepoints=False,  # create_on's own
            isolated=True,
            first=lock_targets,
        )

    def update(
        self,
        actor: UserRecord,
        slugs: Sequence[str],
        changes: dict[str, object],
        *,
        atomic: bool = False,
        dry_run: bool = False,
    ) -> list[ItemResult]:
        """PATCH /links/batch: the same changes to each selected link, as PATCH /links/<slug>
        makes them (a change that is invalid for one link fails that link only)."""
        columns = self.links.prepare_changes(changes)

        def apply(connection: Connection, index: int) -> ItemResult:
            before, after = self.links.update_on(connection, actor, slugs[index], columns)
            return ItemResult(index, 200, link=after, before=before, slug=slugs[index])

        return self._run(
            self.links.changes.writing,
            [None] * len(slugs),
            range(len(slugs)),
            apply,
            atomic=atomic,
            dry_run=dry_run,
            slugs=slugs,
        )

    def delete(
        self,
        actor: UserRecord,
        slugs: Sequence[str],
        *,
        atomic: bool = False,
        dry_run: bool = False,
    ) -> list[ItemResult]:
        """DELETE /links/batch: each selected link deleted, as DELETE /links/<slug> does."""

        def apply(connection: Connection, index: int) -> ItemResult:
            link = self.links.delete_on(connection, actor, slugs[index])
            return ItemResult(index, 204, link=link, slug=slugs[index])

        return self._run(
            self.links.changes.writing,
            [None] * len(slugs),
            range(len(slugs)),
            apply,
            atomic=atomic,
            dry_run=dry_run,
            slugs=slugs,
        )

    def select(self, actor: UserRecord, link_filter: LinkFilter) -> list[str]:
        """The slugs of the links the collection (GET /links) shows ``actor`` with this
        filter, newest first; more than MAX_BATCH_ITEMS is refused, never cut."""
        page = self.links.list(actor, link_filter, cursor=None, limit=MAX_BATCH_ITEMS)
        if page.next_cursor is not None:
            raise InvalidInput(
                f"The filter selects more than {MAX_BATCH_ITEMS:,} links; narrow it, or "
                "apply the batch to one page of the collection at a time.",
                errors={"filter": [f"Selects more than {MAX_BATCH_ITEMS:,} links."]},
            )
        return [link.slug for link in page.items]

    def _run(
        self,
        writing: Callable[[], AbstractContextManager[Connection]],
        results: list[ItemResult | None],
        indexes: Sequence[int] | range,
        apply: Callable[[Connection, int], ItemResult],
        *,
        atomic: bool,
        dry_run: bool = False,
        slugs: Sequence[str] | None = None,
        savepoints: bool = True,
        isolated: bool = False,
        first: Callable[[Connection], None] | None = None,
    ) -> list[ItemResult]:
        """Applies the items at ``indexes`` in one transaction, each in a savepoint (unless
        ``apply`` makes its own: ``isolated``), where a failing item fails alone; without
        either, an item's failure is raised and undoes the whole transaction. The others
        already hold their failures (``first`` may add some, in the transaction). The items'
        link events (history, webhooks) are published together at the end, in the same
        transaction."""
        events = self.links.events

        def failures() -> Iterator[ItemResult]:
            return (result for result in results if result is not None and result.problem)

        if atomic and any(failures()):
            raise _refused(results)
        try:
            with writing() as connection, events.gathered(connection) as gathered:
                if first is not None:
                    first(connection)
                for index in indexes:
                    if results[index] is not None:
                        continue  # failed already
                    published = len(gathered)
                    try:
                        if savepoints:
                            with savepoint(connection):
                                results[index] = apply(connection, index)
                        else:
                            results[index] = apply(connection, index)
                    except ShortenerError as error:
                        if not (savepoints or isolated):
                            raise  # the transaction is not to be trusted: undo it all
                        del gathered[published:]  # the item's writes were rolled back
                        slug = slugs[index] if slugs is not None else None
                        results[index] = _failed(index, error, slug)
                if dry_run or (atomic and any(failures())):
                    raise _RollBack()
        except _RollBack:
            pass
        if atomic and any(failures()):
            raise _refused(results)
        return [result for result in results if result is not None]


def _too_many_passwords() -> InvalidInput:
    message = (
        f"At most {MAX_BATCH_PASSWORDS} different passwords in one batch (each takes a "
        "deliberately slow hash); send the others in another batch."
    )
    return InvalidInput(message, errors={"password": [message]})


def _refused(results: Sequence[ItemResult | None]) -> BatchInvalid | BatchFailed:
    """The refusal of an atomic batch (422 when an item is invalid, else 409); its
    ``results`` are the failing items, which the HTTP layer renders into the problem."""
    failed = [result for result in results if result is not None and result.problem]
    invalid = any(result.status == 422 for result in failed)
    refusal = (BatchInvalid if invalid else BatchFailed)(
        f"{len(failed)} of {len(results)} items failed; nothing was stored "
        '("atomic": true). Each failing item\'s problem is in "results".'
    )
    refusal.results = list(failed)
    return refusal
