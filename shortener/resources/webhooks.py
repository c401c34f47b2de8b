"""/api/v1.0/webhooks, /webhooks/<id> and /webhooks/<id>/deliveries: an owner's webhooks.

A user manages their own webhooks; an administrator sees and manages everyone's (a token
needs users:admin for that). The signing secret is in the create answer only.
"""

from __future__ import annotations

from flask_restful import Resource

from ..auth import acting_user
from ..schemas.pages import page_of
from ..schemas.webhooks import (
    DeliveryListQuery,
    DeliverySchema,
    WebhookListQuery,
    WebhookOwnerQuery,
    WebhookSchema,
)
from ..services.tokens import WEBHOOKS_READ, WEBHOOKS_WRITE
from .conditional import tag_record
from .http import json_response, services
from .operations import operation

WEBHOOK = WebhookSchema()
TAGS = ("webhooks",)


def _may_manage(query, **_) -> None:
    """Before the body is read: a 403 says nothing of its rules."""
    if query["user"] is not None:
        services().webhooks.require_access(acting_user(), query["user"])


class WebhookCollection(Resource):
    @operation(
        "listWebhooks",
        "Your webhooks, newest first (administrators: everyone's, or ?user=)",
        scope=WEBHOOKS_READ,
        query=WebhookListQuery,
        response=page_of("webhooks", WebhookSchema),
        errors=(403, 404),
        tags=TAGS,
        etag=True,
    )
    def get(self, query):
        return services().webhooks.list(
            acting_user(), owner=query["user"], cursor=query["cursor"], limit=query["limit"]
        )

    @operation(
        "createWebhook",
        "Create a webhook; its signing secret is in this answer only",
        scope=WEBHOOKS_WRITE,
        query=WebhookOwnerQuery,
        guard=_may_manage,
        body=WebhookSchema,
        response=WebhookSchema,
        status=201,
        errors=(404,),
        links={
            "getWebhook": "The webhook just created.",
            "deleteWebhook": "Delete it.",
        },
        tags=TAGS,
        etag=True,
        idempotent=True,
        replayable=False,  # the secret is never sent twice: a repeat answers 409
    )
    def post(self, query, body):
        actor = acting_user()
        record, secret = services().webhooks.create(
            actor, owner=query["user"] or actor.username, fields=body
        )
        answer = WEBHOOK.dump(record)
        answer["secret"] = secret  # the only time the secret is ever sent
        response = json_response(answer, 201, {"Location": answer["uri"]})
        tag_record(response, record)
        return response


class WebhookItem(Resource):
    @operation(
        "getWebhook", "A webhook", scope=WEBHOOKS_READ, response=WebhookSchema, errors=(404,),
        tags=TAGS, etag=True,
    )  # fmt: skip
    def get(self, webhook_id):
        return services().webhooks.get(acting_user(), webhook_id)

    @operation(
        "updateWebhook",
        "Change some of a webhook's fields (url, events, tags, active)",
        scope=WEBHOOKS_WRITE,
        body=WebhookSchema,
        partial=True,
        response=WebhookSchema,
        errors=(404,),
        tags=TAGS,
        etag=True,
    )
    def patch(self, webhook_id, body, precondition):
        return services().webhooks.update(
            acting_user(), webhook_id, body, precondition=precondition
        )

    @operation(
        "deleteWebhook",
        "Delete a webhook, its queued messages and its deliveries",
        scope=WEBHOOKS_WRITE,
        status=204,
        errors=(404,),
        tags=TAGS,
        etag=True,
    )
    def delete(self, webhook_id, precondition):
        services().webhooks.delete(acting_user(), webhook_id, precondition=precondition)


class WebhookDeliveries(Resource):
    @operation(
        "listWebhookDeliveries",
        "Every attempt to deliver this webhook's messages, newest first",
        scope=WEBHOOKS_READ,
        query=DeliveryListQuery,
        response=page_of("deliveries", DeliverySchema),
        errors=(404,),
        tags=TAGS,
        etag=True,
    )
    def get(self, webhook_id, query):
        return services().webhooks.deliveries(
            acting_user(), webhook_id, cursor=query["cursor"], limit=query["limit"]
        )
