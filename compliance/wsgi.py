"""WSGI entry point for gunicorn: `gunicorn compliance.wsgi:app`."""
from . import create_app

app = create_app()
