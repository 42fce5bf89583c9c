"""A change and its event are one transaction: a failure between them leaves nothing behind.

A failure is injected right after a change's UPDATE (or INSERT) and before its LoanEvent is
written; the request answers 500 and neither the change nor an event may remain, on SQLite and
on PostgreSQL, for a v1 route and for a legacy one (a GET that writes).
"""

from typing import Any

import pytest
from sqlalchemy import func, select

from loanapi.loans import service as loans
from loanapi.loans.models import Loan, LoanEvent, LoanStatus
from tests.conftest import Caller

APPLY = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}


class Injected(RuntimeError):
    pass


@pytest.fixture
def failing_events(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(*_args: Any, **_kwargs: Any) -> None:
        raise Injected("between the change and its event")

    monkeypatch.setattr(loans, "_record", fail)


async def counts(app: Any) -> tuple[int, int]:
    async with app.state.sessions.write() as session:
        loans_ = await session.scalar(select(func.count()).select_from(Loan))
        events = await session.scalar(select(func.count()).select_from(LoanEvent))
    return int(loans_ or 0), int(events or 0)


async def loan_row(app: Any, loan_id: int) -> tuple[LoanStatus, int]:
    async with app.state.sessions.write() as session:
        loan = await session.get(Loan, loan_id)
        assert loan is not None
        return loan.status, loan.version


async def requested_loan(client: Any, customer: Caller, agent: Caller) -> int:
    applied = await client.post("/api/v1/customer/loans", json=APPLY, headers=customer.headers)
    assert applied.status_code == 201, applied.text
    loan_id = int(applied.json()["id"])
    requested = await client.post(f"/api/v1/agent/loans/{loan_id}/request", headers=agent.headers)
    assert requested.status_code == 200, requested.text
    return loan_id


async def test_a_failed_application_leaves_no_loan(app, client, customer, failing_events):
    before = await counts(app)
    response = await client.post("/api/v1/customer/loans", json=APPLY, headers=customer.headers)
    assert response.status_code == 500
    assert await counts(app) == before


async def test_a_failed_edit_keeps_the_loan_as_it_was(app, client, customer, agent, monkeypatch):
    loan_id = await requested_loan(client, customer, agent)
    before = await counts(app), await loan_row(app, loan_id)

    async def fail(*_args: Any, **_kwargs: Any) -> None:
        raise Injected

    monkeypatch.setattr(loans, "_record", fail)
    edited = await client.patch(
        f"/api/v1/agent/loans/{loan_id}", json={"tenure_months": 24}, headers=agent.headers
    )
    assert edited.status_code == 500
    assert (await counts(app), await loan_row(app, loan_id)) == before


@pytest.mark.parametrize("path", ["/api/v1/admin/loans/{id}/approve", "/approve_loan/{id}"])
async def test_a_failed_approval_is_not_saved(
    app, client, customer, agent, admin, monkeypatch, path
):
    loan_id = await requested_loan(client, customer, agent)
    before = await counts(app), await loan_row(app, loan_id)

    async def fail(*_args: Any, **_kwargs: Any) -> None:
        raise Injected

    monkeypatch.setattr(loans, "_record", fail)
    url = path.format(id=loan_id)
    response = await (
        client.post(url, headers=admin.headers)
        if "v1" in path
        else client.get(url, headers=admin.headers)
    )
    assert response.status_code == 500
    assert (await counts(app), await loan_row(app, loan_id)) == before
    assert before[1][0] is LoanStatus.requested
