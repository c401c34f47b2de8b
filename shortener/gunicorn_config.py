"""gunicorn settings for ``shortener serve``: the visit writer beside the workers.

``on_starting`` (in the master, before any worker is forked) makes the socket the workers hand
visits over to and starts the visit-writer process, which the master restarts whenever it
dies (shortener/visit_writer.py). A graceful stop (SIGTERM, SIGINT) runs ``worker_exit`` in
each worker once it has finished its requests, handing over every visit it still keeps; then
``on_exit``, after the last worker, tells the writer to write everything and waits for it.
The webhook sender (shortener/webhook_sender.py) runs beside them the same way.
"""

from shortener.services.visit_handover import inherit
from shortener.visit_writer import WriterSupervisor
from shortener.webhook_sender import SenderSupervisor

# gunicorn itself believes X-Forwarded-Proto (and -Ssl, -Protocol) from 127.0.0.1 by default, so
# a local client could turn every generated URI into https://. Proxies are trusted only through
# SHORTENER_TRUSTED_PROXIES (ProxyFix in the app): gunicorn trusts no one.
forwarded_allow_ips = ""

_supervisor: WriterSupervisor | None = None
_sender: SenderSupervisor | None = None


def on_starting(server) -> None:
    global _supervisor
    _supervisor = WriterSupervisor(server.log)
    inherit(_supervisor.sending)  # the workers forked from here on hand visits over to it
    _supervisor.start()
    global _sender
    _sender = SenderSupervisor(server.log)  # webhook deliveries, outside every request
    _sender.start()


def worker_exit(server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    app = getattr(app, "application", app)  # under serving.CloseAfterUnreadBody
    services = getattr(app, "extensions", {}).get("shortener")
    if services is not None:
        services.recorder.close()


def child_exit(server, worker) -> None:
    from shortener.metrics import process_ended

    process_ended(worker.pid)  # its live gauges no longer count


def on_exit(server) -> None:
    if _sender is not None:
        _sender.stop()
    if _supervisor is not None:
        _supervisor.stop()
