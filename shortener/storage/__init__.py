"""Storage: the only layer that knows SQL and the database dialect."""

from .engine import Database
from .errors import DatabaseUnavailable, DuplicateKey

__all__ = ["Database", "DatabaseUnavailable", "DuplicateKey"]
