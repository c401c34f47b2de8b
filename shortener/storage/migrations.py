"""Runs the Alembic migrations packaged in ``shortener/migrations``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .engine import Database


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "shortener:migrations")
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Creates or migrates the schema; running it again is a no-op."""
    config = _config()
    with database.maintenance() as connection:  # no statement timeout: may take long
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def is_current(database: Database) -> bool:
    """Whether the schema is at the newest revision."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
