"""``make bench``: the redirect hot path and the API against a bare Flask redirect, in one run.

Seeds 100,000 links and 1,000,000 visits on one of them, serves (a) a bare Flask app that
redirects from a dict, (b) shortener on SQLite, (c) shortener on PostgreSQL and (d) shortener
on PostgreSQL with visits through a Redis Stream (the redirect only) under the same gunicorn
settings, drives each with wrk on 127.0.0.1 for a bounded time, checks for every shortener
row that the visits written equal the redirects answered (within SETTLE_SECONDS, while the
server runs), and prints one table. Results go to bench/results/latest.json (or --output) and
the README's table.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slow_clients import measure as measure_slow_clients  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from shortener.cli import GEVENT_CONNECTIONS, GUNICORN_WORKER_CLASS, gunicorn_command  # noqa: E402
from shortener.services.passwords import PasswordHasher  # noqa: E402
from shortener.storage import Database  # noqa: E402
from shortener.storage.migrations import upgrade  # noqa: E402
from shortener.storage.tables import links, users, visits  # noqa: E402
from shortener.storage.visit_queries import NewVisit, record  # noqa: E402

LINKS = 100_000
HOT_VISITS = 1_000_000
HOT_SLUG = "l000001"
ONE_LINK_SLUG = "l000002"
USERNAME, PASSWORD = "bench", "bench-password-1"
WORKERS = 2
EXACT_CHECK_REQUESTS = 2000
# How long the visit writer may take to write what the redirects handed over.
SETTLE_SECONDS = 30
REDIS_URL = os.environ.get("SHORTENER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
API_LIMIT = "100000000/minute"
RESULTS = REPO / "bench" / "results" / "latest.json"
README = REPO / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"

USER_AGENTS = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0 Safari/537.36", "Chrome", "Windows", False),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
     "Firefox", "Linux", False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS",
     False),
    ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Googlebot", None, True),
]  # fmt: skip
REFERRERS = [None, "https://news.ycombinator.com/", "https://www.google.com/", "https://t.co/x"]

REDIRECT_LUA = f"""
request = function()
  return wrk.format("GET", string.format("/l%06d", math.random(1, {LINKS})))
