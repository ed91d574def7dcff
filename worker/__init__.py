"""Celery entry point: `celery -A worker worker -Q audits,reevaluation,webhooks,celery`.

Builds the Flask app (same settings as the web process, from the environment), then exposes the
app's Celery instance as `app` for the celery command line.
"""
from compliance import create_app

flask_app = create_app()
app = flask_app.extensions["celery"]
celery = app
