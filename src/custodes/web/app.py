"""The ASGI application that ``custodes serve`` runs."""

from __future__ import annotations

from fastapi import FastAPI

from custodes import __version__
from custodes.deployment import Deployment
from custodes.web.console import console_router
from custodes.web.logfiles import log_router
from custodes.web.problems import install_problem_handlers


def create_app(deployment: Deployment) -> FastAPI:
    app = FastAPI(title="custodes", version=__version__)
    app.state.deployment = deployment
    install_problem_handlers(app)
    app.include_router(log_router(deployment.settings.log_dir))
    app.include_router(console_router(deployment))
    return app
