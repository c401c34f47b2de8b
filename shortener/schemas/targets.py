"""A link's target URL as clients send it: one rule for every field that holds a target."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, request
from marshmallow import ValidationError, fields

from ..services.targets import TargetRejected, normalize_target


def own_hosts() -> set[str]:
    """Hosts a target must not point at: this request's host and the public short-URL host."""
    settings = current_app.extensions["shortener.settings"]
    hosts = {settings.public_host} if settings.public_host else set()
    if has_request_context():
        hosts.add(urlsplit(request.host_url).hostname or "")
    return hosts


class TargetUrl(fields.String):
    """An absolute http(s) URL, normalized (IDN hosts to punycode) by the target rules."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        max_length = current_app.extensions["shortener.settings"].max_target_length
        try:
            return normalize_target(text, max_length=max_length, own_hosts=own_hosts())
        except TargetRejected as rejected:
            raise ValidationError(str(rejected)) from None
