"""gunicorn settings for ``shortener serve``: write buffered visits when a worker stops.

A graceful stop (SIGTERM, SIGHUP reload, max-requests) runs ``worker_exit`` after the worker
has finished its requests, so no recorded visit is left behind in memory.
"""


def worker_exit(server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("shortener")
    if services is not None:
        services.recorder.close()
