"""The application factory: settings, database, middleware, error handlers and routers."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import IntegrityError

from loanapi import __version__, jobs, openapi
from loanapi.api import admin, agent, auth, books, customer, health, legacy, products, webhooks
from loanapi.api.deps import V1
from loanapi.api.idempotency import replay_response
from loanapi.api.strict import refuse_unknown_query
from loanapi.config import Settings, get_settings
from loanapi.db import create_engine, create_sessions
from loanapi.errors import install_error_handlers
from loanapi.idempotency import Replay
from loanapi.middleware import NormalizedPaths, RequestContextMiddleware
from loanapi.observability import Deliveries, LoansByStatus, metrics
from loanapi.security import Hasher, token_codec
from loanapi.users import service as users

log = logging.getLogger("loanapi")

TAGS = [
    {
        "name": "auth",
        "description": "Registration, login, logout, password change and the caller's own "
        "account. In this page: **Authorize**, then the first form (OAuth2PasswordBearer) with "
        "your username and password; every /api/v1 call then carries the token. The other "
        "schemes are for the login endpoint (Basic) and the legacy endpoints only.",
    },
    {"name": "customer", "description": "A customer's own loan applications."},
    {"name": "agent", "description": "Approved agents working applications for customers."},
    {"name": "admin", "description": "Admins: accounts, agent applications, loan decisions."},
    {"name": "products", "description": "Loan products and their current rates."},
    {
        "name": "events and webhooks",
        "description": "Admins: the feed of integration events, and endpoints that receive them "
        "as signed webhooks (Standard Webhooks).",
    },
    {"name": "service", "description": "Health and readiness probes."},
    {
        "name": "legacy",
        "description": "The original Flask system's endpoints, kept for its clients. Deprecated: "
        "new clients use /api/v1. They take the original's credentials: LegacyBasic for /login, "
        "then its token in `x-access-token` (APIKeyHeader); an /api/v1 bearer token works too.",
    },
]


async def bootstrap_admin(app: FastAPI) -> None:
    """Create the first admin if none exists; print a generated password once.

    Several processes may start at once on an empty database: the loser of that race finds
    the username taken and leaves the winner's admin in place.
    """
    settings = app.state.settings
    try:
        async with app.state.sessions.write() as session, session.begin():
            password = await users.ensure_admin(session, settings=settings, hasher=app.state.hasher)
    except IntegrityError:
        log.info("the first admin was created by another process")
        return
    if password is not None:
        # Printed, not logged: it must reach the operator once and never a log store.
        print(admin_banner(settings.admin_username or "admin", password), flush=True)  # noqa: T201


def admin_banner(username: str, password: str) -> str:
    """The first admin's generated password, framed so that it stands out among log lines."""
    lines = [
        "The first admin was created:",
        f"    username: {username}",
        f"    password: {password}",
        "Shown once: write it down. Set LOANAPI_ADMIN_PASSWORD (or run",
        "`loanapi create-admin`) to choose one instead.",
    ]
    width = max(len(line) for line in lines)
    rule = "*" * (width + 4)
    return "\n".join([rule, *(f"* {line.ljust(width)} *" for line in lines), rule])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await bootstrap_admin(app)
    background = _in_process_jobs(app)
    # Everything loaded so far (modules, models, schemas, the routes) lives as long as the
    # process: out of the collector's sight, full collections stay short (p99 latency).
    gc.freeze()
    # Fewer, larger young collections: a statement or a repayment allocates thousands of short-
    # lived objects, and with the default 700 the collector ran several times per request and
    # reached the older generations often (make bench: repay_vs_apply 0.62-0.70 -> 0.75-0.84).
    gc.set_threshold(20_000, 50, 50)
    yield
    for task in background:
        task.cancel()
    await close_databases(app)


def _in_process_jobs(app: FastAPI) -> "list[asyncio.Task[None]]":
    """On SQLite there is no worker: the server runs the daily jobs and delivers webhooks
    itself (loanapi.jobs)."""
    settings: Settings = app.state.settings
    if not (settings.is_sqlite and settings.jobs_in_process):
        return []
    sessions = app.state.sessions
    return [
        asyncio.create_task(jobs.run_in_process(sessions, settings)),
        asyncio.create_task(jobs.deliverer(sessions, settings).run()),
    ]


async def close_databases(app: FastAPI) -> None:
    if app.state.sessions.read_pool is not None:
        await app.state.sessions.read_pool.close()
    await app.state.engine.dispose()


def _new_app(settings: Settings, **kwargs: Any) -> FastAPI:
    common = {
        "title": "loanapi",
        "version": __version__,
        "description": "Loan origination: customers apply, agents work applications, "
        "admins decide. Errors are RFC 9457 problem details.",
        "openapi_tags": TAGS,
        "lifespan": lifespan,
        "swagger_ui_parameters": {"persistAuthorization": True},
        **kwargs,
    }
    if settings.docs:
        return FastAPIOffline(**common)
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **common)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes, each with its full path, on the app's own router; on /api/v1, an
    unknown query parameter is a 422.

    Not `include_router`: FastAPI matches an included router's routes through a nested layer
    that cost ~18% of a simple request's CPU (docs/PERFORMANCE.md); a flat list does not.
    """
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path.startswith(V1):
            refuse_unknown_query(route)
    app.router.routes.extend(router.routes)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or get_settings()).with_secret()
    logging.getLogger("loanapi").setLevel(settings.log_level)
    app = _new_app(settings)
    # FastAPI's own routes (/openapi.json, the docs pages) go last: routes are matched in order,
    # one by one, and the API's are asked for far more often.
    docs_routes = list(app.router.routes)
    app.router.routes.clear()
    app.state.settings = settings
    app.state.engine = create_engine(settings)
    app.state.sessions = create_sessions(app.state.engine, settings)
    app.state.hasher = Hasher(settings.pbkdf2_rounds)
    app.state.codec = token_codec(settings)

    install_error_handlers(app)
    openapi.install(app, legacy.BODY_MODELS)
    app.add_exception_handler(Replay, replay_response)
    # Matched in this order, one route after another: the loan routers first (most traffic).
    for module in (customer, agent, admin, books, webhooks, auth, products, health):
        add_routes(app, module.router)
    if settings.metrics:
        app.state.loans_by_status = LoansByStatus(app.state.sessions.readers)
        app.state.deliveries = Deliveries(app.state.sessions.readers)
        app.add_api_route(
            "/metrics",
            metrics,
            methods=["GET"],
            tags=["service"],
            operation_id="service_metrics",
            summary="Prometheus metrics: requests and latency by route and status, loans by status",
            description="Prometheus text format; needs no token. Routes are labelled by their "
            "template (`/api/v1/admin/loans/{loan_id}`), never by raw ids. Loans by status and "
            "the webhook gauges (`loanapi_webhook_deliveries`, `loanapi_webhook_queue_depth`, "
            "`loanapi_webhook_oldest_pending_seconds`) are counted in the database at each "
            "scrape; with several workers, set `PROMETHEUS_MULTIPROC_DIR` to sum their counters.",
            response_class=PlainTextResponse,
        )
    add_routes(app, legacy.router)
    app.router.routes.extend(docs_routes)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=["X-Request-ID", "ETag", "Retry-After"],
        )
    app.add_middleware(NormalizedPaths, heads=legacy.path_heads())
    app.add_middleware(RequestContextMiddleware)
    return app
