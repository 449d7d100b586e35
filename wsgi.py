"""The WSGI entry point: ``gunicorn wsgi:app``. The only module-level app."""

from comments import create_app

app = create_app()
