"""A package, so pytest imports tests/integration/conftest.py as ``integration.conftest`` and
``from conftest import ...`` in tests/ keeps meaning tests/conftest.py."""
