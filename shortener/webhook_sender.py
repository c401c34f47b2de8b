"""The webhook sender: delivers the outbox (``webhook_messages``) outside any request.

Under ``shortener serve`` it is a process of its own beside the workers, started, restarted
and stopped by gunicorn's master (``SenderSupervisor``, from shortener/gunicorn_config.py),
like the visit writer: a slow or dead receiver never holds a worker, a redirect or an API
answer. Every ``SHORTENER_WEBHOOK_POLL_INTERVAL`` seconds it takes the messages whose time
has come, claims each (so senders on several hosts never send one message at once) and
POSTs it, signed per the Standard Webhooks specification (``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>``).

A 2xx answer delivers a message. Anything else (another status, a redirect, a timeout, a
refused address) is retried with exponential backoff (5 s, 10 s, 20 s ... at most an hour
apart) until it is 24 hours old; 410 Gone disables the webhook at once, as the specification
advises, and so do 20 failures in a row (the policy: services/webhooks.WebhookOutbox). The
target's host is resolved and every address checked when the sender connects, and the
connection goes to the address checked: a private, loopback or link-local one is refused
unless ``SHORTENER_WEBHOOK_ALLOW_PRIVATE`` is set. Finished
messages are deleted after 30 days.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .services.actors import utcnow
from .services.webhooks import Attempt, WebhookOutbox, refused_address
from .storage import Database, DatabaseUnavailable
from .storage.webhook_queries import DueMessage

logger = logging.getLogger("shortener.webhook_sender")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
BATCH = 100
SENDING_THREADS = 8
USER_AGENT = "shortener-webhooks/1"
STOP_SECONDS = 20.0
RESTART_SECONDS = 1.0
PURGE_SECONDS = 3600.0


class AddressRefused(OSError):
    """The target's host resolves to an address webhooks may not reach."""


