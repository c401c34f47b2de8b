"""Assertions shared by the test modules."""

from __future__ import annotations

JSON_HEADERS = {"Content-Type": "application/json"}


def assert_problem(response, status: int, *, field: str | None = None) -> dict:
    """An RFC 9457 problem with ``status``, no stack trace, and (for 422/400) the field named."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"] and body["title"]
    assert "Traceback" not in response.get_data(as_text=True)
    if field is not None:
        assert field in body["errors"], body
    return body
