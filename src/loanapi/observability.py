"""JSON logs, one line per request, and Prometheus metrics.

Both are keyed by the route template (`/api/v1/admin/loans/{loan_id}`), never the raw path, so
ids do not explode the label space and no personal data reaches a log line.
"""

import logging
import os
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

access_log = logging.getLogger("loanapi.access")

REQUESTS = Counter("loanapi_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "loanapi_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What a LogRecord carries by itself; anything else was passed as `extra=` (the access fields).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# uvicorn's copy of a message with ANSI colour codes, for terminals: never in a log line.
_TERMINAL_ONLY = ("color_message",)


class TextFormatter(logging.Formatter):
    """The plain-text line, then each `extra=` field as key=value (the access log's method,
    route, status, duration, request id and user), as the JSON lines carry them."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD and key not in _TERMINAL_ONLY
        }
        return " ".join([line, *(f"{key}={value}" for key, value in extras.items())])


class PlainJsonFormatter(JsonFormatter):
    """JSON lines without uvicorn's colour-coded copy of the message."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in _TERMINAL_ONLY:
            log_data.pop(key, None)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A dictConfig for the server process (uvicorn applies it in every worker)."""
    formatter: dict[str, Any] = (
        {
            "()": PlainJsonFormatter,
            "fmt": LOG_FORMAT,
            "rename_fields": {"asctime": "time", "levelname": "level"},
        }
        if fmt == "json"
        else {"()": TextFormatter, "fmt": LOG_FORMAT}
    )
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # Our access log replaces uvicorn's: it knows the route template and the user.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": level},
        },
    }
    return config


def observe(scope: MutableMapping[str, Any], status: int, seconds: float, request_id: str) -> None:
    method = str(scope.get("method", ""))
    # Every route carries its full path (app.add_routes), so its template is the label.
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
    if not access_log.isEnabledFor(logging.INFO):
        return
    state = scope.get("state") or {}
    access_log.info(
        "request",
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": request_id,
            "user_id": state.get("user_id"),
        },
    )


class LoansByStatus:
    """Collected at scrape time from the database (an index-only count per status)."""

    def __init__(self, sessionmaker: Any) -> None:
        self.sessionmaker = sessionmaker
        self.counts: dict[str, int] = {}

    async def refresh(self) -> None:
        from loanapi.loans.models import Loan

        async with self.sessionmaker() as session:
            rows = await session.execute(select(Loan.status, func.count()).group_by(Loan.status))
            self.counts = {status.value: count for status, count in rows.all()}

    def collect(self) -> Any:
        from loanapi.loans.models import LoanStatus

        gauge = GaugeMetricFamily("loanapi_loans", "Loans by status", labels=["status"])
        for status in LoanStatus:
            gauge.add_metric([status.value], self.counts.get(status.value, 0))
        yield gauge


class Deliveries:
    """Webhook deliveries, collected at scrape time from the database, so that every worker's
    work is counted wherever /metrics is asked: deliveries by outcome, the queue's depth and the
    age of the oldest event still waiting for a delivery."""

    def __init__(self, sessionmaker: Any) -> None:
        self.sessionmaker = sessionmaker
        self.by_status: dict[str, int] = {}
        self.depth = 0
        self.oldest_seconds = 0.0

    async def refresh(self) -> None:
        from loanapi.clock import utcnow
        from loanapi.webhooks.service import queue_state

        async with self.sessionmaker() as session:
            state = await queue_state(session)
        self.by_status, self.depth = state.by_status, state.depth
        self.oldest_seconds = (utcnow() - state.oldest).total_seconds() if state.oldest else 0.0

    def collect(self) -> Any:
        from loanapi.webhooks.models import DeliveryStatus

        outcome = GaugeMetricFamily(
            "loanapi_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status in DeliveryStatus:
            outcome.add_metric([status.value], self.by_status.get(status.value, 0))
        yield outcome
        yield GaugeMetricFamily(
            "loanapi_webhook_queue_depth",
            "Deliveries waiting for an attempt: pending ones, and those of new events the worker "
            "has yet to write",
            value=self.depth,
        )
        yield GaugeMetricFamily(
            "loanapi_webhook_oldest_pending_seconds",
            "Age of the oldest event with a delivery still to make",
            value=self.oldest_seconds,
        )


async def metrics(request: Request) -> Response:
    loans: LoansByStatus = request.app.state.loans_by_status
    deliveries: Deliveries = request.app.state.deliveries
    await loans.refresh()
    await deliveries.refresh()
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # several workers: sum their files
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    output = (
        generate_latest(registry)
        + generate_latest(_single(loans))
        + generate_latest(_single(deliveries))
    )
    return Response(output, media_type=CONTENT_TYPE_LATEST)


def _single(collector: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
