"""The baseline: a bare Flask app that redirects from a dict, served like shortener.

``BENCH_LINKS`` (set by bench/run.py's ``--links``) is how many links it knows, l000001 on."""

import os

from flask import Flask, abort, redirect

SEEDED_LINKS = int(os.environ.get("BENCH_LINKS", "100000"))
app = Flask(__name__)
TARGETS = {f"l{n:06d}": f"https://example.com/{n}" for n in range(1, SEEDED_LINKS + 1)}


@app.get("/<slug>")
def follow(slug: str):
    target = TARGETS.get(slug)
    if target is None:
        abort(404)
    return redirect(target, 302)
