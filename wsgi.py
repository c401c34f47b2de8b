"""The WSGI entry point gunicorn serves: ``gunicorn wsgi:app``."""

from shortener import create_app
from shortener.resources.openapi import served_document

app = create_app()
served_document(app)  # built at start-up: an undeclared route fails here, not on a request
