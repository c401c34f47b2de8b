"""Against a real gunicorn (issue 7): what the server answers before, or instead of, the app.

- A 413 on a kept-alive connection: the client's next request on it still gets its answer.
- Requests gunicorn refuses itself (a request line or headers too large, a malformed request)
  are answered with problem+json like every other error, and the connection is closed.
"""

from __future__ import annotations

import base64
import json
import socket

import pytest
import requests

pytestmark = pytest.mark.integration

TIMEOUT = 30
LINKS = "/api/v1.0/links"
PROBLEM_JSON = "application/problem+json"
MAX_BODY = 64 * 1024


def oversized_body(size: int) -> str:
    return '{"target": "https://example.com/", "title": "' + "x" * size + '"}'


@pytest.mark.parametrize("size", [MAX_BODY + 1, 1024 * 1024, 8 * 1024 * 1024])
def test_after_413s_a_keep_alive_client_gets_its_next_answer(live_server, size):
    """Several oversized POSTs on one requests.Session, then a normal request: every one is
    answered (the server closes the connection after a 413, and requests opens a new one)."""
    body = oversized_body(size)
    with requests.Session() as session:
        session.auth = live_server.admin
        for _ in range(4):
            response = session.post(
                live_server.url + LINKS,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=TIMEOUT,
            )
            assert response.status_code == 413, response.text
            assert response.headers["Content-Type"].split(";")[0] == PROBLEM_JSON
            assert response.headers.get("Connection", "").lower() == "close"
        after = session.get(live_server.url + LINKS, timeout=TIMEOUT)
        assert after.status_code == 200, after.text
        root = session.get(live_server.url + "/api/v1.0/", timeout=TIMEOUT)
        assert root.status_code == 200


def test_a_normal_request_keeps_the_connection_alive(live_server):
    """Only refusals close: an ordinary answer leaves the connection open for the next one."""
    with requests.Session() as session:
        response = session.get(live_server.url + "/api/v1.0/", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.headers.get("Connection", "").lower() != "close"


# -- errors gunicorn raises before the app runs -------------------------------------------------


class RawAnswer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(" ", 2)[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def problem(self) -> dict:
        assert self.headers["content-type"].split(";")[0] == PROBLEM_JSON, self.headers
        assert int(self.headers["content-length"]) == len(self.body)
        assert self.headers["connection"].lower() == "close"
        body = json.loads(self.body)
        assert body["status"] == self.status
        assert body["type"] == "about:blank"
        assert body["title"] and body["detail"]
        assert "Traceback" not in body["detail"] and "<" not in body["detail"]
        return body


def send_raw(server, request: bytes) -> RawAnswer:
    """Sends bytes as they are and reads until the server closes the connection."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    assert raw, "the server closed the connection without an answer"
    return RawAnswer(raw)


def request_bytes(target: str = "/api/v1.0/", *headers: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


GUNICORN_REFUSALS = [
    # id, request bytes, status, title
    (
        "request-line-too-long",
        request_bytes("/" + "a" * 9000),
        414,
        "Request-URI Too Long",
    ),
    (
        "header-too-large",
        request_bytes("/api/v1.0/", "X-Big: " + "b" * 9000),
        431,
        "Request Header Fields Too Large",
    ),
    (
        "too-many-headers",
        request_bytes("/api/v1.0/", *(f"X-H{n}: v" for n in range(120))),
        431,
        "Request Header Fields Too Large",
    ),
    ("garbage-request-line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, None),
    ("no-http-version", b"GET /api/v1.0/\r\n\r\n", 400, None),
    ("bad-method", request_bytes(method="G(ET"), 400, None),
    ("bad-http-version", b"GET /api/v1.0/ HTTP/9.x\r\nHost: a\r\n\r\n", 400, None),
    ("invalid-header-name", request_bytes("/api/v1.0/", "Bad Name: x"), 400, None),
    ("header-without-colon", request_bytes("/api/v1.0/", "NoColonHere"), 400, None),
    (
        "bad-content-length",
        request_bytes("/api/v1.0/", "Content-Length: nope", method="POST"),
        400,
        None,
    ),
    (
        "two-content-lengths",
        request_bytes("/api/v1.0/", "Content-Length: 1", "Content-Length: 2", method="POST")
        + b"xy",
        400,
        None,
    ),
]


@pytest.mark.parametrize(
    "request_, status, title",
    [pytest.param(*case[1:], id=case[0]) for case in GUNICORN_REFUSALS],
)
def test_gunicorn_refusals_are_problem_json(live_server, request_, status, title):
    answer = send_raw(live_server, request_)
    assert answer.status == status, (answer.status_line, answer.body[:300])
    body = answer.problem()
    if title is not None:
        assert body["title"] == title
    assert body["title"] == answer.status_line.split(" ", 2)[2]


def test_a_malformed_chunked_body_read_by_the_app_is_answered(live_server):
    """The app reads the body and gunicorn finds it malformed: an answer, never a hang or an
    HTML page, and nothing is stored."""
    credentials = base64.b64encode(":".join(live_server.admin).encode()).decode()
    request_ = request_bytes(
        LINKS,
        f"Authorization: Basic {credentials}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        method="POST",
    )

    def newest_link() -> str | None:
        # The server may be shared with other modules: compare before and after, not with [].
        page = requests.get(
            live_server.url + LINKS, params={"limit": 1}, auth=live_server.admin, timeout=TIMEOUT
        ).json()["links"]
        return page[0]["uri"] if page else None

    before = newest_link()
    answer = send_raw(live_server, request_ + b"zz\r\n{}\r\n0\r\n\r\n")
    assert answer.status in (400, 422), (answer.status_line, answer.body[:300])
    assert answer.headers["content-type"].split(";")[0] == PROBLEM_JSON
    assert newest_link() == before


def test_the_server_keeps_serving_after_refusals(live_server):
    for case in GUNICORN_REFUSALS:
        send_raw(live_server, case[1])
    assert requests.get(live_server.url + "/api/v1.0/", timeout=TIMEOUT).status_code == 200
