"""QR codes of short URLs, drawn by segno (pure Python: SVG and PNG, no image library).

The image is a pure function of the encoded text and the options, so its entity tag is a
digest of both (and of segno's version, which draws it): a client that holds the tag is
answered 304 without the image being drawn again.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Final, Literal

import segno

Format = Literal["svg", "png"]
ErrorCorrection = Literal["L", "M", "Q", "H"]

MEDIA_TYPES: Final[dict[Format, str]] = {"svg": "image/svg+xml", "png": "image/png"}
FORMATS: Final[tuple[Format, ...]] = ("svg", "png")
ERROR_CORRECTION_LEVELS: Final[tuple[ErrorCorrection, ...]] = ("L", "M", "Q", "H")
SIZE_RANGE: Final = (1, 40)  # pixels per module
MARGIN_RANGE: Final = (0, 16)  # modules of quiet zone on each side
DEFAULT_FORMAT: Final[Format] = "svg"
DEFAULT_SIZE: Final = 10
DEFAULT_MARGIN: Final = 4  # the quiet zone ISO/IEC 18004 asks for
DEFAULT_DARK: Final = "#000000"
DEFAULT_LIGHT: Final = "#ffffff"
DEFAULT_ERROR_CORRECTION: Final[ErrorCorrection] = "M"
# Bump when the drawing changes in a way segno's version does not tell (e.g. other options).
_DRAWING: Final = "1"


@dataclass(frozen=True)
class QrOptions:
    """How to draw: colours are ``#rrggbb`` in lower case (the schema normalizes them)."""

    format: Format = DEFAULT_FORMAT
    size: int = DEFAULT_SIZE
    margin: int = DEFAULT_MARGIN
    dark: str = DEFAULT_DARK
    light: str = DEFAULT_LIGHT
    ecc: ErrorCorrection = DEFAULT_ERROR_CORRECTION

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True)
class QrImage:
    body: bytes
    media_type: str
    modules: int  # the symbol's width in modules, without the margin
    width: int  # in pixels (SVG user units): (modules + 2 * margin) * size


def entity_tag(content: str, options: QrOptions) -> str:
    """A strong entity tag (unquoted) of the image ``render(content, options)`` gives."""
    canonical = "\n".join(
        (
            _DRAWING,
            segno.__version__,
            options.format,
            str(options.size),
            str(options.margin),
            options.dark,
            options.light,
            options.ecc,
            content,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def render(content: str, options: QrOptions) -> QrImage:
    """The QR code of ``content`` at exactly the error correction level asked for (segno would
    otherwise raise it when the data leaves room), never a Micro QR code (phones rarely read
    those)."""
    code = segno.make(content, error=options.ecc, micro=False, boost_error=False)
    out = io.BytesIO()
    code.save(
        out,
        kind=options.format,
        scale=options.size,
        border=options.margin,
        dark=options.dark,
        light=options.light,
    )
    modules = code.symbol_size(scale=1, border=0)[0]
    return QrImage(
        body=out.getvalue(),
        media_type=options.media_type,
        modules=modules,
        width=(modules + 2 * options.margin) * options.size,
    )
