"""The web side: webhook intake, health, the setup flow, the HTTP API and the dashboard."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from app import (
    api,
    api_docs,
    dashboard,
    errors,
    export_api,
    health,
    reviews_api,
    rounds_api,
    setup,
    stats_api,
    webhooks,
)
from app.dashboard import landing
from app.intake import DeliveryIntake
from app.limits import BodyBudget
from tandem.infra import logs
from tandem.infra import services as services_module
from tandem.infra.services import Services
from tandem.infra.settings import get_settings


class TandemApp:
    """The ASGI app: webhook deliveries go straight to their receiver, the rest to FastAPI."""

    def __init__(self, services: Services):
        self.services = services
        self.intake = DeliveryIntake(services)
        self.api = FastAPI(
            title="Tandem", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", lifespan=self._lifespan
        )
        self.api.state.services = services
        self.api.state.settings = services.settings
        errors.install(self.api)
        # Compressed answers for clients that ask (Accept-Encoding: gzip); streamed ones stay streamed.
        self.api.add_middleware(GZipMiddleware, minimum_size=1024)
        # One budget for the bodies this process is reading, whichever route reads them.
        self.api.state.body_budget = budget = BodyBudget()
        routers = (
            health.router,
            setup.router,
            api.router,
            stats_api.router,
            rounds_api.router,
            export_api.router,
            reviews_api.router,
            api_docs.router,
        )
        for router in routers:
            self.api.include_router(router)
        self.api.include_router(landing.router)
        self.api.mount("/dashboard", dashboard.create(services))
        self.webhooks = webhooks.WebhookReceiver(services.settings, self.intake, budget)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _api: FastAPI):
        yield
        await self.intake.close()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == webhooks.PATH:
            await self.webhooks(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(services: Services | None = None) -> TandemApp:
    return TandemApp(services or services_module.current())


def app_from_environment() -> TandemApp:
    """The factory uvicorn imports (`app.main:app_from_environment`), in each web process."""
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(Services.from_settings(settings))
