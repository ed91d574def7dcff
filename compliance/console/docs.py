"""Assets of the API docs pages (Swagger UI from the installed swagger-ui-bundle package; ReDoc
vendored under static/vendor/redoc), so /api/v1/docs and /api/v1/redoc render with no internet."""
from __future__ import annotations

from flask import send_from_directory

from .blueprint import blp

SWAGGER_UI_URL = "/console/vendor/swagger-ui/"
REDOC_URL = "/console/static/vendor/redoc/redoc.standalone.js"


@blp.route("/console/vendor/swagger-ui/<path:filename>")
def swagger_ui_asset(filename: str):
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, filename, max_age=86400)
