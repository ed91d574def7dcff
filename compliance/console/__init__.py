"""The web console: server-rendered pages (Jinja) over the same service functions as the API.

Every page module registers its routes on one Blueprint (`blp`); create_app registers it. Static
assets (CSS, a little JavaScript, ReDoc) are served by the app; Swagger UI comes from the installed
swagger-ui-bundle package. Nothing is loaded from a CDN, and every page reads without JavaScript."""
from . import (  # noqa: F401  (each module adds its routes to blp)
    admin,
    audits,
    catalogues,
    changes,
    classify,
    dashboard,
    determinations,
    docs,
    orders,
    rules,
    screening,
    signin,
)
from .blueprint import blp

__all__ = ["blp"]