end
"""
CREATE_LUA = """
wrk.method = "POST"
wrk.body = '{"target": "https://example.com/created-by-bench"}'
wrk.headers["Content-Type"] = "application/json"
"""


def log(message: str) -> None:
    print(message, flush=True)


# -- set-up ---------------------------------------------------------------------------------
def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("installing wrk (Debian package)")
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(url: str) -> float:
    """Schema, one admin, 100,000 links, 1,000,000 visits over 30 days on the hot link."""
    started = time.monotonic()
    # Seeding sends 100,000 links in one statement: far past the server's answer deadlines.
    database = Database(url, database_timeout_ms=600_000, statement_timeout_ms=3_600_000)
    upgrade(database)
    now = datetime.now(UTC)
    password_hash = PasswordHasher("scrypt").hash(PASSWORD)
    with database.write() as connection:
        user_id = connection.execute(
            insert(users)
            .values(username=USERNAME, password_hash=password_hash, is_admin=True, created_at=now)
            .returning(users.c.id)
        ).scalar_one()
        connection.execute(
            insert(links),
            [
                {"slug": f"l{n:06d}", "target": f"https://example.com/{n}", "title": None,
                 "redirect_status": 302, "visit_count": 0, "owner_id": user_id,
                 "created_at": now - timedelta(days=31), "updated_at": now}
                for n in range(1, LINKS + 1)
            ],
        )  # fmt: skip
        hot_id = connection.execute(select(links.c.id).where(links.c.slug == HOT_SLUG)).scalar_one()
    generator = random.Random(1)
    batch_size = min(50_000, seed.hot_visits)
    for _ in range(max(1, seed.hot_visits // batch_size)):
        batch = []
        for _ in range(batch_size):
            agent, browser, os_family, is_bot = generator.choice(USER_AGENTS)
            referrer = generator.choice(REFERRERS)
            batch.append(
                NewVisit(
                    link_id=hot_id,
                    visited_at=now - timedelta(seconds=generator.uniform(0, 30 * 86400)),
                    referrer=referrer,
                    user_agent=agent,
                    browser=browser,
                    os=os_family,
                    is_bot=is_bot,
                    ip=f"203.0.113.{generator.randrange(256) & 0xF0}",
                    referrer_host=referrer and referrer.split("/")[2],
                )
            )
        with database.write() as connection:
            record(connection, batch)
    database.dispose()
    return time.monotonic() - started


seed.hot_visits = HOT_VISITS


def settled_visits(url: str, expected: int) -> tuple[int, float]:
    """(visits written, seconds it took) once ``expected`` are there, or at SETTLE_SECONDS."""
    started = time.monotonic()
    while (counted := count_visits(url)) < expected and time.monotonic() - started < SETTLE_SECONDS:
        time.sleep(0.1)
    return counted, round(time.monotonic() - started, 2)


def count_visits(url: str) -> int:
    database = Database(url)
    with database.read() as connection:
        counted = connection.execute(select(func.count()).select_from(visits)).scalar_one()
    database.dispose()
    return counted


class Server:
    """gunicorn with the settings every server in the table shares."""

    def __init__(self, app: str, env: dict[str, str], ready_path: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The bare app records no visits: no visit writer beside it.
        self.command = gunicorn_command(
            "127.0.0.1", self.port, WORKERS, app=app, visit_writer=app == "wsgi:app"
        )
        self.env = env
        self.ready_path = ready_path
        self.log_path = log_path

    def __enter__(self) -> Server:
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command, cwd=REPO, env=self.env, stdout=self.log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", self.ready_path)
                if connection.getresponse().status < 500:
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        sys.exit(f"server did not start; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        """SIGTERM: a graceful stop, so every buffered visit is written."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=40)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log_file.close()


# -- measuring ------------------------------------------------------------------------------
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(wrk: str, url: str, args, *, script: Path | None = None, headers=()) -> dict:
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--latency", "--timeout", "5s"]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=args.duration + 30, check=True
    ).stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * _UNITS[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "errors": int(bad.group(1)) if bad else 0,
        "socket_errors": "Socket errors" in output,
    }


def warm_up(wrk: str, url: str, args, *, script: Path | None = None, headers=()) -> int:
    """An unmeasured short run first: the first seconds of a fresh server are not its speed.

    Returns the requests it completed (a redirect warm-up records visits too)."""
    warm = argparse.Namespace(**{**vars(args), "duration": 2})
    return run_wrk(wrk, url, warm, script=script, headers=headers)["requests"]


