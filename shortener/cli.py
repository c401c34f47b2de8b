"""The ``shortener`` command: database, users and serving, over the same services as the API."""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo
from marshmallow import Schema, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from . import create_app, metrics
from .resources.export import export_stream
from .resources.links import link_fields
from .schemas.importing import ImportedLinkSchema, LinkExportQuery
from .schemas.tokens import TokenSchema
from .schemas.users import UserChangeSchema, UserSchema
from .services import importing
from .services.actors import OPERATOR, utcnow
from .services.errors import InvalidInput, ShortenerError
from .services.exporting import EXPORT_FORMATS
from .services.lifetime import parse_age
from .services.links import Imported
from .services.users import generate_password
from .storage import DatabaseUnavailable, migrations


def _services():
    return current_app.extensions["shortener"]


class _ServiceErrors(click.ClickException):
    def __init__(self, error: ShortenerError) -> None:
        message = error.detail
        if error.errors:
            message += " " + "; ".join(
                f"{field}: {problem}" for field, problem in _flattened(error.errors)
            )
        super().__init__(message)


def _flattened(errors, prefix: str = ""):
    """("scopes.0", "Must be one of ...") pairs from marshmallow's nested messages."""
    for name, problems in errors.items():
        field = f"{prefix}{name}"
        if isinstance(problems, dict):
            yield from _flattened(problems, f"{field}.")
        else:
            yield field, " ".join(map(str, problems))


def _checked(schema: Schema, data: dict, *, partial: bool = False) -> dict:
    """Input checked by the API's own schema: a field rule is written once, there."""
    try:
        return schema.load(data, partial=partial)
    except ValidationError as error:
        raise _ServiceErrors(
            InvalidInput("Invalid input.", errors=error.normalized_messages())
        ) from None


def _run(action):
    try:
        return action()
    except ShortenerError as error:
        raise _ServiceErrors(error) from None
    except DatabaseUnavailable as error:
        raise click.ClickException(
            f"The database is unavailable ({error}); is it running, and has "
            "'shortener db upgrade' been run?"
        ) from None


class ShortenerGroup(AppGroup):
    """Our commands only: no Flask development commands (run, shell, routes), no extension
    commands, no --app/--env-file/--debug. As with Flask's own group, a command runs inside
    the app's context, created from SHORTENER_* variables when the command needs it (never
    for --help or serve); a test runner may hand in its own app as ``obj``."""

    def make_context(self, info_name, args, parent=None, **extra):
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo(create_app=create_app, set_debug_flag=False)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=ShortenerGroup)
def main() -> None:
    """Manage and serve the shortener."""


# -- db -----------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision (safe to run again)."""
    _run(lambda: migrations.upgrade(_services().database))
    click.echo("database is up to date")


# -- users --------------------------------------------------------------------------------
@main.group()
def users() -> None:
    """User accounts."""


