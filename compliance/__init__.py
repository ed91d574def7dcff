"""Export Compliance Checker: ECCN 3A090/4A090 classification and licence determination for AI chips."""
from __future__ import annotations

from flask import Flask

from .config import Config

__version__ = "0.1.0"


def create_app(config: Config | dict | None = None, web: bool = True) -> Flask:
    """Build the Flask app: a short list of named steps. It neither migrates nor seeds the database
    (`compliance db upgrade` / `compliance setup` do), so web, workers, CLI and tests start fast.

    `web=False` (the command line) leaves out what only serves HTTP: the API and its OpenAPI spec, the
    console, request ids and /metrics; the database, rules, jobs and webhooks are the same."""
    if not isinstance(config, Config):
        config = Config.from_env(config)
    app = Flask(__name__)
    app.config["COMPLIANCE"] = config
    configure_logging(config)
    configure_flask(app, config)
    init_db(app, config)
    init_rules(app, config)
    init_celery(app, config)
    init_webhooks(app)
    if web:
        init_observability(app)  # first: its request id and timing hooks see every answer, a 429 included
        init_api(app)
        from .console import blp as console  # the web console (compliance/console/)
        app.register_blueprint(console)
        register_commands(app)
    return app


def configure_logging(config: Config) -> None:
    from .logs import configure

    configure(config.LOG_LEVEL, config.LOG_FORMAT)


def init_webhooks(app: Flask) -> None:
    """Webhook payloads link to PUBLIC_BASE_URL (events are sent from the API, the CLI and workers)."""
    from .services import webhooks

    webhooks.configure(public_base_url=app.config["COMPLIANCE"].PUBLIC_BASE_URL)


def init_observability(app: Flask) -> None:
    """Request ids (logs.py) and Prometheus metrics at /metrics (metrics.py)."""
    from .logs import init_request_ids
    from .metrics import init_metrics

    init_request_ids(app)
    init_metrics(app)


def configure_flask(app: Flask, config: Config) -> None:
    app.config.update(
        MAX_CONTENT_LENGTH=max(config.MAX_BODY_BYTES, config.MAX_UPLOAD_BYTES),
        JSON_SORT_KEYS=False,
        API_TITLE="Export Compliance Checker",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/console/vendor/swagger-ui/",  # served by the app (compliance/console/docs.py)
        OPENAPI_REDOC_PATH="redoc",
        OPENAPI_REDOC_URL="/console/static/vendor/redoc/redoc.standalone.js",
    )


def init_db(app: Flask, config: Config) -> None:
    from .db import Database

    app.extensions["db"] = Database(config.DATABASE_URL)


def init_rules(app: Flask, config: Config) -> None:
    from .services.rulebooks import RulebookStore

    app.extensions["rulebooks"] = RulebookStore(app.extensions["db"], config.RULES_DIR)


def init_celery(app: Flask, config: Config) -> None:
    from .tasks import init_celery as _init

    _init(app, config)


def init_api(app: Flask) -> None:
    from .api import init_api as _init

    _init(app)


def register_commands(app: Flask) -> None:
    from .cli import register_flask_commands

    register_flask_commands(app)
