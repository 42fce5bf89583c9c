"""Access log lines, Prometheus metrics and request ids."""

import io
import json
import logging
import logging.config

from loanapi.observability import logging_config, observe
from tests.conftest import PASSWORD


async def test_metrics_count_requests_by_route_template_and_loans_by_status(
    client, customer, admin
):
    for _ in range(2):
        applied = await client.post(
            "/api/v1/customer/loans",
            json={"loan_type": "car_loan", "principal": "5000", "tenure_months": 10},
            headers=customer.headers,
        )
        assert applied.status_code == 201
    loan_id = applied.json()["id"]
    await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'loanapi_http_requests_total{method="GET",route="/api/v1/admin/loans/{loan_id}",'
        'status="200"}' in text
    )
    assert f"/api/v1/admin/loans/{loan_id}" not in text  # templates, never raw ids
    assert "loanapi_http_request_duration_seconds_bucket" in text
    assert 'loanapi_loans{status="new"} 2.0' in text
    assert 'loanapi_loans{status="approved"} 0.0' in text


async def test_one_access_log_line_per_request_without_secrets(client, customer, caplog):
    caplog.set_level(logging.INFO, logger="loanapi.access")
    response = await client.get(
        "/api/v1/auth/me", headers={**customer.headers, "X-Request-ID": "trace-42"}
    )
    assert response.status_code == 200
    lines = [r for r in caplog.records if r.name == "loanapi.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.route, line.status) == ("GET", "/api/v1/auth/me", 200)
    assert line.request_id == "trace-42"
    assert line.user_id == customer.id
    assert line.duration_ms >= 0
    rendered = json.dumps(vars(line), default=str)
    assert customer.headers["Authorization"].split()[1] not in rendered
    assert PASSWORD not in rendered


async def test_failed_and_unknown_requests_are_logged_too(client, caplog):
    caplog.set_level(logging.INFO, logger="loanapi.access")
    await client.get("/no/such/route")
    await client.get("/getloans")  # legacy, no token
    lines = [(r.route, r.status) for r in caplog.records if r.name == "loanapi.access"]
    assert lines == [("unmatched", 404), ("/getloans", 401)]


def test_json_log_format_is_one_json_object_per_line(capsys):
    config = logging_config("INFO", "json")
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        config["formatters"]["default"]
    )
    record = logging.LogRecord("loanapi.access", logging.INFO, __file__, 1, "request", None, None)
    record.route = "/api/v1/auth/me"
    record.status = 200
    parsed = json.loads(formatter.format(record))
    assert parsed["message"] == "request"
    assert parsed["route"] == "/api/v1/auth/me"
    assert parsed["status"] == 200
    assert parsed["level"] == "INFO"
    assert "time" in parsed


def test_text_logs_keep_every_access_field():
    formatter = logging.config.DictConfigurator(logging_config("INFO", "text")).configure_formatter(
        logging_config("INFO", "text")["formatters"]["default"]
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    loggers = [logging.getLogger("loanapi.access"), logging.getLogger("uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        observe({"method": "GET", "route": None, "state": {"user_id": 7}}, 404, 0.01234, "req-42")
        loggers[1].info("Started %d", 1, extra={"color_message": "Started \x1b[36m%d\x1b[0m"})
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    access, started = stream.getvalue().splitlines()
    assert access.endswith(
        "loanapi.access request method=GET route=unmatched status=404 duration_ms=12.34 "
        "request_id=req-42 user_id=7"
    )
    assert started.endswith("uvicorn.error Started 1")