def _read_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated?)"""
    if not from_stdin:
        return generate_password(), True
    line = sys.stdin.readline()
    return line.rstrip("\r\n"), False


def _announce(username: str, is_admin: bool, password: str, generated: bool) -> None:
    role = "admin user" if is_admin else "user"
    click.echo(f"created {role} '{username}'")
    if generated:
        click.echo("password (shown only this once):")
        click.echo(password)


@users.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user the administrator role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, admin: bool, password_stdin: bool) -> None:
    """Create a user; without --password-stdin a strong password is generated and printed."""
    password, generated = _read_password(password_stdin)
    user = _checked(UserSchema(), {"username": username, "password": password, "is_admin": admin})
    _run(lambda: _services().users.create(OPERATOR, **user))
    _announce(username, admin, password, generated)


@users.command("bootstrap")
@click.option("--username", default="admin", show_default=True, help="The admin's user name.")
def users_bootstrap(username: str) -> None:
    """Create the first admin if there are no users yet.

    The password comes from SHORTENER_ADMIN_PASSWORD, else it is generated and printed once.
    """
    service = _services().users
    if _run(service.count) > 0:
        click.echo("users exist already; no admin created")
        return
    password = os.environ.get("SHORTENER_ADMIN_PASSWORD")
    generated = not password
    password = password or generate_password()
    user = _checked(UserSchema(), {"username": username, "password": password, "is_admin": True})
    _run(lambda: service.create(OPERATOR, **user))
    _announce(username, True, password, generated)


@users.command("list")
def users_list() -> None:
    """List every user, newest first."""
    cursor = None
    click.echo(f"{'USERNAME':<32} {'ADMIN':<5} CREATED")
    while True:
        page = _run(lambda after=cursor: _services().users.list(OPERATOR, cursor=after, limit=1000))
        for user in page.items:
            created = user.created_at.isoformat(timespec="seconds").replace("+00:00", "Z")
            click.echo(f"{user.username:<32} {'yes' if user.is_admin else 'no':<5} {created}")
        if page.next_cursor is None:
            break
        cursor = page.next_cursor


@users.command("delete")
@click.argument("username")
@click.option("--purge", is_flag=True, help="Also delete the links the user owns.")
def users_delete(username: str, purge: bool) -> None:
    """Delete a user (refused while they own links, unless --purge)."""
    _run(lambda: _services().users.delete(OPERATOR, username, purge=purge))
    click.echo(f"deleted user '{username}'")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set a new password; without --password-stdin one is generated and printed."""
    password, generated = _read_password(password_stdin)
    change = _checked(UserChangeSchema(), {"password": password})
    _run(lambda: _services().users.update(OPERATOR, username, **change))
    click.echo(f"password changed for '{username}'")
    if generated:
        click.echo("password (shown only this once):")
        click.echo(password)


# -- tokens -------------------------------------------------------------------------------
@main.group()
def tokens() -> None:
    """API tokens (Authorization: Bearer)."""


def _timestamp(moment) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else "-"


@tokens.command("create")
@click.argument("username")
@click.option("--name", required=True, help="A label for people, e.g. the script using it.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="links:read, links:write, stats:read or users:admin (admins only); repeat for more. "
    "Default: links:read links:write stats:read.",
)
@click.option(
    "--expires-in",
    type=click.IntRange(1, 36500),
    metavar="DAYS",
    help="Days until the token stops working (default: never).",
)
def tokens_create(username: str, name: str, scopes: tuple[str, ...], expires_in: int | None):
    """Create a token for USERNAME; its secret is printed once, alone on the last line."""
    wanted = [scope for given in scopes for scope in re.split(r"[\s,]+", given) if scope]
    token = _checked(TokenSchema(), {"name": name, **({"scopes": wanted} if scopes else {})})
    expires_at = utcnow() + timedelta(days=expires_in) if expires_in else None
    created = _run(
        lambda: _services().tokens.create(
            OPERATOR,
            owner=username,
            name=token["name"],
            scopes=token["scopes"],
            expires_at=expires_at,
        )
    )
    record = created.record
    click.echo(
        f"created token {record.id} '{record.name}' for '{username}' "
        f"with scopes {' '.join(record.scopes)}, expires {_timestamp(record.expires_at)}"
    )
    click.echo("token (shown only this once):")
    click.echo(created.secret)


