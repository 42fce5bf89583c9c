"""Assertions and small steps shared by the API tests."""

from datetime import timedelta
from typing import Any

from loanapi.clock import utcnow
from loanapi.webhooks.queue import queue

PROBLEM_JSON = "application/problem+json"
LOAN_KEYS = {
    "id",
    "customer_id",
    "agent_id",
    "loan_type",
    "principal",
    "annual_rate",
    "tenure_months",
    "emi",
    "total_payable",
    "total_interest",
    "status",
    "version",
    "created_at",
    "updated_at",
    # servicing: null until the loan is disbursed
    "disbursed_on",
    "first_due_on",
    "closed_on",
    "late_fee",
    "grace_days",
    "principal_outstanding",
    "interest_outstanding",
    "penalty_outstanding",
    "arrears",
    "dpd",
    "bucket",
    "cob_date",
    "next_due_on",
    "next_due_amount",
    "written_off_on",
    "written_off_principal",
    "written_off_interest",
    "written_off_penalty",
    "rejection_reason",
    "customer_username",
    "agent_username",
}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return dict(body)


def assert_field_error(response: Any, *loc: str) -> dict[str, Any]:
    body = assert_problem(response, 422)
    assert isinstance(body["errors"], list)
    assert list(loc) in [error["loc"][: len(loc)] for error in body["errors"]], body
    return body


async def write_deliveries(sessions: Any) -> None:
    """What a webhook worker's round does for the feed's new events, without attempting any:
    their deliveries written and claimed (room for 100 each), left to their lease."""
    rounds = queue(sessions)
    try:
        lease = utcnow() + timedelta(minutes=5)
        await rounds.round([], [], lambda active: [(e, 100) for e in active], lease)
    finally:
        await rounds.close()