class _CheckedConnection:
    """Mixed into urllib3's connections: the host is resolved once, every address it has is
    checked, and the connection goes to a checked address. Checking a name and then letting
    the HTTP client resolve it again would let its DNS answer change in between."""

    def _new_conn(self):
        name = self._dns_host
        try:
            found = socket.getaddrinfo(name, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        addresses = [address[0] for *_, address in found]
        for address in addresses:
            if refused_address(address):
                refused = AddressRefused(
                    f"{self.host} resolves to {address}, a private, loopback or link-local "
                    "address; set SHORTENER_WEBHOOK_ALLOW_PRIVATE to allow it."
                )
                raise NewConnectionError(self, str(refused)) from refused
        self._dns_host = addresses[0]  # only while connecting: TLS still checks the name
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _CheckedHTTPConnection(_CheckedConnection, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnection, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAddresses(HTTPAdapter):
    """A requests adapter whose connections reach only global addresses."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }


def _refusal(failure: BaseException) -> AddressRefused | None:
    """The AddressRefused behind a requests exception, if that is what it was."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [failure]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return None


class Sender:
    """Takes due messages from the outbox (services/webhooks.WebhookOutbox, which also keeps
    the retry policy) and POSTs them; ``clock`` is injectable."""

    def __init__(
        self,
        database: Database,
        *,
        allow_private: bool = False,
        clock: Callable[[], datetime] = utcnow,
        threads: int = SENDING_THREADS,
    ) -> None:
        self.outbox = WebhookOutbox(database, clock=clock)
        self.allow_private = allow_private
        self.clock = clock
        self.threads = threads
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment: the address is ours
        if not allow_private:
            for scheme in ("http://", "https://"):
                self.session.mount(scheme, CheckedAddresses())

    def run_once(self) -> int:
        """Sends what is due now; returns how many messages it attempted."""
        claimed = self.outbox.due(BATCH)
        if self.threads <= 1 or len(claimed) <= 1:
            for message in claimed:
                self.deliver(message)
        else:
            with ThreadPoolExecutor(min(self.threads, len(claimed))) as pool:
                list(pool.map(self.deliver, claimed))
        return len(claimed)

    def deliver(self, message: DueMessage) -> None:
        """One attempt, recorded with its outcome."""
        attempted_at = self.clock()
        started = time.monotonic()
        status_code, error = None, None
        try:
            response = self.session.post(
                message.url,
                data=message.payload.encode(),
                headers=self.headers(message, attempted_at),
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=False,
                stream=True,  # the body is never read
            )
            response.close()
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"The receiver answered {status_code}."
        except requests.RequestException as failure:
            refused = _refusal(failure)
            error = str(refused) if refused else f"{type(failure).__name__}: {failure}"
        response_ms = round((time.monotonic() - started) * 1000)
        try:
            self.outbox.record(message, Attempt(attempted_at, status_code, response_ms, error))
        except DatabaseUnavailable as failure:
            # The claim runs out and the message is sent again: at least once.
            logger.warning("could not record a delivery of %s (%s)", message.uid, failure)

    @staticmethod
    def headers(message: DueMessage, at: datetime) -> dict[str, str]:
        signature = Webhook(message.secret).sign(message.uid, at, message.payload)
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message.uid,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }

    def serve(self, stop: threading.Event, poll_interval: float) -> None:
        """Sends until ``stop`` is set; a database that is unavailable is waited for. Once
        an hour, finished messages over 30 days old are deleted."""
        next_purge = time.monotonic()
        while not stop.is_set():
            try:
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + PURGE_SECONDS
                    if purged := self.outbox.purge():
                        logger.info("deleted %d finished webhook messages", purged)
                sent = self.run_once()
            except DatabaseUnavailable as failure:
                logger.warning("cannot read the webhook outbox (%s); retrying", failure)
                sent = 0
            except Exception:  # noqa: BLE001 - the sender must outlive one bad round
                logger.exception("a round of webhook deliveries failed")
                sent = 0
            if sent < BATCH:
                stop.wait(poll_interval)
        self.session.close()


# -- the process ------------------------------------------------------------------------
def _build(app) -> tuple[Sender, float]:
    services, settings = app.extensions["shortener"], app.extensions["shortener.settings"]
    sender = Sender(services.database, allow_private=settings.webhook_allow_private)
    return sender, settings.webhook_poll_interval


def work(app) -> None:
    """Sends until SIGTERM or SIGINT (the attempt in hand is finished and recorded)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sender, poll_interval = _build(app)
    logger.info("started (pid %d)", os.getpid())
    sender.serve(stop, poll_interval)
    logger.info("stopped")


def main(argv: list[str] | None = None) -> None:
    """``python -m shortener.webhook_sender``: the process ``SenderSupervisor`` starts."""
    parser = argparse.ArgumentParser(description="The webhook sender of shortener serve.")
    parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="[%(asctime)s] [%(process)d] [webhook-sender] [%(levelname)s] %(message)s",
        stream=sys.stderr,
    )
    from . import create_app

    work(create_app())


class SenderSupervisor:
    """In gunicorn's master: starts the sender, restarts it when it dies, stops it (SIGTERM:
    the attempt in hand is finished and recorded; the outbox keeps everything else)."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger
        self.process: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._spawn()
        threading.Thread(target=self._watch, name="webhook-sender-watch", daemon=True).start()

    def _spawn(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "shortener.webhook_sender"])
        self.log.info("webhook sender started (pid %d)", self.process.pid)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if self._stop.is_set() or self.process.poll() is None:
                    continue
                self.log.error(
                    "webhook sender (pid %d) exited (%s); restarting",
                    self.process.pid,
                    self.process.returncode,
                )
            if self._stop.wait(RESTART_SECONDS):
                return
            with self._lock:
                if not self._stop.is_set():
                    self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
            self.log.info("webhook sender stopped")
        except subprocess.TimeoutExpired:
            self.log.error("webhook sender did not stop in %.0f s; killing it", STOP_SECONDS)
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
