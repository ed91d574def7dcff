from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from sqlalchemy import text

from ..schemas.common import HealthSchema
from .blueprint import Blueprint

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Liveness and readiness")


@blp.route("/health")
class Health(MethodView):
    @blp.doc(security=[])  # the one operation that needs no key
    @blp.response(200, HealthSchema)
    def get(self):
        """Service health: database, broker and the current rule version. No key needed."""
        config = current_app.config["COMPLIANCE"]
        db = current_app.extensions["db"]
        out = {"status": "ok", "database": db.engine.dialect.name, "embedded": config.embedded}
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            version, rulebook = current_app.extensions["rulebooks"].current()
            out.update(rule_version=version.number, ruleset_revision=rulebook.revision)
        except Exception as exc:  # health must answer, not raise
            out.update(status="degraded", database_error=str(exc)[:200])
        if not config.embedded:
            try:
                with current_app.extensions["celery"].connection_for_write() as conn:
                    conn.ensure_connection(max_retries=1, timeout=2)
                out["broker"] = "ok"
            except Exception as exc:
                out.update(status="degraded", broker="down", broker_error=str(exc)[:200])
        else:
            out["broker"] = "embedded (tasks run in-process)"
        return out
