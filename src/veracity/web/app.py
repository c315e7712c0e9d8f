"""``create_app(settings)``: the FastAPI application factory (no side effects at import)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from veracity import __version__
from veracity.config import Settings
from veracity.storage import Database
from veracity.storage.migrate import upgrade
from veracity.web.errors import install_error_handlers
from veracity.web.routers import (
    catalogue_pages,
    datasets,
    decision_pages,
    decisions,
    health,
    pages,
    projects,
    tasks,
    ui,
    workflow,
)

__all__ = ["create_app"]

HERE = Path(__file__).parent


def create_app(settings: Settings | None = None, *, database: Database | None = None, migrate: bool = True) -> FastAPI:
    """Build the app for ``settings``: opens the database and brings its schema to the latest version."""
    settings = settings or Settings()
    db = database or Database(settings.db, create=True)
    if migrate:
        upgrade(db)
    app = FastAPI(
        title="Veracity",
        version=__version__,
        description="Trustworthy training data and accountable AI-assisted decisions.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        # FastAPI >= 0.16x instruments every request with OpenTelemetry and, when the environment
        # asks (FASTAPI_OTEL_AUTO_CONFIGURE=true), adds exporters that send it out. Veracity sends
        # nothing anywhere: all of it off (older FastAPI keeps the unknown keyword in ``extra``).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False,
                   "auto_configure": False},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (health, projects, tasks, workflow, decisions, datasets, pages, ui, decision_pages, catalogue_pages):
        app.include_router(module.router)
    return app
