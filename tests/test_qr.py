"""GET /api/v1.0/links/<slug>/qr: a link's QR code as SVG or PNG (issue 9), on both backends."""

from __future__ import annotations

import io
import re
import struct
import zlib
from xml.etree import ElementTree

import pytest
import segno
from conftest import PASSWORD, make_app
from support import assert_problem

from shortener.services.actors import OPERATOR

LINKS = "/api/v1.0/links"
QR = f"{LINKS}/docs/qr"
SHORT_URL = "http://localhost/docs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "image/svg+xml"
PNG = "image/png"
CACHE_CONTROL = "private, max-age=3600"


@pytest.fixture
def docs(client, alice):
    response = client.post(
        LINKS, json={"target": "https://example.com/docs", "slug": "docs"}, auth=alice
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def expected(content: str, *, kind: str, size=10, margin=4, dark="#000000", light="#ffffff",
             ecc="M") -> bytes:  # fmt: skip
    """What segno itself draws for ``content``: the body must encode exactly the short URL."""
    out = io.BytesIO()
    code = segno.make(content, error=ecc, micro=False, boost_error=False)
    code.save(out, kind=kind, scale=size, border=margin, dark=dark, light=light)
    return out.getvalue()


def modules(content: str, ecc: str = "M") -> int:
    return segno.make(content, error=ecc, micro=False, boost_error=False).symbol_size(1, 0)[0]


def png_chunks(body: bytes) -> dict[bytes, bytes]:
    assert body[:8] == PNG_MAGIC
    chunks: dict[bytes, bytes] = {}
    position = 8
    while position < len(body):
        (length,) = struct.unpack(">I", body[position : position + 4])
        kind = body[position + 4 : position + 8]
        data = body[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", body[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + data) == crc, kind
        chunks[kind] = chunks.get(kind, b"") + data
        position += 12 + length
    return chunks


def decode_png(body: bytes) -> tuple[int, int, list[str], list[list[int]]]:
    """(width, height, palette as #rrggbb, rows of palette indexes) of a 1-bit palette PNG."""
    chunks = png_chunks(body)
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour_type, interlace) == (1, 3, 0)
    palette = chunks[b"PLTE"]
    colours = [f"#{palette[i : i + 3].hex()}" for i in range(0, len(palette), 3)]
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = (width + 7) // 8
    assert len(raw) == height * (stride + 1)
    rows = []
    previous = bytes(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        current = unfilter(line[0], line[1:], previous)
        bits = "".join(f"{byte:08b}" for byte in current)[:width]
        rows.append([int(bit) for bit in bits])
        previous = current
    return width, height, colours, rows


def unfilter(kind: int, line: bytes, previous: bytes) -> bytes:
    """PNG row filters for one byte per pixel group (bit depth 1): none, sub, up, average,
    Paeth."""
    out = bytearray()
    for i, byte in enumerate(line):
        left = out[i - 1] if i else 0
        up = previous[i]
        upper_left = previous[i - 1] if i else 0
        if kind == 0:
            predicted = 0
        elif kind == 1:
            predicted = left
        elif kind == 2:
            predicted = up
        elif kind == 3:
            predicted = (left + up) // 2
        else:
            assert kind == 4, kind
            estimate = left + up - upper_left
            distances = [abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)]
            predicted = (left, up, upper_left)[distances.index(min(distances))]
        out.append((byte + predicted) % 256)
    return bytes(out)


def svg_colours(root: ElementTree.Element) -> set[str]:
    found = set()
    for element in root.iter():
        for attribute in ("fill", "stroke"):
            value = element.get(attribute)
            if value:
                if re.fullmatch(r"#[0-9a-f]{3}", value):
                    value = "#" + "".join(c * 2 for c in value[1:])
                found.add(value)
    return found


# -- the images ---------------------------------------------------------------------------


def test_default_is_an_svg_of_the_short_url(client, alice, docs):
    response = client.get(QR, auth=alice)
    assert response.status_code == 200
    assert response.mimetype == SVG
    root = ElementTree.fromstring(response.data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    width = (modules(SHORT_URL) + 2 * 4) * 10
    assert root.get("width") == root.get("height") == str(width)
    assert svg_colours(root) == {"#000000", "#ffffff"}
    assert response.data == expected(SHORT_URL, kind="svg")
    assert docs["short_url"] == SHORT_URL
    assert "script" not in response.get_data(as_text=True)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_svg_takes_every_parameter(client, alice, docs):
    response = client.get(
        QR,
        query_string={"size": 3, "margin": 0, "dark": "#112233", "light": "#FFEEDD", "ecc": "H"},
        auth=alice,
    )
    assert response.status_code == 200 and response.mimetype == SVG
    root = ElementTree.fromstring(response.data)
    assert root.get("width") == str(modules(SHORT_URL, "H") * 3)
    assert svg_colours(root) == {"#112233", "#ffeedd"}
    assert response.data == expected(
        SHORT_URL, kind="svg", size=3, margin=0, dark="#112233", light="#ffeedd", ecc="H"
    )


@pytest.mark.parametrize(("size", "margin", "ecc"), [(1, 0, "L"), (4, 2, "Q"), (40, 16, "H")])
def test_png_is_real_and_sized_by_modules_margin_and_size(client, alice, docs, size, margin, ecc):
    response = client.get(
        QR,
        query_string={
            "format": "png",
            "size": size,
            "margin": margin,
            "ecc": ecc,
            "dark": "#003366",
            "light": "#fafafa",
        },
        auth=alice,
    )
    assert response.status_code == 200
    assert response.mimetype == PNG
    assert response.data.startswith(PNG_MAGIC)
    width, height, palette, rows = decode_png(response.data)
    assert width == height == (modules(SHORT_URL, ecc) + 2 * margin) * size
    assert sorted(palette) == ["#003366", "#fafafa"]
    dark = palette.index("#003366")
    # The finder pattern's corner is dark, just inside the margin; the margin is light.
    assert rows[margin * size][margin * size] == dark
    if margin:
        assert rows[0][0] != dark
    assert response.data == expected(
        SHORT_URL, kind="png", size=size, margin=margin, dark="#003366", light="#fafafa", ecc=ecc
    )


def test_the_code_encodes_the_public_short_url(database_url):
    app = make_app(database_url, PUBLIC_URL="https://sho.rt")
    try:
        app.extensions["shortener"].users.create(OPERATOR, username="carol", password=PASSWORD)
        client = app.test_client()
        carol = ("carol", PASSWORD)
        client.post(LINKS, json={"target": "https://example.com/", "slug": "pub"}, auth=carol)
        response = client.get(f"{LINKS}/pub/qr?format=png", auth=carol)
        assert response.status_code == 200
        assert response.data == expected("https://sho.rt/pub", kind="png")
    finally:
        app.extensions["shortener"].close()


def test_head_answers_the_headers_without_the_image(client, alice, docs):
    got = client.get(QR, auth=alice)
    head = client.head(QR, auth=alice)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == got.headers["ETag"]
    assert head.mimetype == SVG


# -- the link representation --------------------------------------------------------------


def test_the_link_representation_links_to_its_qr_code(client, alice, docs):
    assert docs["qr"] == f"http://localhost{QR}"
    listed = client.get(LINKS, auth=alice).get_json()["links"]
    assert listed[0]["qr"] == docs["qr"]
    assert client.get(docs["qr"], auth=alice).status_code == 200


# -- Accept -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (PNG, PNG),
        (SVG, SVG),
        ("*/*", SVG),
        ("image/*", SVG),
        ("image/png, image/svg+xml;q=0.5", PNG),
        ("image/svg+xml;q=0.2, image/png;q=0.9", PNG),
        ("text/html, image/png;q=0.1", PNG),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", SVG),
    ],
)
def test_accept_chooses_the_format(client, alice, docs, accept, media_type):
    response = client.get(QR, headers={"Accept": accept}, auth=alice)
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert "Accept" in response.headers["Vary"]


