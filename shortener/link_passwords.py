"""Password-protected links: who may follow one, and the page that asks for its password.

- A program sends the password as HTTP Basic credentials on ``GET|HEAD /<slug>`` (any user
  name). Without them it gets ``401`` problem+json with ``WWW-Authenticate: Basic
  realm="<slug>"``.
- A browser (``Accept`` prefers ``text/html``) gets a small form page: ``200`` at first,
  ``401`` again after a wrong password. It POSTs the field ``password`` to ``/<slug>`` (the
  page's own URL, query included); the right password answers ``303`` to the target.
  The page is self-contained (no external resource, no script), escaped, never cached
  (``no-store``), never framed, and under a strict Content-Security-Policy.
- CSRF: the POST changes nothing (it only unlocks a redirect, and carries the password
  itself), so no token is needed; still, a POST that a browser marks as cross-site
  (``Sec-Fetch-Site`` other than same-origin or none, or an ``Origin`` other than this host)
  is refused with 403, so no other site can make visitors' browsers guess passwords.
- Wrong passwords count against ``AUTH_FAIL_LIMIT`` per address, as failed API logins do;
  once it is used up, a password for a link is refused with ``429`` before it is checked.
- Verified passwords are cached as API credentials are (services/passwords.py), so only the
  first visit pays the ~150 ms hash.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from flask import Response, current_app, request

from .auth import basic_auth
from .problems import _wants_html, problem_response
from .services.errors import Forbidden
from .services.passwords import PASSWORD_MAX_LENGTH
from .storage.records import Redirect

# The answers about a link that needs a password: never kept by any cache.
NO_STORE = "no-store"
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:30em;margin:4em auto;padding:0 1em}"
    "input,button{font:inherit;padding:.3em .5em}p.wrong{color:#a00}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# Nothing may load but the page's own style. No form-action: browsers apply it to the
# redirect that follows the POST, which leads to the target, on any host.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": NO_STORE,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin: the form's POST carries an Origin to check, the target gets no Referer.
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex",
}
# Sec-Fetch-Site values of a request this site (or the user) made.
_OWN_SITE = ("same-origin", "none")


def admitted(links, found: Redirect, slug: str, password: str | None) -> Response | None:
    """None when this request may follow the link: it has no password, or ``password`` (from
    the form, else from HTTP Basic) is right. Otherwise the answer: the form or a 401."""
    if found.password_hash is None:
        return None
    if password is None:
        credentials = basic_auth.get_auth()
        password = credentials.password if credentials is not None else None
    if password is not None:
        limits = current_app.extensions["shortener.limits"]
        limits.refuse_if_failing()  # 429
        # Longer than any password can be: wrong, without paying for a hash.
        if len(password) <= PASSWORD_MAX_LENGTH and links.unlocks(found, password):
            return None
        limits.count_failure()
    return locked(slug, wrong=password is not None)


def locked(slug: str, *, wrong: bool) -> Response:
    """The form page for a browser, else 401 problem+json with a Basic challenge."""
    if _wants_html():
        return form_page(slug, wrong=wrong)
    detail = (
        f"The password for '{slug}' is wrong."
        if wrong
        else f"The short link '{slug}' needs a password: send it as HTTP Basic credentials "
        "(any user name)."
    )
    response = problem_response(401, detail=detail, headers={"Cache-Control": NO_STORE})
    response.headers["WWW-Authenticate"] = f'Basic realm="{slug}", charset="UTF-8"'
    return response


def form_page(slug: str, *, wrong: bool) -> Response:
    """200 with the form, or 401 with it again after a wrong password. The 401 challenges a
    scheme no browser prompts for (``Form``), as a 401 must name one."""
    message = '<p class="wrong" role="alert">Wrong password; try again.</p>\n' if wrong else ""
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>Password required</title><style>{_STYLE}</style></head>\n"
        "<body><h1>Password required</h1>\n"
        f"<p>The short link <strong>{escape(slug)}</strong> is protected by a password.</p>\n"
        f"{message}"
        '<form method="post"><label>Password '
        '<input type="password" name="password" required autofocus '
        'autocomplete="current-password"></label> '
        '<button type="submit">Continue</button></form>\n'
        "</body></html>\n"
    )
    response = Response(page, status=401 if wrong else 200, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    if wrong:
        response.headers["WWW-Authenticate"] = f'Form realm="{slug}"'
    return response


def refuse_cross_site() -> None:
    """403 for a POST that a browser says came from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if (site is not None and site not in _OWN_SITE) or (
        origin is not None and origin != request.host_url.rstrip("/")
    ):
        raise Forbidden(
            "The password form of a short link may only be sent from its own page.",
            headers={"Cache-Control": NO_STORE},
        )
