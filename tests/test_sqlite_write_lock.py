"""SQLite's write lock, held by another process: a write waits for it in sleeps that let the
rest of the worker run (storage/engine.py's _begin_writing), then takes it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from conftest import PASSWORD, make_app

from shortener.services.actors import OPERATOR

LINKS = "/api/v1.0/links"
ALICE = ("alice", PASSWORD)

# Holds the write lock of the database at argv[1] until a line arrives on stdin.
HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
connection.close()
"""

# Holds the write lock of the database at argv[1] for argv[2] seconds.
TIMED_HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
connection.close()
"""

# In a gevent-patched process, as in a gevent worker: one greenlet writes while another
# process holds the lock for half a second, another greenlet ticks meanwhile. Prints the
# ticks seen while the write waited, and whether the write succeeded.
GEVENT_WRITER = """
from gevent import monkey

monkey.patch_all()

import subprocess, sys, time

import gevent

from shortener.storage import Database

database = Database(sys.argv[1])
holder = subprocess.Popen(
    [sys.executable, "-c", sys.argv[2], database.sqlite_path, "0.5"],
    stdout=subprocess.PIPE, text=True,
)
assert holder.stdout.readline().strip() == "locked"
ticks = []
writing = True

def tick():
    while writing:
        ticks.append(time.monotonic())
        gevent.sleep(0.01)

def write():
    global writing
    with database.write() as connection:
        connection.exec_driver_sql("CREATE TABLE waited (x INTEGER)")
    writing = False

gevent.joinall([gevent.spawn(tick), gevent.spawn(write)])
holder.wait(timeout=10)
holder.stdout.close()
with database.read() as connection:
    connection.exec_driver_sql("SELECT count(*) FROM waited").scalar()
database.dispose()
print(len(ticks), "written")
"""


def test_a_write_waits_for_another_process_s_lock_then_succeeds(tmp_path):
    path = tmp_path / "shortener.db"
    app = make_app(f"sqlite:///{path}", VISIT_FLUSH_INTERVAL=60)
    services = app.extensions["shortener"]
    try:
        services.users.create(OPERATOR, username="alice", password=PASSWORD)
        client = app.test_client()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "locked"
        # Released from another thread while the POST below waits for the lock.
        threading.Timer(0.3, lambda: (holder.stdin.write("\n"), holder.stdin.flush())).start()
        response = client.post(LINKS, json={"target": "https://example.com/"}, auth=ALICE)
        holder.wait(timeout=10)
        holder.stdin.close()
        holder.stdout.close()
        assert response.status_code == 201, response.get_json()
        slug = response.get_json()["slug"]
        assert client.get(f"{LINKS}/{slug}", auth=ALICE).status_code == 200
    finally:
        services.close()


def test_greenlets_run_while_a_write_waits_for_the_lock(tmp_path):
    """SQLite's own busy handler sleeps inside the C library and would block every greenlet
    of the worker for the whole wait; ours yields."""
    path = tmp_path / "shortener.db"
    make_app(f"sqlite:///{path}").extensions["shortener"].close()  # migrated, then closed
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GEVENT_WRITER), f"sqlite:///{path}", TIMED_HOLDER],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    ticks, written = finished.stdout.split()
    assert written == "written"
    # 0.5 s of waiting at one tick per 10 ms: blocked in C, it would be one or two.
    assert int(ticks) >= 10, finished.stdout
