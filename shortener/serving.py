"""The gunicorn workers ``shortener serve`` runs: gunicorn's gevent worker (the default) or its
gthread worker, each with these changes.

- What gunicorn refuses itself, before the app runs (a request line or headers too large, a
  request that is not HTTP), is answered with problem+json like every other error, instead of
  gunicorn's HTML page; the connection is closed, as gunicorn closes it.
- An error answer to a request whose body the app may not have read (a 413, or any error to
  a large or chunked body) says ``Connection: close``. gunicorn drains at most 64 KiB of an
  unread body after the answer and otherwise drops the connection, which would break a
  client that believed the ``keep-alive`` it was told.
- A body that turns out malformed while the app reads it (a bad chunk size, a client gone
  mid-body) is a 400 from the app's own error renderer, not a 500.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus

from gunicorn import util
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.workers.ggevent import GeventWorker
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.exceptions import BadRequest, ClientDisconnected

PROBLEM_JSON = "application/problem+json"
# gunicorn reads and discards this much of a body the app left unread (gunicorn.http.parser).
GUNICORN_DRAINS = 64 * 1024
MAX_DETAIL = 200
_GUNICORN_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
_GUNICORN_MESSAGE = re.compile(r"</h1>\s*(.*?)\s*</body>", re.DOTALL)


class ProblemAnswers:
    """Mixed into a gunicorn worker: its own errors are answered as problem+json, and the app
    runs under CloseAfterUnreadBody."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = CloseAfterUnreadBody(self.wsgi)

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn decides the status, logs and writes the access log line; we write the
        answer. Its HTML page is caught on the way out and turned into a problem."""
        page = _WrittenBytes()
        super().handle_error(req, page, addr, exc)
        status, message = page.status_and_message()
        if status is None:  # not the page we know: send what gunicorn wrote, as it wrote it
            answer = page.written()
        else:
            answer = problem_bytes(status, self._detail(status, message))
        if not answer:
            return
        try:
            util.write_nonblock(client, answer)
        except Exception:  # noqa: BLE001 - the client may be gone; gunicorn ignores this too
            self.log.debug("Failed to send error message.")

    def _detail(self, status: int, message: str) -> str:
        if status == 414:
            return (
                f"The request line is longer than this server accepts "
                f"({self.cfg.limit_request_line} bytes)."
            )
        if status == 431:
            return (
                f"The request has more header fields ({self.cfg.limit_request_fields}) or "
                f"longer ones ({self.cfg.limit_request_field_size} bytes) than this server "
                "accepts."
            )
        if status == 500:
            return "The server failed; the error has been logged."
        if status == 400:
            return (
                f"The request is not valid HTTP/1.1: {message}."
                if message
                else ("The request is not valid HTTP/1.1.")
            )
        return message or HTTPStatus(status).phrase + "."


class ProblemGeventWorker(ProblemAnswers, GeventWorker):
    """gunicorn's ``gevent`` worker (the default of ``shortener serve``): a connection is a
    greenlet, so a client that sends its request slowly holds a few KiB, not a thread."""


class ProblemThreadWorker(ProblemAnswers, ThreadWorker):
    """gunicorn's ``gthread`` worker: a connection being read holds one of its threads."""


def problem_bytes(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 answer: an RFC 9457 problem shaped like shortener/problems.py's."""
    phrase = HTTPStatus(status).phrase
    body = (
        json.dumps({"type": "about:blank", "title": phrase, "status": status, "detail": detail})
        + "\n"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class _WrittenBytes:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def gettimeout(self) -> float:
        return 0.0  # "non-blocking": gunicorn then writes without touching the socket's mode

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self._chunks.append(bytes(data))

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def written(self) -> bytes:
        return b"".join(self._chunks)

    def status_and_message(self) -> tuple[int | None, str]:
        """The status gunicorn chose and its message, without HTML and client bytes that do
        not print."""
        written = self.written()
        match = _GUNICORN_STATUS_LINE.match(written)
        if match is None:
            return None, ""
        found = _GUNICORN_MESSAGE.search(written.decode("latin-1"))
        message = html.unescape(found.group(1)) if found else ""
        message = "".join(char if " " <= char <= "~" else "?" for char in message)
        if len(message) > MAX_DETAIL:
            message = message[: MAX_DETAIL - 3] + "..."
        return int(match.group(1)), message


class CloseAfterUnreadBody:
    """WSGI middleware: an error answer to a request with a body beyond what gunicorn drains
    (or of unknown length) closes the connection, and so does every 413.

    The app is kept as ``application`` (gunicorn_config.py's ``worker_exit`` uses it).
    """

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        body_length = _body_length(environ)
        if body_length == 0:  # most requests, redirects all: nothing to watch
            return self.application(environ, start_response)
        environ["wsgi.input"] = _BadBodyIsBadRequest(environ["wsgi.input"])

        def start(status: str, headers, exc_info=None):
            code = int(status[:3])
            if code == 413 or (
                code >= 400 and (body_length is None or body_length > GUNICORN_DRAINS)
            ):
                _force_close(start_response)
            return start_response(status, headers, exc_info)

        return self.application(environ, start)


def _body_length(environ) -> int | None:
    """The declared body length; None when unknown (chunked), which counts as large."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


def _force_close(start_response) -> None:
    """gunicorn's Response (whose ``start_response`` the app is given) sends
    ``Connection: close`` and then closes; an app's own Connection header would be dropped."""
    response = getattr(start_response, "__self__", None)
    if response is not None and hasattr(response, "force_close"):
        response.force_close()


class _BadBodyIsBadRequest:
    """gunicorn's request body, whose parse errors reach the app as Werkzeug's 400s."""

    def __init__(self, body) -> None:
        self._body = body

    def read(self, size=None) -> bytes:
        with _as_bad_request():
            return self._body.read(size)

    def readline(self, size=None) -> bytes:
        with _as_bad_request():
            return self._body.readline(size)

    def readlines(self, size=None) -> list[bytes]:
        with _as_bad_request():
            return self._body.readlines(size)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        with _as_bad_request():
            return next(self._body)


@contextmanager
def _as_bad_request() -> Iterator[None]:
    try:
        yield
    except NoMoreData:
        raise ClientDisconnected("The client went away before sending the whole body.") from None
    except ParseException as error:
        raise BadRequest(f"The request body is malformed: {error}") from None
