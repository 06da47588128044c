"""The web side: webhook intake, health, the setup flow and the HTTP API."""

from __future__ import annotations

from fastapi import FastAPI

from app import api, health, setup, webhooks
from tandem import services as services_module
from tandem.services import Services
from tandem.settings import get_settings


def create_app(services: Services | None = None) -> FastAPI:
    services = services or services_module.current()
    app = FastAPI(title="Tandem", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.services = services
    app.state.settings = services.settings
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(setup.router)
    app.include_router(api.router)
    return app


def app_from_environment() -> FastAPI:
    """The factory uvicorn imports (`app.main:app_from_environment`)."""
    return create_app(Services.from_settings(get_settings()))
