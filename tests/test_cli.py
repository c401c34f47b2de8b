"""The ``shortener`` command: schema, users and serving, over the same services as the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from conftest import PASSWORD
from support import assert_problem

from shortener import cli, create_app
from shortener.cli import gunicorn_command, main
from shortener.services.actors import OPERATOR
from shortener.storage import migrations, user_queries

SHORTENER = Path(sys.executable).with_name("shortener")
FAST_HASH = "pbkdf2:sha256:1000"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def cli_app(app, monkeypatch):
    """The migrated test app; SHORTENER_ADMIN_PASSWORD unset unless a test sets it."""
    monkeypatch.delenv("SHORTENER_ADMIN_PASSWORD", raising=False)
    return app


@pytest.fixture
def run(cli_app):
    """``run("users", "list", input=...)`` invokes the command group against the test app."""
    runner = cli_app.test_cli_runner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), input=input, env=env)

    return invoke


def assert_ok(result) -> None:
    assert result.exit_code == 0, result.output
    assert result.exception is None


def assert_clean_failure(result, *words: str) -> None:
    """Non-zero, a clear message naming the problem, and no traceback."""
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    for word in words:
        assert word in result.output, result.output


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def signs_in(client, username: str, password: str) -> bool:
    response = client.get(f"/api/v1.0/users/{username}", auth=(username, password))
    return response.status_code == 200


def user_count(app) -> int:
    return app.extensions["shortener"].users.count()


def subprocess_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SHORTENER_") and key not in ("FLASK_APP", "FLASK_DEBUG")
    }
    env.update(
        SHORTENER_DATABASE_URL=database_url, SHORTENER_PASSWORD_HASH_METHOD=FAST_HASH, **extra
    )
    return env


def run_shortener(database_url: str, *args: str, input: str | None = None, **env: str):
    return subprocess.run(
        [str(SHORTENER), *args],
        input=input,
        capture_output=True,
        text=True,
        env=subprocess_env(database_url, **env),
        timeout=60,
        check=False,
    )


# -- db upgrade ------------------------------------------------------------------------------------
def test_db_upgrade_creates_the_schema_and_is_safe_twice(database_url):
    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "PASSWORD_HASH_METHOD": FAST_HASH}
    )
    database = app.extensions["shortener"].database
    try:
        assert not migrations.is_current(database)
        runner = app.test_cli_runner()
        first = runner.invoke(main, ["db", "upgrade"])
        assert_ok(first)
        assert migrations.is_current(database)
        app.extensions["shortener"].users.create(
            OPERATOR, username="admin", password=PASSWORD, is_admin=True
        )
        second = runner.invoke(main, ["db", "upgrade"])
        assert_ok(second)
        assert migrations.is_current(database)
        assert user_count(app) == 1  # the second run kept the data
        assert signs_in(app.test_client(), "admin", PASSWORD)
    finally:
        database.dispose()


def test_installed_command_upgrades_and_bootstraps(database_url):
    """The console script from a clean environment: db upgrade twice, then the first admin."""
    for _ in range(2):
        result = run_shortener(database_url, "db", "upgrade")
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    result = run_shortener(
        database_url, "users", "bootstrap", SHORTENER_ADMIN_PASSWORD=NEW_PASSWORD
    )
    assert result.returncode == 0, result.stderr
    assert NEW_PASSWORD not in result.stdout

    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "PASSWORD_HASH_METHOD": FAST_HASH}
    )
    try:
        client = app.test_client()
        assert client.get("/api/v1.0/users", auth=("admin", NEW_PASSWORD)).status_code == 200
    finally:
        app.extensions["shortener"].close()


def test_installed_command_fails_cleanly(app, database_url, alice):
    """A failure from the console script: exit code 1, the reason on stderr, no traceback."""
    result = run_shortener(database_url, "users", "create", "alice")
    assert result.returncode == 1
    assert "already taken" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# -- users create ----------------------------------------------------------------------------------
def test_create_prints_a_generated_password_once(run, cli_app, client):
    result = run("users", "create", "carol")
    assert_ok(result)
    password = last_line(result.output)
    assert len(password) >= 16
    assert result.output.count(password) == 1
    assert signs_in(client, "carol", password)
    body = client.get("/api/v1.0/users/carol", auth=("carol", password)).get_json()
    assert body["is_admin"] is False


def test_generated_passwords_differ(run):
    first = last_line(run("users", "create", "carol").output)
    second = last_line(run("users", "create", "dave").output)
    assert first != second


def test_create_admin(run, client):
    result = run("users", "create", "root", "--admin")
    assert_ok(result)
    password = last_line(result.output)
    assert client.get("/api/v1.0/users", auth=("root", password)).status_code == 200
    assert "admin" in result.output


def test_create_with_password_from_stdin(run, client):
    result = run("users", "create", "carol", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert_ok(result)
    assert NEW_PASSWORD not in result.output
    assert "carol" in result.output
    assert signs_in(client, "carol", NEW_PASSWORD)


def test_password_from_stdin_without_newline(run, client):
    assert_ok(run("users", "create", "carol", "--password-stdin", input=NEW_PASSWORD))
    assert signs_in(client, "carol", NEW_PASSWORD)


def test_password_from_stdin_keeps_inner_and_outer_spaces(run, client):
    """Only the line ending is stripped: the password is exactly what was piped in."""
    password = "  spaced out  pass  "
    assert_ok(run("users", "create", "carol", "--password-stdin", input=password + "\r\n"))
    assert signs_in(client, "carol", password)
    assert not signs_in(client, "carol", password.strip())


def test_create_duplicate_user_fails_cleanly(run, cli_app, alice):
    before = user_count(cli_app)
    assert_clean_failure(run("users", "create", "alice"), "alice", "already taken")
    assert user_count(cli_app) == before


@pytest.mark.parametrize("username", ["bad name", "a:b", "über", ""])
def test_create_invalid_name_fails_cleanly(run, cli_app, username):
    assert_clean_failure(run("users", "create", username), "username")
    assert user_count(cli_app) == 0


@pytest.mark.parametrize("password", ["", "short", "p" * 1025])
def test_create_with_bad_stdin_password_fails_cleanly(run, cli_app, password):
    result = run("users", "create", "carol", "--password-stdin", input=password + "\n")
    assert_clean_failure(result, "password")
    assert user_count(cli_app) == 0


def test_create_without_a_name_is_a_usage_error(run):
    result = run("users", "create")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# -- users list ------------------------------------------------------------------------------------
def test_list_shows_every_user_and_role(run, admin, alice):
    result = run("users", "list")
    assert_ok(result)
    lines = result.output.splitlines()
    assert "USERNAME" in lines[0]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {"admin": "yes", "alice": "no"}
    assert PASSWORD not in result.output


def test_list_with_no_users(run):
    result = run("users", "list")
    assert_ok(result)
    assert len(result.output.splitlines()) == 1  # only the header


def test_list_shows_more_than_one_page(run, cli_app):
    """The command walks every page, not just the first (pages hold 1000)."""
    with cli_app.extensions["shortener"].database.write() as connection:
        for number in range(1005):
            user_queries.insert_user(
                connection,
                username=f"user{number:04}",
                password_hash="pbkdf2:sha256:1$salt$hash",
                is_admin=False,
                now=datetime.now(UTC),
            )
    result = run("users", "list")
    assert_ok(result)
    names = [line.split()[0] for line in result.output.splitlines()[1:]]
    assert len(names) == 1005 and len(set(names)) == 1005


# -- users delete ----------------------------------------------------------------------------------
def test_delete_user(run, cli_app, client, admin, alice):
    assert signs_in(client, *alice)  # warms the credential cache
    result = run("users", "delete", "alice")
    assert_ok(result)
    assert "alice" in result.output
    assert user_count(cli_app) == 1
    assert_problem(client.get("/api/v1.0/users/alice", auth=alice), 401)


def test_delete_unknown_user_fails_cleanly(run, cli_app, admin):
    assert_clean_failure(run("users", "delete", "ghost"), "ghost")
    assert user_count(cli_app) == 1


def test_delete_user_with_links_needs_purge(run, client, alice, row_counts):
    response = client.post(
        "/api/v1.0/links", json={"target": "https://example.com/", "slug": "mine"}, auth=alice
    )
    assert response.status_code == 201
    before = row_counts()
    assert_clean_failure(run("users", "delete", "alice"), "purge")
    assert row_counts() == before
    assert client.get("/mine").status_code == 302

    assert_ok(run("users", "delete", "alice", "--purge"))
    assert row_counts() == {"users": 0, "links": 0}
    assert_problem(client.get("/mine"), 404)


def test_delete_last_admin_fails_cleanly(run, cli_app, admin):
    assert_clean_failure(run("users", "delete", "admin"), "administrator")
    assert user_count(cli_app) == 1


# -- users set-password ----------------------------------------------------------------------------
def test_set_password_from_stdin(run, client, alice):
    assert signs_in(client, *alice)  # cached now
    result = run("users", "set-password", "alice", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert_ok(result)
    assert NEW_PASSWORD not in result.output
    assert not signs_in(client, *alice)
    assert signs_in(client, "alice", NEW_PASSWORD)


def test_set_password_generated(run, client, alice):
    assert signs_in(client, *alice)
    result = run("users", "set-password", "alice")
    assert_ok(result)
    password = last_line(result.output)
    assert result.output.count(password) == 1
    assert not signs_in(client, *alice)
    assert signs_in(client, "alice", password)


def test_set_password_unknown_user_fails_cleanly(run, cli_app):
    result = run("users", "set-password", "ghost", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert_clean_failure(result, "ghost")
    assert user_count(cli_app) == 0


def test_set_password_too_short_fails_cleanly(run, client, alice):
    result = run("users", "set-password", "alice", "--password-stdin", input="short\n")
    assert_clean_failure(result, "password")
    assert signs_in(client, *alice)


# -- users bootstrap -------------------------------------------------------------------------------
def test_bootstrap_uses_admin_password_from_env(run, cli_app, client):
    result = run("users", "bootstrap", env={"SHORTENER_ADMIN_PASSWORD": NEW_PASSWORD})
    assert_ok(result)
    assert NEW_PASSWORD not in result.output
    assert user_count(cli_app) == 1
    assert client.get("/api/v1.0/users", auth=("admin", NEW_PASSWORD)).status_code == 200


def test_bootstrap_generates_and_prints_a_password(run, cli_app, client):
    result = run("users", "bootstrap")
    assert_ok(result)
    password = last_line(result.output)
    assert result.output.count(password) == 1
    response = client.get("/api/v1.0/users/admin", auth=("admin", password))
    assert response.status_code == 200
    assert response.get_json()["is_admin"] is True


def test_bootstrap_is_a_no_op_when_users_exist(run, cli_app, client, alice):
    """Even a non-admin counts: make run must never add a second account behind your back."""
    result = run("users", "bootstrap", env={"SHORTENER_ADMIN_PASSWORD": NEW_PASSWORD})
    assert_ok(result)
    assert user_count(cli_app) == 1
    assert not signs_in(client, "admin", NEW_PASSWORD)
    assert NEW_PASSWORD not in result.output


def test_bootstrap_twice_creates_one_admin(run, cli_app):
    assert_ok(run("users", "bootstrap"))
    second = run("users", "bootstrap")
    assert_ok(second)
    assert user_count(cli_app) == 1
    assert "exist" in second.output


def test_bootstrap_with_a_too_short_env_password_fails_cleanly(run, cli_app):
    result = run("users", "bootstrap", env={"SHORTENER_ADMIN_PASSWORD": "short"})
    assert_clean_failure(result, "password")
    assert user_count(cli_app) == 0


# -- help ------------------------------------------------------------------------------------------
FLASK_DEVELOPMENT_COMMANDS = ("run", "shell", "routes", "limiter")
FLASK_OPTIONS = ("--env-file", "-e,", "--app", "-A,", "--debug", "--no-debug", "--version")


def help_of(*args: str) -> str:
    """``shortener ARGS --help`` through the installed console script, as a user runs it, with
    a database URL nothing could open: help must not need the app."""
    env = subprocess_env("postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = subprocess.run(
        [str(SHORTENER), *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def listed_commands(help_text: str) -> dict[str, str]:
    """{command: its one-line help} from the Commands section of a --help page."""
    section = help_text.split("Commands:", 1)[1]
    return dict((line.split(None, 1) + [""])[:2] for line in section.splitlines() if line.strip())


def test_help_lists_only_our_commands_each_with_help():
    text = help_of()
    commands = listed_commands(text)
    assert set(commands) == set(main.commands)
    assert {"db", "users", "tokens", "serve"} <= set(commands)
    for name, summary in commands.items():
        assert len(summary) > 10, (name, summary)
    for flask_command in FLASK_DEVELOPMENT_COMMANDS:
        assert flask_command not in commands
    for option in FLASK_OPTIONS:
        assert option not in text.split(), option
    options = text.split("Options:", 1)[1].split("Commands:", 1)[0].split()
    assert options[0] == "--help"


@pytest.mark.parametrize("group", ["db", "users", "tokens"])
def test_every_subcommand_has_help(group):
    commands = listed_commands(help_of(group))
    assert set(commands) == set(main.commands[group].commands)
    for name, summary in commands.items():
        assert len(summary) > 10, (group, name, summary)


@pytest.mark.parametrize("command", FLASK_DEVELOPMENT_COMMANDS)
def test_flask_development_commands_do_not_exist(run, command):
    result = run(command)
    assert result.exit_code == 2
    assert "No such command" in result.output


@pytest.mark.parametrize("option", ["--app", "--env-file", "--debug"])
def test_flask_options_do_not_exist(run, option):
    result = run(option, "x", "users", "list")
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_serve_help_documents_every_option_and_default():
    text = " ".join(help_of("serve").split())
    for param in main.commands["serve"].params:
        assert param.help, param.name
        option = param.opts[0]
        assert re.search(rf"{option} (\S+ )?(RANGE )?{re.escape(param.help)}", text), option
    for option, default in (("--host", "127.0.0.1"), ("--port", "5000"), ("--workers", "2")):
        assert re.search(rf"{option} .*?\[default: {re.escape(default)}[];]", text), text


def test_every_option_of_every_command_has_help():
    def commands(group):
        for command in group.commands.values():
            yield command
            if hasattr(command, "commands"):
                yield from commands(command)

    for command in commands(main):
        assert command.help or command.short_help, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (command.name, param.name)


# -- serve -----------------------------------------------------------------------------------------


def test_gunicorn_command_serves_wsgi_app():
    command = gunicorn_command("0.0.0.0", 8080, 3)
    assert command[:3] == [sys.executable, "-m", "gunicorn"]
    assert command[-1] == "wsgi:app"
    assert command[command.index("--bind") + 1] == "0.0.0.0:8080"
    assert command[command.index("--workers") + 1] == "3"


@pytest.fixture
def exec_calls(monkeypatch):
    """Records what ``serve`` would exec instead of replacing the test process."""
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(cli.os, "execve", lambda path, args, env: calls.append((path, list(args))))
    return calls


def test_serve_defaults(run, exec_calls):
    assert_ok(run("serve"))
    assert exec_calls == [(sys.executable, gunicorn_command("127.0.0.1", 5000, 2))]


def test_serve_passes_its_options(run, exec_calls):
    assert_ok(run("serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"))
    assert exec_calls == [(sys.executable, gunicorn_command("0.0.0.0", 8000, 4))]


@pytest.mark.parametrize(
    "args",
    [["--port", "0"], ["--port", "65536"], ["--port", "http"], ["--workers", "0"]],
)
def test_serve_refuses_bad_options(run, exec_calls, args):
    result = run("serve", *args)
    assert result.exit_code == 2
    assert exec_calls == []
