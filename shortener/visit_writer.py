"""The visit writer: the one process that writes visits, beside the request workers.

Two ways it runs:

- Under ``shortener serve`` (``python -m shortener.visit_writer --fd N``), started and
  watched by gunicorn's master (``WriterSupervisor``, from shortener/gunicorn_config.py): it
  reads the socket the workers hand visits to and, with ``SHORTENER_REDIS_URL`` set, is also
  a consumer of the Redis Stream. It ignores SIGTERM and SIGINT: the master stops it after the
  workers, by sending ``END`` through the socket, so every visit queued before it is written.
- ``shortener visits work``: only a consumer of the Redis Stream, on any host; SIGTERM or
  SIGINT writes the batch in hand, acknowledges it, and exits.

The writer parses user agents (cached), gathers a batch (``BATCH_SIZE`` visits or
``SHORTENER_VISIT_FLUSH_INTERVAL`` seconds), and writes it in one transaction through
services/visits.VisitWriter; a batch that cannot be written now is kept and retried, and stream
entries are acknowledged only once their batch is committed.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque

from .services.geoip import country_lookup
from .services.visit_handover import END, decode, make_channel
from .services.visit_stream import StreamConsumer
from .services.visits import RawVisit, VisitsNotWritten, VisitWriter
from .services.webhooks import VisitedEvents

logger = logging.getLogger("shortener.visit_writer")

BATCH_SIZE = 1000
# Beyond this many visits read and not yet written, the writer stops reading: the socket
# then fills, then the workers' buffers; stream entries simply wait in Redis.
MAX_IN_HAND = 100_000
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
# At a graceful stop, how long the writer keeps retrying a database that is unavailable.
FINAL_WRITE_SECONDS = 20.0
# The master's wait for the writer to write everything, and its pause between restarts.
STOP_SECONDS = 30.0
RESTART_SECONDS = 1.0
# A writer whose master died (kill -9) writes for this long, while the orphaned workers
# finish and hand over what they hold, then stops.
ORPHAN_SECONDS = 10.0


class Writer:
    """Gathers visits from its sources and writes them in batches."""

    def __init__(self, writer: VisitWriter, *, flush_interval: float) -> None:
        self.writer = writer
        self.flush_interval = flush_interval
        # (visit, stream entry id or None), appended by the reader threads.
        self.incoming: deque[tuple[RawVisit, bytes | None]] = deque()
        self.ending = threading.Event()
        self.readers: list[threading.Thread] = []
        self.consumer: StreamConsumer | None = None

    # -- sources ------------------------------------------------------------------------
    def read_socket(self, channel: socket.socket) -> None:
        self._start(self._socket_loop, channel, "visit-socket")

    def read_stream(self, consumer: StreamConsumer) -> None:
        self.consumer = consumer
        self._start(self._stream_loop, consumer, "visit-stream")

    def _start(self, target, source, name: str) -> None:
        thread = threading.Thread(target=target, args=(source,), name=name, daemon=True)
        self.readers.append(thread)
        thread.start()

    def _socket_loop(self, channel: socket.socket) -> None:
        channel.setblocking(True)
        channel.settimeout(0.5)
        while True:
            self._wait_for_room()
            try:
                datagram = channel.recv(1 << 17)
            except TimeoutError:
                if self.ending.is_set():  # stopping without END (the master is gone)
                    return
                continue
            except OSError as error:
                logger.error("the visit socket failed (%s); stopping", error)
                self.ending.set()
                return
            if datagram == END:
                self.ending.set()
                return
            for line in datagram.split(b"\n"):
                self._take(line, None)

    def _stream_loop(self, consumer: StreamConsumer) -> None:
        failing_since = None
        while not self.ending.is_set():
            self._wait_for_room()
            try:
                entries = consumer.read(BATCH_SIZE, min(self.flush_interval, 1.0))
            except Exception as error:  # redis.RedisError, and OSError below it
                if failing_since is None:
                    failing_since = time.monotonic()
                    logger.warning("cannot read the visit stream (%s); retrying", error)
                self.ending.wait(1.0)
                continue
            if failing_since is not None:
                logger.info("reading the visit stream again")
                failing_since = None
            for entry_id, payload in entries:
                self._take(payload, entry_id)

    def _take(self, line: bytes | None, entry_id: bytes | None) -> None:
        try:
            visit = decode(line)
        except (ValueError, TypeError) as error:
            logger.error("dropped a record that is not a visit: %s", error)
            if entry_id is not None and self.consumer is not None:
                self.incoming.append((None, entry_id))  # acknowledged with its batch
            return
        self.incoming.append((visit, entry_id))

    def _wait_for_room(self) -> None:
        while len(self.incoming) >= MAX_IN_HAND and not self.ending.is_set():
            time.sleep(0.05)

    # -- writing ------------------------------------------------------------------------
    def run(self) -> None:
        """Writes until ``ending`` is set and everything read is written (or given up)."""
        held: list[tuple[RawVisit | None, bytes | None]] = []
        failures = 0
        next_write = time.monotonic() + self.flush_interval
        while True:
            ending = self.ending.is_set() and not any(t.is_alive() for t in self.readers)
            while self.incoming and len(held) < BATCH_SIZE:
                held.append(self.incoming.popleft())
            due = len(held) >= BATCH_SIZE or time.monotonic() >= next_write or ending
            if held and due:
                if self._write(held):
                    held, failures = [], 0
                else:
                    failures += 1
                    if ending and failures * 2 > FINAL_WRITE_SECONDS:
                        logger.error("stopping with %d visits unwritten", len(held))
                        held = []
                    else:
                        time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])
                next_write = time.monotonic() + self.flush_interval
                continue
            if ending and not held and not self.incoming:
                return
            if not held or not due:
                time.sleep(min(0.02, max(0.0, next_write - time.monotonic())) or 0.005)

    def _write(self, held) -> bool:
        visits = [visit for visit, _ in held if visit is not None]
        try:
            if visits:
                self.writer.write(visits)
        except VisitsNotWritten as error:
            logger.warning("could not write %d visits; will retry (%s)", len(visits), error)
            return False
        entry_ids = [entry_id for _, entry_id in held if entry_id is not None]
        if entry_ids and self.consumer is not None:
            try:
                self.consumer.done(entry_ids)
            except Exception as error:
                # Written, not acknowledged: another consumer may write them again, and the
                # uids make that a no-op.
                logger.warning("could not acknowledge %d visits (%s)", len(entry_ids), error)
        return True


# -- the process ------------------------------------------------------------------------
def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="[%(asctime)s] [%(process)d] [visit-writer] [%(levelname)s] %(message)s",
        stream=sys.stderr,
    )


def _consumer(settings, name: str | None) -> StreamConsumer | None:
    if not settings.redis_url:
        return None
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    return StreamConsumer(
        settings.redis_url, settings.visit_stream, name, claim_idle=settings.visit_claim_idle
    )


def _build(app) -> Writer:
    services, settings = app.extensions["shortener"], app.extensions["shortener.settings"]
    writer = VisitWriter(
        services.database,
        anonymize_ips=settings.anonymize_ips,
        country_of=country_lookup(settings.geoip_db),
    )
    writer.on_written = VisitedEvents()  # link.visited webhooks; one cheap check per batch
    return Writer(writer, flush_interval=settings.visit_flush_interval)


def work(app, name: str | None) -> None:
    """``shortener visits work``: a consumer of the Redis Stream until SIGTERM or SIGINT."""
    settings = app.extensions["shortener.settings"]
    writer = _build(app)
    consumer = _consumer(settings, name)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: writer.ending.set())
    logger.info("consumer %s of %s started", consumer.name, settings.visit_stream)
    writer.read_stream(consumer)
    writer.run()
    consumer.close()
    logger.info("consumer %s stopped", consumer.name)


def serve_writer(fd: int) -> None:
    """The writer under ``shortener serve``: the socket, and the stream when configured."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)  # the master stops us after its workers
    from . import create_app

    app = create_app()
    settings = app.extensions["shortener.settings"]
    writer = _build(app)
    writer.read_socket(socket.socket(fileno=fd))
    consumer = _consumer(settings, None)
    if consumer is not None:
        writer.read_stream(consumer)
    master = os.getppid()
    threading.Thread(target=_watch_master, args=(master, writer), daemon=True).start()
    logger.info("started (pid %d)", os.getpid())
    writer.run()
    if consumer is not None:
        consumer.close()
    logger.info("stopped: every visit handed over is written")


