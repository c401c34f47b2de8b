"""The WSGI entry point gunicorn serves: ``gunicorn wsgi:app``."""

from shortener import create_app

app = create_app()