@pytest.mark.parametrize(
    ("accept", "format", "media_type"),
    [
        (SVG, "png", PNG),
        (PNG, "svg", SVG),
        ("application/json", "png", PNG),
        ("text/html", "svg", SVG),
    ],
)
def test_the_format_parameter_wins_over_accept(client, alice, docs, accept, format, media_type):
    response = client.get(
        QR, query_string={"format": format}, headers={"Accept": accept}, auth=alice
    )
    assert response.status_code == 200
    assert response.mimetype == media_type


@pytest.mark.parametrize("accept", ["application/json", "text/html", "image/gif", "image/png;q=0"])
def test_an_unacceptable_accept_is_406(client, alice, docs, accept):
    response = client.get(QR, headers={"Accept": accept}, auth=alice)
    body = assert_problem(response, 406)
    assert "format=" in body["detail"]


# -- ETag and Cache-Control ---------------------------------------------------------------


def test_answers_carry_a_strong_etag_and_private_cache_control(client, alice, docs):
    response = client.get(QR, auth=alice)
    etag, weak = response.get_etag()
    assert etag and not weak
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["ETag"])
    assert response.headers["Cache-Control"] == CACHE_CONTROL
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(QR, auth=alice)
    assert again.headers["ETag"] == response.headers["ETag"], "the same image, the same tag"


