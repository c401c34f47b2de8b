"""The README's curl examples, run in order against a live server and checked against the
outputs the README shows. ``…`` in a shown output stands for anything."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from live import serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_server(live_database_url, tmp_path_factory):
    """A server of its own: the README's tour is a fresh install (the admin is `admin`, the users
    and slugs are the README's) on the default settings (its rate-limit example meets the
    shipped 60/minute)."""
    with serving(live_database_url, tmp_path_factory.mktemp("readme") / "server.log") as server:
        yield server


README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_BASE = "http://127.0.0.1:5000"
MARKER = "@@readme-block@@"
# A timestamp shown in the README stands for any timestamp of that exact form.
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_examples() -> list[tuple[str, str | None, str | None]]:
    """(shell code, kind of shown output or None, shown output or None), in README order."""
    blocks = [(match.group(1), match.group(2)) for match in FENCE.finditer(README.read_text())]
    examples = []
    for index, (language, code) in enumerate(blocks):
        if language != "sh":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if following and following[0] in ("json", "http", "text"):
            examples.append((code, following[0], following[1]))
        else:
            examples.append((code, None, None))
    return examples


def matches(shown, actual) -> bool:
    if isinstance(shown, dict):
        return (
            isinstance(actual, dict)
            and shown.keys() == actual.keys()
            and all(matches(shown[key], actual[key]) for key in shown)
        )
    if isinstance(shown, list):
        return (
            isinstance(actual, list)
            and len(shown) == len(actual)
            and all(matches(a, b) for a, b in zip(shown, actual, strict=True))
        )
    if isinstance(shown, str) and TIMESTAMP.fullmatch(shown):
        return isinstance(actual, str) and TIMESTAMP.fullmatch(actual) is not None
    if isinstance(shown, str) and "…" in shown:
        pattern = ".+".join(re.escape(part) for part in shown.split("…"))
        return isinstance(actual, str) and re.fullmatch(pattern, actual) is not None
    return shown == actual and type(shown) is type(actual)


def check_http(shown: str, actual: str) -> None:
    """Status line, every header shown, and the JSON body if one is shown."""
    shown_head, _, shown_body = shown.partition("\n\n")
    actual = actual.replace("\r\n", "\n")
    actual_head, _, actual_body = actual.partition("\n\n")
    shown_lines = shown_head.splitlines()
    actual_lines = actual_head.splitlines()
    assert actual_lines[0] == shown_lines[0]
    actual_headers = {}
    for line in actual_lines[1:]:
        name, _, value = line.partition(":")
        actual_headers[name.strip().lower()] = value.strip()
    for line in shown_lines[1:]:
        name, _, value = line.partition(":")
        assert name.strip().lower() in actual_headers, f"missing header {name}"
        assert matches(value.strip(), actual_headers[name.strip().lower()]), line
    if shown_body.strip():
        assert matches(json.loads(shown_body), json.loads(actual_body)), actual_body


def test_readme_examples_hold(live_server, tmp_path):
    examples = readme_examples()
    assert len(examples) >= 10, "the README's curl tour went missing"
    script = ["set -euo pipefail"]
    for index, (code, _, _) in enumerate(examples):
        script.append(f"echo '{MARKER} {index}'")
        script.append(code.replace(DOCUMENTED_BASE, live_server.url))
    path = tmp_path / "readme.sh"
    path.write_text("\n".join(script) + "\n")
    env = {**live_server.env, "ADMIN_PASSWORD": live_server.admin[1]}
    # The README's Python client runs with this interpreter (it has requests).
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    run = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    outputs = re.split(rf"^{MARKER} \d+\n", run.stdout, flags=re.MULTILINE)[1:]
    assert len(outputs) == len(examples)
    for (code, kind, shown), actual in zip(examples, outputs, strict=True):
        if kind is None:
            continue
        shown = shown.replace(DOCUMENTED_BASE, live_server.url)
        context = f"README example:\n{code}\ngave:\n{actual}"
        if kind == "json":
            assert matches(json.loads(shown), json.loads(actual)), context
        elif kind == "http":
            try:
                check_http(shown, actual)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{context}") from None
        else:
            assert actual.strip() == shown.strip(), context
