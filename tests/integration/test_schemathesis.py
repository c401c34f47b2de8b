"""schemathesis against a live gunicorn, on each backend, from the document the server serves:
its coverage, fuzzing and stateful phases (the stateful one follows the document's links from
createLink/createUser to get/update/replace/delete), every check, about two minutes per
backend. A 5xx, an undocumented status, a body or header that does not match the document,
schema-valid data refused or invalid data accepted: any failure fails the test, and the
assertion message is schemathesis' own report of each one, with a curl line to reproduce it.

The run acts as an admin (a token with every scope), so it creates, changes and deletes users
and links at will: it gets a server and database of its own rather than the session's shared
one, with the shared one's generous limits (its negative authentication cases alone answer
hundreds of 401s). Statuses a conforming request may still get because of the server's state
are listed, with their reasons, in schemathesis.toml next to this file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from live import SUITE_LIMITS, TIMEOUT, serving

from shortener.services.tokens import SCOPES

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("st")
DOCUMENT = "/api/v1.0/openapi.json"
# The whole budget of one backend's run: fuzzing and stateful testing repeat until it is
# spent. Enough for every phase to reach every operation on this 2-core machine.
MAX_SECONDS = 120
MAX_EXAMPLES = 40
# The run stops by itself after MAX_SECONDS; this is only a guard against a hang.
HANG_SECONDS = MAX_SECONDS + 120


@pytest.fixture(scope="module")
def server(live_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("schemathesis-server") / "server.log"
    with serving(live_database_url, log, SUITE_LIMITS) as live:
        yield live


def _admin_token(server) -> str:
    """A token with every scope: Bearer costs microseconds a request, scrypt Basic ~150 ms."""
    response = requests.post(
        server.url + "/api/v1.0/tokens",
        json={"name": "schemathesis", "scopes": list(SCOPES)},
        auth=server.admin,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def test_schemathesis_finds_no_failure(server, tmp_path):
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        server.url + DOCUMENT,
        "--header",
        f"Authorization: Bearer {_admin_token(server)}",
        "--phases",
        "coverage,fuzzing,stateful",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--request-timeout",
        str(TIMEOUT),
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        cwd=tmp_path,
    )
    report = completed.stdout + completed.stderr
    print(report)  # the summary (operations, test cases) shows with -s or on failure
    assert completed.returncode == 0, (
        f"schemathesis exited with {completed.returncode}:\n{report}\n"
        f"server log (tail):\n{server.log_tail()}"
    )
