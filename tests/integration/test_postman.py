"""The Postman collection (postman/): current against the OpenAPI document, and its scenario
passing under newman against the session's live gunicorn, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from live import REPO_ROOT, LiveServer

pytestmark = pytest.mark.integration

POSTMAN = REPO_ROOT / "postman"
BUILD = POSTMAN / "build.py"
COLLECTION = POSTMAN / "shortener.postman_collection.json"
ENVIRONMENT = POSTMAN / "shortener.postman_environment.json"
NEWMAN = REPO_ROOT / "node_modules" / ".bin" / "newman"
SCENARIO = "Scenario"
COMMAND_SECONDS = 180


def scenario_requests() -> list[str]:
    """The names of the scenario's requests, in order, as the committed collection has them."""
    folders = json.loads(COLLECTION.read_text())["item"]
    (scenario,) = [folder for folder in folders if folder["name"] == SCENARIO]
    return [item["name"] for item in scenario["item"]]


@pytest.fixture(scope="module")
def newman() -> Path:
    """newman as `make test` installs it; missing is a failure unless npm itself is."""
    if NEWMAN.exists():
        return NEWMAN
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so newman cannot be (Debian: apt-get install npm)")
    pytest.fail(
        f"{NEWMAN.relative_to(REPO_ROOT)} is missing: run `make test`, which installs newman "
        "from npm at the version in package-lock.json",
        pytrace=False,
    )


def test_the_committed_collection_is_current():
    """The collection and environment equal what `make postman` makes from the document now."""
    completed = subprocess.run(
        [sys.executable, str(BUILD), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    if completed.returncode != 0:
        pytest.fail(
            "The Postman collection is stale against the OpenAPI document: run `make postman` "
            f"and commit postman/.\n{completed.stdout}{completed.stderr}",
            pytrace=False,
        )


def test_the_scenario_passes_under_newman(newman: Path, live_server: LiveServer, tmp_path):
    report_path = tmp_path / "newman.json"
    username, password = live_server.admin
    completed = subprocess.run(
        [
            str(newman),
            "run",
            str(COLLECTION),
            "--environment",
            str(ENVIRONMENT),
            "--folder",
            SCENARIO,
            "--env-var",
            f"baseUrl={live_server.url}",
            "--env-var",
            f"username={username}",
            "--env-var",
            f"password={password}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report_path),
            "--color",
            "off",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    output = f"{completed.stdout}\n{completed.stderr}"
    assert completed.returncode == 0, output

    run = json.loads(report_path.read_text())["run"]
    assert run["failures"] == [], output
    assert run.get("error") is None, output
    for counted in ("requests", "testScripts", "prerequestScripts", "assertions"):
        assert run["stats"][counted]["failed"] == 0, (counted, output)
    executions = run["executions"]
    assert [execution["item"]["name"] for execution in executions] == scenario_requests()
    for execution in executions:
        name = execution["item"]["name"]
        assert "requestError" not in execution, (name, execution.get("requestError"))
        assert "response" in execution, name
        assertions = execution.get("assertions", [])
        assert assertions, f"{name}: no assertion ran"
        failed = [check["assertion"] for check in assertions if check.get("error")]
        skipped = [check["assertion"] for check in assertions if check.get("skipped")]
        assert failed == [] and skipped == [], (name, failed, skipped, output)
