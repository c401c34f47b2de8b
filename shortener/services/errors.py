"""Domain exceptions that know their HTTP status and RFC 9457 problem type.

The services raise them; the HTTP layer renders them; the CLI prints their detail.
"""

from __future__ import annotations

from collections.abc import Mapping


class ShortenerError(Exception):
    """Base of every expected failure. ``problem`` names the type at ``/problems/<problem>``."""

    status: int = 500
    title: str = "Internal Server Error"
    problem: str = "about:blank"

    def __init__(
        self,
        detail: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}
        # Members of the problem beyond the standard ones (RFC 9457 extensions): a refused
        # batch's "results".
        self.extensions = dict(extensions) if extensions else {}


class InvalidInput(ShortenerError):
    status = 422
    title = "Invalid input"
    problem = "invalid-input"


class InvalidParameter(ShortenerError):
    status = 400
    title = "Invalid query parameter"
    problem = "invalid-parameter"


class MalformedBody(ShortenerError):
    status = 400
    title = "Malformed request body"
    problem = "malformed-body"


class UnsupportedMediaType(ShortenerError):
    status = 415
    title = "Unsupported media type"
    problem = "unsupported-media-type"


class NotAcceptable(ShortenerError):
    status = 406
    title = "Not acceptable"
    problem = "not-acceptable"


class NotFound(ShortenerError):
    status = 404
    title = "Not found"
    problem = "not-found"


class LinkGone(ShortenerError):
    status = 410
    title = "Link gone"
    problem = "link-gone"


class Forbidden(ShortenerError):
    status = 403
    title = "Forbidden"
    problem = "forbidden"


class SlugTaken(ShortenerError):
    status = 409
    title = "Slug already taken"
    problem = "slug-taken"


class UsernameTaken(ShortenerError):
    status = 409
    title = "Username already taken"
    problem = "username-taken"


class UserOwnsLinks(ShortenerError):
    status = 409
    title = "User still owns links"
    problem = "user-owns-links"


class LastAdmin(ShortenerError):
    status = 409
    title = "Last administrator"
    problem = "last-admin"


class SlugSpaceExhausted(ShortenerError):
    status = 503
    title = "No free slug"
    problem = "slug-space-exhausted"


class Unavailable(ShortenerError):
    status = 503
    title = "Service unavailable"
    problem = "unavailable"


class PreconditionFailed(ShortenerError):
    status = 412
    title = "Precondition failed"
    problem = "precondition-failed"


class PreconditionRequired(ShortenerError):
    status = 428
    title = "Precondition required"
    problem = "precondition-required"


class InvalidIdempotencyKey(ShortenerError):
    status = 400
    title = "Invalid Idempotency-Key"
    problem = "invalid-idempotency-key"


class BatchRefused(ShortenerError):
    """An atomic batch with a failing item: nothing was stored (services/batches.py).
    ``results`` holds the failing items, rendered into the problem by the HTTP layer."""

    results: list[object] = []  # each refusal sets its own


class BatchInvalid(BatchRefused):
    """An atomic batch with an invalid item."""

    status = 422
    title = "Invalid batch item"
    problem = "batch-invalid"


class BatchFailed(BatchRefused):
    """An atomic batch with an item that could not be applied (a slug taken, a link not
    found): nothing was stored."""

    status = 409
    title = "Batch not applied"
    problem = "batch-failed"


class IdempotencyKeyInUse(ShortenerError):
    status = 409
    title = "Idempotency-Key in use"
    problem = "idempotency-key-in-use"


class IdempotencyKeyReused(ShortenerError):
    status = 422
    title = "Idempotency-Key reused"
    problem = "idempotency-key-reused"


class IdempotencyReplayUnavailable(ShortenerError):
    status = 409
    title = "Answer cannot be replayed"
    problem = "idempotency-replay-unavailable"


# Human descriptions served at /problems/<name>, so every problem type dereferences.
PROBLEM_TYPES: dict[str, type[ShortenerError]] = {
    cls.problem: cls
    for cls in (
        InvalidInput,
        InvalidParameter,
        MalformedBody,
        UnsupportedMediaType,
        NotAcceptable,
        NotFound,
        LinkGone,
        Forbidden,
        SlugTaken,
        UsernameTaken,
        UserOwnsLinks,
        LastAdmin,
        SlugSpaceExhausted,
        Unavailable,
        PreconditionFailed,
        PreconditionRequired,
        InvalidIdempotencyKey,
        IdempotencyKeyInUse,
        IdempotencyKeyReused,
        IdempotencyReplayUnavailable,
        BatchInvalid,
        BatchFailed,
    )
}