@tokens.command("list")
@click.argument("username", required=False)
def tokens_list(username: str | None) -> None:
    """List the tokens of USERNAME, or of every user; secrets are never shown."""
    cursor = None
    click.echo(
        f"{'ID':>6} {'OWNER':<20} {'NAME':<24} {'SCOPES':<42} "
        f"{'CREATED':<20} {'EXPIRES':<20} LAST USED"
    )
    while True:
        page = _run(
            lambda after=cursor: _services().tokens.list(
                OPERATOR, owner=username, cursor=after, limit=1000
            )
        )
        for token in page.items:
            click.echo(
                f"{token.id:>6} {token.owner_username:<20} {token.name:<24} "
                f"{' '.join(token.scopes):<42} {_timestamp(token.created_at):<20} "
                f"{_timestamp(token.expires_at):<20} {_timestamp(token.last_used_at)}"
            )
        if page.next_cursor is None:
            break
        cursor = page.next_cursor


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke (delete) a token by its id; it is refused from the next request on."""
    token = _run(lambda: _services().tokens.revoke(OPERATOR, token_id))
    click.echo(f"revoked token {token.id} '{token.name}' of '{token.owner_username}'")


# -- links --------------------------------------------------------------------------------
@main.group()
def links() -> None:
    """Short links."""


class _Age(click.ParamType):
    """``30d``, ``12h`` or ``2w``: a bad value is a usage error (exit code 2)."""

    name = "age"

    def convert(self, value, param, ctx) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            number, unit = parse_age(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return timedelta(**{unit: number})


@links.command("purge-expired")
@click.option(
    "--older-than",
    type=_Age(),
    required=True,
    help="Delete links expired (valid_until) or exhausted (max_visits reached) more than this "
    "long ago: 30d, 12h or 2w.",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
def links_purge_expired(older_than: timedelta, dry_run: bool) -> None:
    """Delete links expired or exhausted more than --older-than ago, with their visits."""
    gone = _run(lambda: _services().links.purge_expired(older_than, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    for link in gone:
        since = link.valid_until if link.status == "expired" else link.exhausted_at
        click.echo(f"{verb} {link.slug} ({link.status} since {_timestamp(since)})")
    click.echo(f"{verb} {len(gone)} link{'' if len(gone) == 1 else 's'}")


# -- import and export (services/importing.py, services/exporting.py) ----------------------
class _Rate(ProgressColumn):
    """Rows a second, for the import's progress bar."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed and task.elapsed:
            speed = task.completed / task.elapsed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s")


def _owner_name(uri: object) -> str | None:
    """The user name at the end of a link's ``owner`` URI (.../users/<name>)."""
    if not isinstance(uri, str) or "/users/" not in uri:
        return None
    return uri.rstrip("/").rsplit("/", 1)[-1] or None


def _checked_row(schema: ImportedLinkSchema, data: dict) -> importing.CheckedRow:
    """A row checked by the API's own rules (LinkSchema) and made into link fields."""
    owner = _owner_name(data.get("owner"))
    data = schema.without_server_fields(data)
    try:
        body = schema.load(data)
    except ValidationError as error:
        raise InvalidInput("Invalid link.", errors=error.normalized_messages()) from None
    created_at, visits = body.pop("created_at"), body.pop("visit_count")
    return importing.CheckedRow(
        fields=link_fields(body),
        slug=body.get("slug"),
        imported=Imported(created_at=created_at, visits=visits or 0),
        owner=owner,
    )