def test_if_none_match_answers_304_without_a_body(client, alice, docs):
    etag = client.get(QR, query_string={"format": "png"}, auth=alice).headers["ETag"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(
            QR, query_string={"format": "png"}, headers={"If-None-Match": sent}, auth=alice
        )
        assert response.status_code == 304, sent
        assert response.data == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == CACHE_CONTROL
    stale = client.get(QR, headers={"If-None-Match": '"other"'}, auth=alice)
    assert stale.status_code == 200 and stale.data


def test_if_none_match_of_other_parameters_gets_the_image(client, alice, docs):
    svg = client.get(QR, auth=alice).headers["ETag"]
    response = client.get(
        QR, query_string={"format": "png"}, headers={"If-None-Match": svg}, auth=alice
    )
    assert response.status_code == 200 and response.mimetype == PNG


@pytest.mark.parametrize(
    "changed",
    [{"format": "png"}, {"size": "11"}, {"margin": "3"}, {"dark": "#000001"},
     {"light": "#fffffe"}, {"ecc": "H"}],
)  # fmt: skip
def test_every_parameter_changes_the_etag(client, alice, docs, changed):
    default = client.get(QR, auth=alice).headers["ETag"]
    assert client.get(QR, query_string=changed, auth=alice).headers["ETag"] != default


def test_explicit_defaults_and_colour_case_keep_the_etag(client, alice, docs):
    default = client.get(QR, auth=alice)
    spelled = client.get(
        QR,
        query_string={"format": "svg", "size": "10", "margin": "4", "dark": "#000000",
                      "light": "#FFFFFF", "ecc": "M"},
        auth=alice,
    )  # fmt: skip
    assert spelled.headers["ETag"] == default.headers["ETag"]
    assert spelled.data == default.data


def test_the_etag_depends_on_the_short_url(client, alice, docs):
    client.post(LINKS, json={"target": "https://example.com/", "slug": "other"}, auth=alice)
    other = client.get(f"{LINKS}/other/qr", auth=alice).headers["ETag"]
    assert other != client.get(QR, auth=alice).headers["ETag"]


# -- invalid parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"size": "0"}, "size"),
        ({"size": "41"}, "size"),
        ({"size": "-1"}, "size"),
        ({"size": "1.5"}, "size"),
        ({"size": "ten"}, "size"),
        ({"size": ""}, "size"),
        ({"margin": "17"}, "margin"),
        ({"margin": "-1"}, "margin"),
        ({"dark": "red"}, "dark"),
        ({"dark": "#fff"}, "dark"),
        ({"dark": "000000"}, "dark"),
        ({"dark": "#00000g"}, "dark"),
        ({"dark": "#0000000"}, "dark"),
        ({"light": "white"}, "light"),
        ({"light": "#ffffff "}, "light"),
        ({"ecc": "X"}, "ecc"),
        ({"ecc": "l"}, "ecc"),
        ({"format": "gif"}, "format"),
        ({"format": "PNG"}, "format"),
        ({"colour": "#000000"}, "colour"),
    ],
)
def test_invalid_parameters_are_400_naming_them(client, alice, docs, query, parameter):
    response = client.get(QR, query_string=query, auth=alice)
    body = assert_problem(response, 400, field=parameter)
    assert response.headers["Cache-Control"] == "no-store"
    assert parameter in body["detail"]


def test_a_repeated_parameter_is_400(client, alice, docs):
    response = client.get(f"{QR}?size=3&size=4", auth=alice)
    assert_problem(response, 400, field="size")


