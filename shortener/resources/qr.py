"""/api/v1.0/links/<slug>/qr: the QR code of a link's short URL, as SVG or PNG."""

from __future__ import annotations

from flask import Response, request
from flask_restful import Resource

from ..auth import current_user
from ..schemas.links import short_url_of
from ..schemas.qr import QrQuery, options_of
from ..services import qr_codes
from ..services.errors import NotAcceptable
from ..services.tokens import LINKS_READ
from .http import services
from .operations import operation

# The image of a slug never changes, but the link may be deleted or its owner's access
# revoked: caches keep it an hour, then ask again with If-None-Match (only the tag is compared).
CACHE_CONTROL = "private, max-age=3600"
# An SVG opened on its own is a document of this origin: it may not run or load anything.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
_BY_MEDIA_TYPE = {media_type: format for format, media_type in qr_codes.MEDIA_TYPES.items()}


def negotiated_format(chosen: qr_codes.Format | None) -> qr_codes.Format:
    """``format`` if given; else the best of Accept (SVG on a tie, and with no Accept)."""
    if chosen is not None:
        return chosen
    if "Accept" not in request.headers:
        return qr_codes.DEFAULT_FORMAT
    best = request.accept_mimetypes.best_match(list(_BY_MEDIA_TYPE))
    if best is None:
        raise NotAcceptable(
            "The QR code is image/svg+xml or image/png; accept one of them, or ask with "
            "?format=svg or ?format=png.",
        )
    return _BY_MEDIA_TYPE[best]


class LinkQrCode(Resource):
    @operation(
        "getLinkQrCode",
        "The QR code of a link's short URL, as SVG or PNG",
        description="Encodes the link's `short_url`. The format comes from `format`, else "
        "from Accept (image/svg+xml or image/png), else SVG; 406 when Accept allows neither. "
        "The answer is cached privately for an hour; its strong ETag is a digest of the "
        "parameters and the short URL.",
        scope=LINKS_READ,
        query=QrQuery,
        errors=(404, 406),
        headers=("Cache-Control", "Vary"),
        content_type=tuple(qr_codes.MEDIA_TYPES.values()),
        response_description="The image.",
        tags=("links",),
        etag=True,
    )
    def get(self, slug, query):
        format = negotiated_format(query.get("format"))
        link = services().links.get(current_user(), slug)
        content = short_url_of(link)
        options = options_of(query, format)
        tag = qr_codes.entity_tag(content, options)
        if request.if_none_match.contains_weak(tag):
            response = Response(status=304)
        else:
            image = qr_codes.render(content, options)
            response = Response(image.body, mimetype=image.media_type)
            if format == "svg":
                response.headers["Content-Security-Policy"] = SVG_POLICY
        response.set_etag(tag)
        response.headers["Cache-Control"] = CACHE_CONTROL
        response.vary.add("Accept")
        return response
