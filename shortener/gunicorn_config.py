"""gunicorn settings for ``shortener serve``: write buffered visits when a worker stops.

A graceful stop (SIGTERM, SIGHUP reload, max-requests) runs ``worker_exit`` after the worker
has finished its requests, so no recorded visit is left behind in memory.
"""

# gunicorn itself believes X-Forwarded-Proto (and -Ssl, -Protocol) from 127.0.0.1 by default, so
# a local client could turn every generated URI into https://. Proxies are trusted only through
# SHORTENER_TRUSTED_PROXIES (ProxyFix in the app): gunicorn trusts no one.
forwarded_allow_ips = ""


def worker_exit(server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    app = getattr(app, "application", app)  # under serving.CloseAfterUnreadBody
    services = getattr(app, "extensions", {}).get("shortener")
    if services is not None:
        services.recorder.close()
