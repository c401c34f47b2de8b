"""Storage-level failures, translated from the driver so no layer above imports SQLAlchemy."""


class DuplicateKey(Exception):
    """A unique constraint refused a write (a slug or username already taken)."""


class DatabaseUnavailable(Exception):
    """The database could not be reached or stayed locked past the busy timeout."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        from ..metrics import DATABASE_ERRORS  # here: metrics imports the layers above

        DATABASE_ERRORS.inc()