def test_every_invalid_parameter_is_named_at_once(client, alice, docs):
    response = client.get(
        QR, query_string={"size": "0", "margin": "17", "ecc": "X", "format": "gif"}, auth=alice
    )
    body = assert_problem(response, 400)
    assert set(body["errors"]) == {"size", "margin", "ecc", "format"}


def test_invalid_parameters_are_400_even_for_a_missing_link(client, alice):
    assert_problem(client.get(f"{LINKS}/nothing/qr?size=0", auth=alice), 400, field="size")


# -- who may read it ----------------------------------------------------------------------


def test_without_credentials_it_is_401(client, docs):
    response = client.get(QR)
    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers


def test_another_users_link_is_404_like_a_missing_one(client, alice, bob, docs):
    hidden = client.get(QR, auth=bob)
    missing = client.get(f"{LINKS}/nothing/qr", auth=bob)
    hidden_body = assert_problem(hidden, 404)
    missing_body = assert_problem(missing, 404)
    assert hidden_body["type"] == missing_body["type"]
    assert hidden_body["detail"].replace("docs", "nothing") == missing_body["detail"]
    assert hidden.headers["Cache-Control"] == "no-store"


def test_an_etag_reveals_nothing_to_another_user(client, alice, bob, docs):
    etag = client.get(QR, auth=alice).headers["ETag"]
    response = client.get(QR, headers={"If-None-Match": etag}, auth=bob)
    assert_problem(response, 404)


def test_admin_may_read_any_links_code(client, alice, admin, docs):
    response = client.get(QR, auth=admin)
    assert response.status_code == 200
    assert response.data == client.get(QR, auth=alice).data


def test_a_token_needs_links_read(client, alice, docs):
    def token(*scopes: str) -> dict[str, str]:
        created = client.post(
            "/api/v1.0/tokens", json={"name": "qr", "scopes": list(scopes)}, auth=alice
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        return {"Authorization": f"Bearer {created.get_json()['token']}"}

    assert client.get(QR, headers=token("links:read")).status_code == 200
    assert_problem(client.get(QR, headers=token("stats:read")), 403)


def test_a_deleted_links_code_is_404(client, alice, docs):
    assert client.delete(f"{LINKS}/docs", auth=alice).status_code == 204
    assert_problem(client.get(QR, auth=alice), 404)


# -- the document -------------------------------------------------------------------------


def test_the_openapi_document_declares_it(client):
    document = client.get("/api/v1.0/openapi.json").get_json()
    declared = document["paths"]["/api/v1.0/links/{slug}/qr"]["get"]
    assert declared["operationId"] == "getLinkQrCode"
    assert declared["security"][1] == {"bearerAuth": ["links:read"]}
    parameters = {p["name"]: p for p in declared["parameters"]}
    assert parameters["format"]["schema"]["enum"] == ["svg", "png"]
    assert parameters["ecc"]["schema"]["enum"] == ["L", "M", "Q", "H"]
    assert parameters["ecc"]["schema"]["default"] == "M"
    assert (parameters["size"]["schema"]["minimum"], parameters["size"]["schema"]["maximum"]) == (
        1,
        40,
    )
    margin = parameters["margin"]["schema"]
    assert (margin["minimum"], margin["maximum"], margin["default"]) == (0, 16, 4)
    for colour in ("dark", "light"):
        assert re.fullmatch(parameters[colour]["schema"]["pattern"], "#00ff7F")
    assert "If-None-Match" in parameters
    ok = declared["responses"]["200"]
    assert set(ok["content"]) == {SVG, PNG}
    assert {"ETag", "Cache-Control", "Vary"} <= set(ok["headers"])
    assert {"304", "400", "401", "403", "404", "406"} <= set(declared["responses"])
    link = document["components"]["schemas"]["Link"]["properties"]["qr"]
    assert link["format"] == "uri" and link["readOnly"] is True


def test_colours_alike_are_the_clients_choice(client, alice, docs):
    """The document cannot say that dark and light must differ, so the server does not ask it."""
    response = client.get(QR, query_string={"dark": "#123456", "light": "#123456"}, auth=alice)
    assert response.status_code == 200
    assert svg_colours(ElementTree.fromstring(response.data)) == {"#123456"}