@main.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option(
    "--format",
    "format_name",
    type=click.Choice(importing.FORMATS),
    help="The file's format; by default from its extension (.csv, .json).",
)
@click.option("--owner", help="The user the links go to (json: else each link's owner).")
@click.option("--dry-run", is_flag=True, help="Check every row; store nothing.")
@click.option(
    "--on-conflict",
    type=click.Choice(importing.CONFLICTS),
    default="skip",
    show_default=True,
    help="A slug that exists (or, without a slug, the owner's link to the same target).",
)
def import_links(file, format_name: str | None, owner: str | None, dry_run: bool, on_conflict):
    """Import links from FILE: our csv or json export, or Bitly's, YOURLS', Kutt's or
    Shlink's (README "Import and export"). Bad rows are reported by line, the rest go on;
    running it again imports nothing twice. Exit status 1 if a row failed."""
    if format_name is None:
        extension = os.path.splitext(file.name)[1].lower().lstrip(".")
        if extension not in ("csv", "json"):
            raise click.UsageError("Give --format: the file's extension does not say it.")
        format_name = extension
    if owner is None and format_name != "json":
        raise click.UsageError(f"--owner is needed for --format {format_name}.")
    try:
        rows = importing.read(file.read(), format_name)
    except importing.ImportFileError as error:
        raise click.ClickException(error.detail) from None
    except UnicodeDecodeError:
        raise click.ClickException("The file is not UTF-8 text.") from None
    users: dict[str, object] = {}

    def user(name: str):
        if name not in users:
            users[name] = _run(lambda: _services().users.get(OPERATOR, name))
        return users[name]

    default_owner = user(owner) if owner is not None else None
    schema = ImportedLinkSchema()
    writer = importing.LinkImport(_services().links, on_conflict=on_conflict, dry_run=dry_run)
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task("import", total=len(rows))
        for start in range(0, len(rows), importing.CHUNK_SIZE):
            chunk = rows[start : start + importing.CHUNK_SIZE]
            problems: dict[int, str] = {}
            pending: list[importing.Pending] = []
            for row in chunk:
                checked = _pending_row(row, schema, default_owner, user)
                if isinstance(checked, str):
                    problems[row.line] = checked
                    writer.failed()
                else:
                    pending.append(checked)
            problems.update(_run(lambda pending=pending: writer.write(pending)))
            for line in sorted(problems):
                click.echo(f"line {line}: {problems[line]}")
            progress.advance(task, len(chunk))
    if dry_run:
        click.echo("dry run: nothing was stored")
    click.echo(str(writer.summary))
    if writer.summary.failed:
        sys.exit(1)


def _pending_row(row: importing.Row, schema, default_owner, user) -> importing.Pending | str:
    """The row checked and its owner found, or the problem to report."""
    if row.problem is not None:
        return row.problem
    try:
        checked = _checked_row(schema, row.data)
        owner = default_owner
        if owner is None:
            if checked.owner is None:
                raise InvalidInput("No owner: the link names none; give --owner.")
            owner = user(checked.owner)
    except ShortenerError as error:
        return importing.problem_text(error)
    except _ServiceErrors as error:
        return error.message
    return importing.Pending(row.line, owner, checked)


@main.command("export")
@click.option("--owner", help="Only this user's links (default: every user's).")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(EXPORT_FORMATS),
    default="json",
    show_default=True,
    help='json: {"links": [...]} as the API shows them; csv: our CSV columns.',
)
@click.option("--with-visits", is_flag=True, help="Include each link's visit_count.")
@click.option(
    "--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="Default: stdout."
)
def export_links(owner: str | None, format_name: str, with_visits: bool, output) -> None:
    """Write every link (or --owner's) as json or csv; `shortener import` reads it back."""
    if owner is not None:
        _run(lambda: _services().users.get(OPERATOR, owner))
    query = _checked(
        LinkExportQuery(),
        {
            "format": format_name,
            "with_visits": "true" if with_visits else "false",
            **({"owner": owner} if owner is not None else {}),
        },
    )
    settings = current_app.extensions["shortener.settings"]
    # The representation holds absolute URIs: under SHORTENER_PUBLIC_URL when set.
    with current_app.test_request_context(base_url=settings.public_url or "http://localhost/"):
        _run(lambda: output.writelines(export_stream(OPERATOR, query)))


# -- idempotency keys ---------------------------------------------------------------------
@main.group()
def idempotency() -> None:
    """Idempotency-Key claims of POSTs."""


@idempotency.command("purge")
def idempotency_purge() -> None:
    """Delete keys older than 24 hours (workers also do this, at most once a minute)."""
    purged = _run(lambda: _services().idempotency.purge())
    click.echo(f"purged {purged} idempotency key{'' if purged == 1 else 's'}")


# -- visits -------------------------------------------------------------------------------
@main.group()
def visits() -> None:
    """Visits: the writers of the Redis Stream (SHORTENER_REDIS_URL)."""


