"""The webhook representation, what a client sends to create or change one, and the
delivery attempts."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..services.webhooks import EVENTS, TAGS_MAX, URL_MAX_LENGTH
from ..storage.webhook_queries import DeliveryRecord, WebhookRecord
from .fields import URI, Instant, Matches, StrictBoolean, Username, absolute_uri, uri_to
from .pages import PageQuery

# A tag as links hold them: 1-64 letters, digits, '-', '_', '.', ':' and spaces.
TAG_PATTERN = r"[\w\-.: ]{1,64}"


def webhook_uri(webhook: WebhookRecord) -> str:
    return absolute_uri("webhook", webhook_id=str(webhook.id))


def _deliveries_uri(webhook: WebhookRecord) -> str:
    return absolute_uri("webhook_deliveries", webhook_id=str(webhook.id))


class WebhookSchema(Schema):
    class Meta:
        unknown = RAISE

    uri = fields.Function(webhook_uri, dump_only=True, metadata=URI)
    url = fields.Url(
        required=True,
        relative=False,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=URL_MAX_LENGTH),
        metadata={
            "format": "uri",
            "description": "Where deliveries are POSTed: http or https, never a private, "
            "loopback or link-local address (unless SHORTENER_WEBHOOK_ALLOW_PRIVATE).",
        },
    )
    events = fields.List(
        fields.String(
            validate=validate.OneOf(EVENTS, error="Unknown event '{input}'; choose from {choices}.")
        ),
        required=True,
        validate=validate.Length(min=1, error="Give at least one event."),
        metadata={"uniqueItems": True, "description": "The events to deliver."},
    )
    tags = fields.List(
        fields.String(
            validate=Matches(
                TAG_PATTERN,
                error="Must be 1 to 64 letters, digits, '-', '_', '.', ':' or spaces.",
            )
        ),
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=TAGS_MAX),
        metadata={
            "description": "Only links with at least one of these tags (any case); null or "
            "empty (the default): every link of the owner."
        },
    )
    active = StrictBoolean(
        load_default=True,
        metadata={
            "description": "false: nothing is queued or sent. The server sets it false after "
            "20 failed attempts in a row (see disabled_at); true again clears the failures."
        },
    )
    owner = uri_to("user", username="owner_username")
    deliveries = fields.Function(_deliveries_uri, dump_only=True, metadata=URI)
    created_at = Instant(dump_only=True)
    updated_at = Instant(dump_only=True)
    consecutive_failures = fields.Integer(dump_only=True)
    disabled_at = Instant(
        dump_only=True,
        allow_none=True,
        metadata={"description": "When failures turned the webhook inactive; else null."},
    )
    # Never read from the record (which holds the secret for signing): the create answer
    # adds it itself.
    secret = fields.String(
        dump_only=True,
        attribute="secret_shown_once",
        metadata={
            "description": "whsec_<base64>: the signing key, only in the answer to the create "
            "request."
        },
    )


_USER = Username(
    load_default=None,
    metadata={"description": "Administrators: this user's webhooks instead of their own."},
)


class WebhookListQuery(PageQuery):
    class Meta:
        unknown = RAISE

    user = Username(
        load_default=None,
        metadata={
            "description": "Administrators see every user's webhooks; this user's only with "
            "this parameter."
        },
    )


class WebhookOwnerQuery(Schema):
    class Meta:
        unknown = RAISE

    user = _USER


def _webhook_of(delivery: DeliveryRecord) -> str:
    return absolute_uri("webhook", webhook_id=str(delivery.webhook_id))


def _status(delivery: DeliveryRecord) -> str:
    return "succeeded" if delivery.succeeded else "failed"


class DeliverySchema(Schema):
    """One attempt to deliver one message."""

    webhook = fields.Function(_webhook_of, dump_only=True, metadata=URI)
    message_id = fields.String(
        attribute="message_uid",
        metadata={"description": "The webhook-id header: the same for every attempt."},
    )
    event = fields.String(metadata={"enum": list(EVENTS)})
    attempt = fields.Integer(metadata={"description": "1 for the first attempt."})
    attempted_at = Instant()
    status = fields.Function(
        _status, metadata={"enum": ["succeeded", "failed"], "description": "A 2xx answer."}
    )
    status_code = fields.Integer(
        allow_none=True, metadata={"description": "The receiver's status; null without one."}
    )
    response_time_ms = fields.Integer(
        attribute="response_ms", metadata={"description": "Milliseconds until the answer."}
    )
    error = fields.String(allow_none=True)
    message_status = fields.String(
        attribute="message_state",
        metadata={
            "enum": ["pending", "delivered", "failed"],
            "description": "The message now: delivered, to be retried, or given up.",
        },
    )
    next_attempt_at = Instant(
        allow_none=True,
        metadata={"description": "When the message is tried again; null when it is not."},
    )


class DeliveryListQuery(PageQuery):
    class Meta:
        unknown = RAISE
