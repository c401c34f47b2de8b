"""Storage: the only layer that knows SQL and the database dialect."""

from .engine import Database, savepoint
from .errors import DatabaseUnavailable, DuplicateKey

__all__ = ["Database", "DatabaseUnavailable", "DuplicateKey", "savepoint"]