@visits.command("work")
@click.option(
    "--name",
    help="This consumer's name in the group (default: host-pid). A consumer restarted under "
    "the same name takes back its unacknowledged visits at once.",
)
def visits_work(name: str | None) -> None:
    """Write visits from the Redis Stream in batches until SIGTERM or SIGINT; run several,
    on several hosts. A dead consumer's visits are taken over by the others."""
    from .visit_writer import work

    app = current_app._get_current_object()
    if not app.extensions["shortener.settings"].redis_url:
        raise click.ClickException("SHORTENER_REDIS_URL is not set: there is no stream to read.")
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    work(app, name)


# -- webhooks -----------------------------------------------------------------------------
@main.group()
def webhooks() -> None:
    """Webhooks: their sender, for a deployment that does not run shortener serve."""


@webhooks.command("send")
def webhooks_send() -> None:
    """Deliver the webhook outbox until SIGTERM or SIGINT (shortener serve runs this beside
    its workers already). Several senders, on several hosts, never send one message twice at
    once."""
    from .webhook_sender import work

    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    work(current_app._get_current_object())


# -- serve --------------------------------------------------------------------------------
# gunicorn's workers that answer gunicorn's own errors with problem+json (serving.py). gevent
# is the default: a slow client holds a greenlet, not one of a few threads (README, "Slow
# clients").
WORKER_CLASSES = {
    "gevent": "shortener.serving.ProblemGeventWorker",
    "gthread": "shortener.serving.ProblemThreadWorker",
}
DEFAULT_WORKER_CLASS = "gevent"
GUNICORN_WORKER_CLASS = WORKER_CLASSES[DEFAULT_WORKER_CLASS]
GUNICORN_THREADS = 4  # gthread only
GEVENT_CONNECTIONS = 1000  # gevent only: connections a worker serves at once


def gunicorn_command(
    host: str,
    port: int,
    workers: int,
    *,
    app: str = "wsgi:app",
    access_log: bool = False,
    visit_writer: bool = True,
    worker_class: str = DEFAULT_WORKER_CLASS,
) -> list[str]:
    """The gunicorn command line; the benchmark serves its baseline with the same one (with
    no visit writer: its bare app records nothing)."""
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", WORKER_CLASSES[worker_class],
        "--no-control-socket",
    ]  # fmt: skip
    if worker_class == "gthread":
        command += ["--threads", str(GUNICORN_THREADS)]
    else:
        command += ["--worker-connections", str(GEVENT_CONNECTIONS)]
    if visit_writer:
        command += ["--config", "python:shortener.gunicorn_config"]
    if access_log:
        command += ["--access-logfile", "-"]
    return [*command, app]


@main.command("serve", with_appcontext=False)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 for every interface (put a proxy in front).",
)
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes.",
)
@click.option(
    "--worker-class",
    type=click.Choice(list(WORKER_CLASSES)),
    default=DEFAULT_WORKER_CLASS,
    show_default=True,
    help=f"gevent: up to {GEVENT_CONNECTIONS} connections per worker, a slow client holds "
    f"none of the others up; gthread: {GUNICORN_THREADS} threads per worker.",
)
@click.option("--access-log", is_flag=True, help="Log every request to standard output.")
def serve(host: str, port: int, workers: int, worker_class: str, access_log: bool) -> None:
    """Serve the app with gunicorn on wsgi:app, and one visit-writer process beside the
    workers (restarted if it dies; with SHORTENER_REDIS_URL also a consumer of the stream)."""
    command = gunicorn_command(
        host, port, workers, access_log=access_log, worker_class=worker_class
    )
    click.echo("exec: " + " ".join(command[2:]), err=True)
    sys.stdout.flush()
    # Counts of every process (workers, visit writer) in files of this server's own; gunicorn
    # keeps this process's pid, which names the directory.
    counts = metrics.prepare_multiprocess_dir(Flask("shortener").instance_path)
    os.execve(sys.executable, command, {**os.environ, metrics.MULTIPROCESS_DIR: str(counts)})