def _watch_master(master: int, writer: Writer) -> None:
    while os.getppid() == master:
        if writer.ending.wait(0.5):
            return
    logger.error("the master is gone; writing for %.0f s more, then stopping", ORPHAN_SECONDS)
    time.sleep(ORPHAN_SECONDS)
    writer.ending.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The visit writer of shortener serve.")
    parser.add_argument("--fd", type=int, required=True, help="the socket's receiving end")
    args = parser.parse_args(argv)
    _configure_logging()
    serve_writer(args.fd)


# -- the supervisor (in gunicorn's master) ----------------------------------------------
class WriterSupervisor:
    """Starts the writer before the workers are forked, restarts it when it dies, and stops
    it last. The master keeps both ends of the socket: a writer's death loses nothing queued
    in it."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger
        self.sending, self.receiving = make_channel()
        self.process: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="visit-writer-watch")
        self._watcher.daemon = True
        self._watcher.start()

    def _spawn(self) -> None:
        fd = self.receiving.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shortener.visit_writer", "--fd", str(fd)],
            pass_fds=(fd,),
        )
        self.log.info("visit writer started (pid %d)", self.process.pid)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                if self._stop.is_set() or self.process.poll() is None:
                    continue
                self.log.error(
                    "visit writer (pid %d) exited (%s); restarting",
                    self.process.pid,
                    self.process.returncode,
                )
            if self._stop.wait(RESTART_SECONDS):
                return
            with self._lock:
                if not self._stop.is_set():
                    self._spawn()

    def stop(self) -> None:
        """After the workers: END through the socket, then wait for the writer to write."""
        with self._lock:
            self._stop.set()
            if self.process is None or self.process.poll() is not None:
                self._spawn()  # what is queued in the socket still needs a writer
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            try:
                self.sending.send(END)
                break
            except BlockingIOError:
                select.select([], [self.sending], [], 0.2)
        try:
            self.process.wait(max(0.1, deadline - time.monotonic()))
            self.log.info("visit writer stopped")
        except subprocess.TimeoutExpired:
            self.log.error("visit writer did not finish in %.0f s; killing it", STOP_SECONDS)
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    main()
