"""The query parameters of a link's QR code (GET /api/v1.0/links/<slug>/qr)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from ..services import qr_codes
from ..services.qr_codes import QrOptions
from .fields import Matches, QueryInteger

COLOUR_RULE = "Must be a colour written #rrggbb (send '#' as %23 in a query string)."


class Colour(fields.String):
    """``#rrggbb``, kept in lower case so that one colour has one entity tag."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=Matches("#[0-9A-Fa-f]{6}", error=COLOUR_RULE), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


class QrQuery(Schema):
    class Meta:
        unknown = RAISE

    # Absent, not null, when not given: the format is then negotiated by Accept.
    format = fields.String(
        validate=validate.OneOf(qr_codes.FORMATS),
        metadata={
            "description": "The image format. Wins over Accept (image/svg+xml, image/png); "
            f"with neither, {qr_codes.DEFAULT_FORMAT}."
        },
    )
    size = QueryInteger(
        load_default=qr_codes.DEFAULT_SIZE,
        validate=validate.Range(*qr_codes.SIZE_RANGE),
        metadata={"description": "Pixels per module (SVG: user units)."},
    )
    margin = QueryInteger(
        load_default=qr_codes.DEFAULT_MARGIN,
        validate=validate.Range(*qr_codes.MARGIN_RANGE),
        metadata={"description": "The quiet zone around the code, in modules."},
    )
    dark = Colour(load_default=qr_codes.DEFAULT_DARK, metadata={"description": "Dark modules."})
    light = Colour(
        load_default=qr_codes.DEFAULT_LIGHT,
        metadata={
            "description": "Light modules and the margin. Colours too alike make a code "
            "no reader can read: that is the client's choice."
        },
    )
    ecc = fields.String(
        load_default=qr_codes.DEFAULT_ERROR_CORRECTION,
        validate=validate.OneOf(qr_codes.ERROR_CORRECTION_LEVELS),
        metadata={
            "description": "Error correction: L (7%), M (15%), Q (25%) or H (30%) of the "
            "code may be damaged and still read."
        },
    )


def options_of(query: dict[str, Any], format: qr_codes.Format) -> QrOptions:
    """The drawing options of a loaded query, in the format chosen (by it or by Accept)."""
    return QrOptions(
        format=format,
        size=query["size"],
        margin=query["margin"],
        dark=query["dark"],
        light=query["light"],
        ecc=query["ecc"],
    )
