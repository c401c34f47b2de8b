"""Services: plain Python shared by the HTTP API and the command line."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage import Database
from .idempotency import IdempotencyService
from .links import LinkService
from .passwords import PasswordHasher
from .stats import VisitService
from .tokens import TokenService
from .users import UserService
from .visits import VisitRecorder


@dataclass(frozen=True)
class Services:
    database: Database
    links: LinkService
    users: UserService
    tokens: TokenService
    visits: VisitService
    recorder: VisitRecorder
    idempotency: IdempotencyService

    def close(self) -> None:
        """Writes buffered visits, then releases database connections."""
        self.recorder.close()
        self.database.dispose()


def build_services(
    database: Database,
    *,
    slug_length: int,
    max_target_length: int,
    reserved_slugs: frozenset[str],
    password_hash_method: str,
    anonymize_ips: bool,
    visit_flush_interval: float,
) -> Services:
    return Services(
        database=database,
        links=LinkService(
            database,
            slug_length=slug_length,
            max_target_length=max_target_length,
            reserved_slugs=reserved_slugs,
        ),
        users=UserService(database, hasher=PasswordHasher(password_hash_method)),
        tokens=TokenService(database),
        visits=VisitService(database),
        recorder=VisitRecorder(
            database, anonymize_ips=anonymize_ips, flush_interval=visit_flush_interval
        ),
        idempotency=IdempotencyService(database),
    )