def median_of_runs(runs: list[dict]) -> dict:
    return {
        "rps": statistics.median(run["rps"] for run in runs),
        "p50_ms": statistics.median(run["p50_ms"] for run in runs),
        "p99_ms": statistics.median(run["p99_ms"] for run in runs),
        "requests": sum(run["requests"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "runs": runs,
    }


def exact_redirects(base_url: str, count: int) -> int:
    """Sends ``count`` redirects over keep-alive connections; returns how many were 302."""
    port = int(base_url.rsplit(":", 1)[1])

    def send(share: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        answered = 0
        for _ in range(share):
            connection.request("GET", f"/l{random.randint(1, LINKS):06d}")
            response = connection.getresponse()
            response.read()
            answered += response.status == 302
        return answered

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(send, [count // 8] * 8))


def single_request_ms(base_url: str, path: str, auth: str, repeat: int = 21) -> float:
    port = int(base_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    timings = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": auth})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[1:])


# -- the run --------------------------------------------------------------------------------
def bench_shortener(
    name: str,
    url: str,
    wrk: str,
    args,
    scripts: dict,
    workdir: Path,
    *,
    settings: dict[str, str] | None = None,
    only: tuple[str, ...] | None = None,
    seeded: bool = False,
) -> dict:
    seconds = 0.0
    if not seeded:
        log(f"[{name}] seeding {LINKS:,} links and {seed.hot_visits:,} visits")
        seconds = seed(url)
        log(f"[{name}] seeded in {seconds:.0f} s")
    # One credential drives every API scenario: the default 600/minute would measure 429s.
    env = {**os.environ, "SHORTENER_DATABASE_URL": url, "SHORTENER_API_RATE_LIMIT": API_LIMIT,
           **(settings or {})}  # fmt: skip
    auth = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    log_path = workdir / f"{name}.log"

    before = count_visits(url)
    with Server("wsgi:app", env, "/api/v1.0/", log_path) as server:
        answered = exact_redirects(server.url, EXACT_CHECK_REQUESTS)
        written, settle_seconds = settled_visits(url, before + answered)
    exact = {"sent": EXACT_CHECK_REQUESTS, "answered_302": answered,
             "recorded": written - before, "settle_seconds": settle_seconds,
             "recorded_after_stop": count_visits(url) - before}  # fmt: skip
    exact["ok"] = (exact["sent"] == exact["answered_302"] == exact["recorded"]
                   == exact["recorded_after_stop"])  # fmt: skip
    log(f"[{name}] exact check: {exact}")

    scenarios = {
        "redirect": dict(path="/", script=scripts["redirect"]),
        "GET one link": dict(path=f"/api/v1.0/links/{ONE_LINK_SLUG}", headers=[auth]),
        "GET links collection": dict(path="/api/v1.0/links", headers=[auth]),
        "POST create": dict(path="/api/v1.0/links", script=scripts["create"], headers=[auth]),
        "stats (1M visits)": dict(path=f"/api/v1.0/links/{HOT_SLUG}/stats", headers=[auth]),
    }
    if only is not None:
        scenarios = {scenario: spec for scenario, spec in scenarios.items() if scenario in only}
    results = {}
    before = count_visits(url)
    with Server("wsgi:app", env, "/api/v1.0/", log_path) as server:
        for _ in range(2):  # warm every worker's credential cache and connection pool
            exact_redirects(server.url, 16)
            single_request_ms(server.url, f"/api/v1.0/links/{ONE_LINK_SLUG}", auth, repeat=4)
        stats_ms = single_request_ms(server.url, f"/api/v1.0/links/{HOT_SLUG}/stats", auth)
        for scenario, spec in scenarios.items():
            headers = [f"Authorization: {spec['headers'][0]}"] if spec.get("headers") else []
            warmed = warm_up(wrk, server.url + spec["path"], args, script=spec.get("script"),
                             headers=headers)  # fmt: skip
            if scenario == "redirect":
                warm_up_visits = warmed
            runs = [
                run_wrk(wrk, server.url + spec["path"], args, script=spec.get("script"),
                        headers=headers)
                for _ in range(args.runs)
            ]  # fmt: skip
            results[scenario] = median_of_runs(runs)
            log(f"[{name}] {scenario}: {results[scenario]['rps']:.0f} req/s")
        warm_up_redirects = 2 * 16
        sent = results["redirect"]["requests"] + warm_up_visits
        written, settle_seconds = settled_visits(url, before + warm_up_redirects + sent)
    recorded = written - before - warm_up_redirects
    # wrk counts answers it read; a request in flight when a run stops may still be recorded.
    slack = args.connections * (args.runs + 1)
    visits_check = {"wrk_redirects_answered": sent, "recorded": recorded,
                    "settle_seconds": settle_seconds,
                    "ok": sent <= recorded <= sent + slack}  # fmt: skip
    log(f"[{name}] visits during wrk: {visits_check}")
    return {"scenarios": results, "stats_single_request_ms": stats_ms,
            "exact_check": exact, "wrk_visits_check": visits_check,
            "seed_seconds": seconds}  # fmt: skip


def postgres_schema_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    database = Database(base)
    with database.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_schema(base: str, schema: str) -> None:
    database = Database(base)
    with database.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    database.dispose()


def drop_stream(url: str, key: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete(key)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "SHORTENER_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--redis", default=REDIS_URL, help="the Redis of the stream row")
    parser.add_argument(
        "--hot-visits", type=int, default=HOT_VISITS, help="visits seeded on the hot link"
    )
    args = parser.parse_args()
    seed.hot_visits = args.hot_visits

    wrk = ensure_wrk()
    settings = {"worker_class": GUNICORN_WORKER_CLASS, "workers": WORKERS,
                "worker_connections": GEVENT_CONNECTIONS}  # fmt: skip
    wrk_settings = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, " \
                   f"median of {args.runs} runs"  # fmt: skip
    log(f"gunicorn for every server: {settings}; {wrk_settings}; "
        f"shortener with SHORTENER_API_RATE_LIMIT={API_LIMIT}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="shortener-bench-") as tmp:
        workdir = Path(tmp)
        scripts = {"redirect": workdir / "redirect.lua", "create": workdir / "create.lua"}
        scripts["redirect"].write_text(REDIRECT_LUA)
        scripts["create"].write_text(CREATE_LUA)

        bare_env = {**os.environ, "PYTHONPATH": str(REPO / "bench")}
        with Server("bare_app:app", bare_env, "/l000001", workdir / "bare.log") as server:
            warm_up(wrk, server.url + "/", args, script=scripts["redirect"])
            bare_runs = [
                run_wrk(wrk, server.url + "/", args, script=scripts["redirect"])
                for _ in range(args.runs)
            ]
        bare = median_of_runs(bare_runs)
        log(f"[bare] redirect: {bare['rps']:.0f} req/s")

        sqlite = bench_shortener(
            "sqlite", f"sqlite:///{workdir / 'bench.db'}", wrk, args, scripts, workdir
        )
        schema, postgres_url = postgres_schema_url(args.postgres)
        stream = f"bench:{uuid.uuid4().hex[:10]}:visits"
        try:
            postgres = bench_shortener("postgresql", postgres_url, wrk, args, scripts, workdir)
            # The same database, visits through the Redis Stream: the redirect row only.
            redis_row = bench_shortener(
                "postgresql + Redis", postgres_url, wrk, args, scripts, workdir,
                settings={"SHORTENER_REDIS_URL": args.redis, "SHORTENER_VISIT_STREAM": stream},
                only=("redirect",), seeded=True,
            )  # fmt: skip
        finally:
            drop_schema(args.postgres, schema)
            drop_stream(args.redis, stream)

        slow_clients = bench_slow_clients(f"sqlite:///{workdir / 'bench.db'}", workdir)

    servers = {"sqlite": sqlite, "postgresql": postgres, "postgresql + Redis": redis_row}
    report = build_report(bare, servers, settings, wrk_settings)
    report["slow_clients"] = slow_clients
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    table = render_table(report)
    print("\n" + table)
    print(
        f"\nWith {slow_clients['slow_clients']} slow clients on 127.0.0.2 (sqlite): p99 "
        f"redirect {slow_clients['redirect_p99_ms']} ms, /health "
        f"{slow_clients['health_p99_ms']} ms, {slow_clients['unanswered']} unanswered"
    )
    if not args.no_readme:
        update_readme(table)
    log(f"results: {args.output}")


def bench_slow_clients(url: str, workdir: Path) -> dict:
    """500 slow connections from 127.0.0.2 (bench/slow_clients.py) while redirects and /health
    are timed from 127.0.0.1, against shortener on the seeded database."""
    env = {**os.environ, "SHORTENER_DATABASE_URL": url, "SHORTENER_API_RATE_LIMIT": API_LIMIT}
    auth = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    with Server("wsgi:app", env, "/api/v1.0/", workdir / "slow-clients.log") as server:
        report = measure_slow_clients(server.url, slug=ONE_LINK_SLUG, authorization=auth)
    result = {
        "slow_clients": report.slow_clients,
        "unanswered": len(report.unanswered),
        "redirect_p50_ms": round(report.p50_ms(f"/{ONE_LINK_SLUG}"), 2),
        "redirect_p99_ms": round(report.p99_ms(f"/{ONE_LINK_SLUG}"), 2),
        "health_p50_ms": round(report.p50_ms("/health"), 2),
        "health_p99_ms": round(report.p99_ms("/health"), 2),
        "reopened": report.load.reopened,
    }
    log(f"[slow clients] {result}")
    return result


def build_report(bare: dict, servers: dict, settings: dict, wrk_settings: str) -> dict:
    rows = [{"scenario": "redirect", "server": "bare Flask (dict)", **_numbers(bare, bare)}]
    for name, result in servers.items():
        for scenario, measured in result["scenarios"].items():
            rows.append({"scenario": scenario, "server": f"shortener, {name}",
                         **_numbers(measured, bare)})  # fmt: skip
    targets = []
    for name, minimum in (("sqlite", 0.7), ("postgresql", 0.6), ("postgresql + Redis", 0.6)):
        redirect = servers[name]["scenarios"]["redirect"]
        ratio = redirect["rps"] / bare["rps"]
        targets.append({"target": f"redirect on {name} >= {minimum}x bare",
                        "measured": f"{ratio:.2f}x", "met": ratio >= minimum})  # fmt: skip
        p99_ratio = redirect["p99_ms"] / bare["p99_ms"]
        targets.append({"target": f"redirect p99 on {name} <= 2x bare p99",
                        "measured": f"{p99_ratio:.2f}x", "met": p99_ratio <= 2})  # fmt: skip
        stats_ms = servers[name].get("stats_single_request_ms")
        if stats_ms is not None:
            targets.append({"target": f"stats of a 1M-visit link on {name} < 100 ms",
                            "measured": f"{stats_ms:.1f} ms", "met": stats_ms < 100})  # fmt: skip
        for check in ("exact_check", "wrk_visits_check"):
            targets.append({"target": f"visits recorded = requests sent on {name} ({check})",
                            "measured": json.dumps({k: v for k, v in servers[name][check].items()
                                                    if k != "ok"}),
                            "met": servers[name][check]["ok"]})  # fmt: skip
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "gunicorn": settings,
        "wrk": wrk_settings,
        "rows": rows,
        "targets": targets,
        "servers": servers,
        "bare": bare,
    }


def _numbers(measured: dict, bare: dict) -> dict:
    return {
        "rps": round(measured["rps"]),
        "p50_ms": round(measured["p50_ms"], 2),
        "p99_ms": round(measured["p99_ms"], 2),
        "ratio_to_bare": round(measured["rps"] / bare["rps"], 2),
        "errors": measured["errors"],
    }


def render_table(report: dict) -> str:
    gunicorn = report["gunicorn"]
    lines = [
        f"Measured {report['date']} on {report['machine']['cpus']} cores; every server under "
        f"gunicorn `{gunicorn['worker_class']}`, {gunicorn['workers']} workers, "
        f"up to {gunicorn['worker_connections']} connections each; {report['wrk']}; shortener with "
        f"`SHORTENER_API_RATE_LIMIT={API_LIMIT}` (one credential drives the API rows).",
        "",
        "| Scenario | Server | Requests/s | p50 ms | p99 ms | Ratio to bare | Non-2xx/3xx |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['scenario']} | {row['server']} | {row['rps']:,} | {row['p50_ms']} | "
            f"{row['p99_ms']} | {row['ratio_to_bare']}x | {row['errors']} |"
        )
    lines += ["", "| Target | Measured | Met |", "| --- | --- | --- |"]
    for target in report["targets"]:
        lines.append(
            f"| {target['target']} | {target['measured']} | {'yes' if target['met'] else 'NO'} |"
        )
    return "\n".join(lines)


def update_readme(table: str) -> None:
    content = README.read_text()
    if README_START not in content:
        return
    before, rest = content.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    README.write_text(f"{before}{README_START}\n{table}\n{README_END}{after}")


if __name__ == "__main__":
    main()
