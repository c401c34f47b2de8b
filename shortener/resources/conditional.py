"""Conditional requests and Idempotency-Key at the HTTP edge, for operations that declare
``etag=True`` or ``idempotent=True`` (see declarations.py); the rules live in the services
(services/preconditions.py, services/idempotency.py).

- ``ETag``: strong, from the record (``entity_tag``) on the answers that carry one; weak, a
  digest of the body, on collection pages.
- ``If-None-Match`` on GET: ``304`` with no body when it matches (weak comparison).
- ``If-Match`` on PUT, PATCH and DELETE: parsed into a ``Precondition`` the service checks
  inside its write transaction (412, or 428 with SHORTENER_REQUIRE_IF_MATCH).
- ``Idempotency-Key`` on POST: claim, run once, keep a successful answer, replay it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from flask import Response, current_app, request

from ..auth import current_credential
from ..services.idempotency import Answer, checked_key, fingerprint
from ..services.preconditions import Precondition, entity_tag
from ..storage import DatabaseUnavailable
from .http import JSON, services

logger = logging.getLogger(__name__)

REPLAYED = "Idempotency-Replayed"
_READS = ("GET", "HEAD")
WRITES = ("PUT", "PATCH", "DELETE")


def precondition() -> Precondition:
    """The request's If-Match; weak tags never match it (RFC 9110 strong comparison)."""
    required = current_app.extensions["shortener.settings"].require_if_match
    if "If-Match" not in request.headers:
        return Precondition(required=required)
    tags = request.if_match
    if tags.star_tag:
        return Precondition(any=True, required=required)
    return Precondition(tags=frozenset(tags.as_set()), required=required)


def tag_record(response: Response, record: object) -> None:
    """The record's strong tag on an answer that carries its representation."""
    if 200 <= response.status_code < 300 and response.status_code != 204:
        response.headers["ETag"] = str(entity_tag(record))


def tag_page(response: Response) -> None:
    """A weak tag for a collection page: a digest of what it shows."""
    if response.status_code == 200:
        response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32], weak=True)


def not_modified(response: Response) -> Response:
    """304 with no body when If-None-Match matches the answer's tag."""
    etag = response.headers.get("ETag")
    if (
        request.method in _READS
        and response.status_code == 200
        and etag is not None
        and request.if_none_match.contains_weak(response.get_etag()[0])
    ):
        unchanged = Response(status=304)
        unchanged.headers["ETag"] = etag
        return unchanged
    return response


def idempotent(run: Callable[[], Response], *, replayable: bool) -> Response:
    """Runs a POST once per Idempotency-Key and credential; repeats get the kept answer.
    ``replayable`` False (a token's secret): the answer is kept without its body."""
    sent = request.headers.get("Idempotency-Key")
    if sent is None:
        return run()
    key = checked_key(sent)
    credential = current_credential()
    uri = request.path
    if request.query_string:
        uri += "?" + request.query_string.decode("latin-1")
    # Cached, so the body parser reads the same bytes (413 past the limit, as it would).
    body = request.get_data(cache=True)
    keys = services().idempotency
    outcome = keys.claim(
        user_id=credential.user.id,
        token_id=credential.token_id,
        key=key,
        fingerprint=fingerprint(request.method, uri, body),
    )
    if isinstance(outcome, Answer):
        return _replay(outcome)
    try:
        response = run()
    except BaseException:
        _release(keys, outcome)
        raise
    if 200 <= response.status_code < 300:
        keys.complete(
            outcome,
            Answer(
                response.status_code,
                response.headers.get("Location"),
                response.headers.get("ETag"),
                response.get_data(as_text=True) if replayable else None,
            ),
        )
    else:  # only successes are kept: the client may correct the request and reuse the key
        _release(keys, outcome)
    return response


def _release(keys, claim) -> None:
    try:
        keys.release(claim)
    except DatabaseUnavailable as error:  # the claim is taken over once it is abandoned
        logger.warning("could not release an Idempotency-Key claim: %s", error)


def _replay(answer: Answer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype=JSON)
    if answer.location:
        response.headers["Location"] = answer.location
    if answer.etag:
        response.headers["ETag"] = answer.etag
    response.headers[REPLAYED] = "true"
    return response
