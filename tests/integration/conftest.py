"""The live server of the integration tests: the session's shared server on each backend
(tests/live.py), with an admin of the module's own."""

from __future__ import annotations

import dataclasses

import pytest
from live import LiveServer


@pytest.fixture(scope="module")
def live_server(shared_live_server) -> LiveServer:
    """The shared server, signed in as a fresh admin made for this module, so what the module
    creates is its own. Other modules' users and links are there too."""
    return dataclasses.replace(
        shared_live_server, admin=shared_live_server.create_user("admin", admin=True)
    )
