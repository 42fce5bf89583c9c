"""Servicing through the HTTP API (SERVICING.md): disbursement, repayments, payoff, statements,
reversal, write-off, the reconciliation list; the worked example to the cent."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from loanapi.loans.schemas import StatementRead
from tests.helpers import assert_field_error, assert_problem

V1 = "/api/v1"
PERSONAL = {"annual_rate": "10.75", "min_principal": "1000", "max_principal": "10000000"}


async def set_late_fee(client, admin, loan_type="personal_loan", late_fee="25.00", grace=5):
    body = {**PERSONAL, "min_tenure_months": 1, "max_tenure_months": 360}
    body |= {"late_fee": late_fee, "grace_days": grace}
    done = await client.put(
        f"{V1}/admin/loan-products/{loan_type}", json=body, headers=admin.headers
    )
    assert done.status_code == 200, done.text


async def approved_loan(client, customer, agent, admin, principal="12000", months=12):
    applied = await client.post(
        f"{V1}/customer/loans",
        json={"loan_type": "personal_loan", "principal": principal, "tenure_months": months},
        headers=customer.headers,
    )
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    for path, caller in (("agent", agent), ("admin", admin)):
        verb = "request" if path == "agent" else "approve"
        done = await client.post(f"{V1}/{path}/loans/{loan_id}/{verb}", headers=caller.headers)
        assert done.status_code == 200, done.text
    return loan_id


async def disburse(client, admin, loan_id, **body):
    return await client.post(
        f"{V1}/admin/loans/{loan_id}/disburse", json=body or None, headers=admin.headers
    )


async def repay(client, caller, loan_id, amount, paid_on=None, **extra):
    body = {"amount": amount, **({"paid_on": paid_on} if paid_on else {}), **extra}
    role = "admin" if caller.username == "admin" else "agent"  # the admin fixture's name
    return await client.post(
        f"{V1}/{role}/loans/{loan_id}/repayments", json=body, headers=caller.headers
    )


async def get(client, caller, path):
    response = await client.get(f"{V1}{path}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def example_loan(client, customer, agent, admin):
    """SERVICING.md's worked example, disbursed: 12000.00 personal at 10.75 over 12 months."""
    await set_late_fee(client, admin)
    loan_id = await approved_loan(client, customer, agent, admin)
    done = await disburse(
        client, admin, loan_id, disbursed_on="2025-01-15", first_due_on="2025-02-15"
    )
    assert done.status_code == 200, done.text
    return loan_id


async def test_worked_example_to_the_cent(client, customer, agent, admin, example_loan):
    loan_id = example_loan
    loan = await get(client, admin, f"/admin/loans/{loan_id}")
    assert loan["status"] == "active"
    assert (loan["emi"], loan["disbursed_on"], loan["first_due_on"]) == (
        "1059.18",
        "2025-01-15",
        "2025-02-15",
    )
    assert (loan["late_fee"], loan["grace_days"]) == ("25.00", 5)

    first = await repay(client, agent, loan_id, "1059.18", "2025-02-15", reference="BANK-1")
    assert first.status_code == 201, first.text
    assert {k: first.json()[k] for k in ("principal", "interest", "penalty")} == {
        "principal": "951.68",
        "interest": "107.50",
        "penalty": "0.00",
    }
    assert first.json()["reference"] == "BANK-1"

    quote = await get(client, customer, f"/customer/loans/{loan_id}/payoff?on=2025-03-01")
    assert quote == {
        "on": "2025-03-01",
        "principal": "11048.32",
        "interest": "49.49",
        "penalty": "0.00",
        "total": "11097.81",
    }

    april = await get(client, customer, f"/customer/loans/{loan_id}/statement?on=2025-04-01")
    # The body, assembled from its parts' serializers, is exactly what /docs documents.
    documented = StatementRead.model_validate(april).model_dump(mode="json")
    assert documented == april
    assert list(documented) == list(april)
    assert (april["dpd"], april["bucket"], april["arrears"]) == (17, "1-30", "1084.18")
    assert april["installments"][1]["penalty"] == "25.00"
    assert april["installments"][1]["status"] == "overdue"
    assert april["status"] == "active"

    second = await repay(client, agent, loan_id, "1500.00", "2025-04-02")
    assert second.status_code == 201, second.text
    assert {k: second.json()[k] for k in ("principal", "interest", "penalty")} == {
        "principal": "1285.66",  # 960.21 of installment 2 and 325.45 of installment 3
        "interest": "189.34",  # 98.97 + 90.37
        "penalty": "25.00",
    }
    statement = await get(client, agent, f"/agent/loans/{loan_id}/statement?on=2025-04-10")
    assert (statement["dpd"], statement["bucket"], statement["arrears"]) == (0, "current", "0.00")
    third = statement["installments"][2]
    assert (third["paid_interest"], third["paid_principal"], third["status"]) == (
        "90.37",
        "325.45",
        "partial",
    )
    assert [r["amount"] for r in statement["repayments"]] == ["1059.18", "1500.00"]

    quote = await get(client, admin, f"/admin/loans/{loan_id}/payoff?on=2025-04-10")
    assert quote == {
        "on": "2025-04-10",
        "principal": "9762.66",
        "interest": "0.00",
        "penalty": "0.00",
        "total": "9762.66",
    }
    closing = await repay(client, agent, loan_id, "9762.66", "2025-04-10")
    assert closing.status_code == 201, closing.text
    loan = await get(client, admin, f"/admin/loans/{loan_id}")
    assert (loan["status"], loan["closed_on"]) == ("closed", "2025-04-10")
    assert (loan["principal_outstanding"], loan["interest_outstanding"]) == ("0.00", "0.00")
    final = await get(client, customer, f"/customer/loans/{loan_id}/statement")
    assert all(i["status"] == "paid" for i in final["installments"])
    waived = [Decimal(i["waived_interest"]) for i in final["installments"]]
    assert waived[:3] == [0, 0, 0]
    later = final["installments"][3:]
    assert waived[3:] == [Decimal(i["interest"]) for i in later]

    history = await get(client, admin, f"/admin/loans/{loan_id}/history")
    actions = [event["action"] for event in history["items"]]
    assert actions == [
        "created",
        "requested",
        "approved",
        "disbursed",
        "repaid",
        "repaid",
        "repaid",
        "closed",
    ]
    repaid, closed = history["items"][-2:]
    assert repaid["snapshot"]["status"] == "active"
    assert repaid["snapshot"]["principal_outstanding"] == "0.00"
    assert closed["snapshot"]["status"] == "closed"
    assert closed["snapshot"]["closed_on"] == "2025-04-10"
    assert {"status", "principal_outstanding", "dpd"} <= set(repaid["snapshot"])
    assert repaid["changes"]["repayment"]["to"]["amount"] == "9762.66"

    # Closed: no more repayments; the quote is zeros; a statement before the closing shows it open.
    refused = await repay(client, agent, loan_id, "1.00")
    assert "closed" in assert_problem(refused, 409)["detail"]
    zeros = await get(client, admin, f"/admin/loans/{loan_id}/payoff")
    assert zeros["total"] == "0.00"
    before = await get(client, admin, f"/admin/loans/{loan_id}/statement?on=2025-04-09")
    assert (before["status"], before["closed_on"]) == ("active", None)


async def test_reversing_the_closing_repayment_reopens_the_loan(client, agent, admin, example_loan):
    loan_id = example_loan
    await repay(client, agent, loan_id, "1059.18", "2025-02-15")
    quote = await get(client, admin, f"/admin/loans/{loan_id}/payoff?on=2025-03-01")
    closing = await repay(client, agent, loan_id, quote["total"], "2025-03-01")
    assert closing.status_code == 201, closing.text
    assert (await get(client, admin, f"/admin/loans/{loan_id}"))["status"] == "closed"

    url = f"{V1}/admin/loans/{loan_id}/repayments/{closing.json()['id']}/reverse"
    reversed_ = await client.post(url, json={"reason": "Cheque bounced"}, headers=admin.headers)
    assert reversed_.status_code == 200, reversed_.text
    body = reversed_.json()
    assert body["reversed"] is True
    assert body["reason"] == "Cheque bounced"
    assert body["reversed_at"] is not None
    assert body["principal"] == "11048.32"  # keeps the allocation it had
    loan = await get(client, admin, f"/admin/loans/{loan_id}")
    assert (loan["status"], loan["closed_on"]) == ("active", None)
    assert loan["principal_outstanding"] == "11048.32"
    history = await get(client, admin, f"/admin/loans/{loan_id}/history")
    assert [e["action"] for e in history["items"][-2:]] == ["repayment_reversed", "reopened"]
    assert history["items"][-2]["reason"] == "Cheque bounced"

    again = await client.post(url, json={"reason": "twice"}, headers=admin.headers)
    assert "already reversed" in assert_problem(again, 409)["detail"]
    statement = await get(client, admin, f"/admin/loans/{loan_id}/statement")
    assert [r["reversed"] for r in statement["repayments"]] == [False, True]
    # Re-posting the same repayment restores the exact prior state.
    reposted = await repay(client, agent, loan_id, quote["total"], "2025-03-01")
    assert reposted.status_code == 201, reposted.text
    loan = await get(client, admin, f"/admin/loans/{loan_id}")
    assert (loan["status"], loan["closed_on"]) == ("closed", "2025-03-01")


async def test_back_dated_repayment_moves_later_allocations(client, agent, admin, example_loan):
    loan_id = example_loan
    late = await repay(client, agent, loan_id, "1500.00", "2025-04-02")
    assert late.json()["penalty"] == "50.00"  # fees of installments 1 and 2, both late then
    early = await repay(client, agent, loan_id, "1059.18", "2025-02-15")
    assert early.status_code == 201, early.text
    statement = await get(client, admin, f"/admin/loans/{loan_id}/statement?on=2025-04-10")
    moved = statement["repayments"][1]
    assert moved["id"] == late.json()["id"]
    assert (moved["penalty"], moved["interest"], moved["principal"]) == (
        "25.00",
        "189.34",
        "1285.66",
    )
    listed = await get(client, admin, f"/admin/repayments?loan_id={loan_id}")
    stored = {item["id"]: item for item in listed["items"]}
    assert stored[late.json()["id"]]["principal"] == "1285.66"  # persisted, not only shown


async def test_a_back_dated_repayment_that_would_overpay_a_later_one_is_409(
    client, agent, admin, example_loan
):
    loan_id = example_loan
    quote = await get(client, admin, f"/admin/loans/{loan_id}/payoff?on=2025-03-01")
    closing = await repay(client, agent, loan_id, quote["total"], "2025-03-01")
    assert closing.status_code == 201
    # The loan is closed now; reopen it by reversing, then post the payoff again and try a
    # back-dated one that would make it too big.
    url = f"{V1}/admin/loans/{loan_id}/repayments/{closing.json()['id']}/reverse"
    assert (await client.post(url, json={"reason": "x"}, headers=admin.headers)).status_code == 200
    assert (await repay(client, agent, loan_id, quote["total"], "2025-03-01")).status_code == 201
    url = f"{V1}/admin/loans/{loan_id}/repayments/{closing.json()['id'] + 1}/reverse"
    before = await get(client, admin, f"/admin/loans/{loan_id}")
    assert before["status"] == "closed"
    refused = await repay(client, agent, loan_id, "500.00", "2025-02-20")
    assert refused.status_code == 409, refused.text  # a closed loan takes no repayment
    assert await get(client, admin, f"/admin/loans/{loan_id}") == before


async def test_later_repayment_exceeding_after_back_dating_is_409_and_changes_nothing(
    client, agent, admin, example_loan
):
    loan_id = example_loan
    quote = await get(client, admin, f"/admin/loans/{loan_id}/payoff?on=2025-03-01")
    just_under = Decimal(quote["total"]) - Decimal("0.01")
    assert (await repay(client, agent, loan_id, str(just_under), "2025-03-01")).status_code == 201
    before = await get(client, admin, f"/admin/loans/{loan_id}")
    history = await get(client, admin, f"/admin/loans/{loan_id}/history")
    refused = await repay(client, agent, loan_id, "100.00", "2025-02-15")
    detail = assert_problem(refused, 409)["detail"]
    assert "exceed the payoff amount" in detail
    assert await get(client, admin, f"/admin/loans/{loan_id}") == before
    assert await get(client, admin, f"/admin/loans/{loan_id}/history") == history
    listed = await get(client, admin, f"/admin/repayments?loan_id={loan_id}")
    assert len(listed["items"]) == 1


async def test_overpayment_is_422_stating_the_payoff(client, agent, admin, example_loan):
    loan_id = example_loan
    quote = await get(client, admin, f"/admin/loans/{loan_id}/payoff?on=2025-03-01")
    too_much = str(Decimal(quote["total"]) + Decimal("0.01"))
    refused = await repay(client, agent, loan_id, too_much, "2025-03-01")
    body = assert_field_error(refused, "body", "amount")
    assert quote["total"] in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "10", "paid_on": "2025-01-14"}, "paid_on"),  # before the disbursement
        ({"amount": "10", "paid_on": "2999-01-01"}, "paid_on"),
        ({"amount": "10", "paid_on": "yesterday"}, "paid_on"),
        ({"amount": "10", "reference": "x" * 65}, "reference"),
        ({"amount": "10", "extra": 1}, "extra"),
    ],
)
async def test_bad_repayments_are_422_and_change_nothing(
    client, agent, admin, example_loan, body, field
):
    before = await get(client, admin, f"/admin/loans/{example_loan}")
    response = await client.post(
        f"{V1}/agent/loans/{example_loan}/repayments", json=body, headers=agent.headers
    )
    assert_field_error(response, "body", field)
    assert await get(client, admin, f"/admin/loans/{example_loan}") == before


async def test_who_may_service(client, customer, agent, admin, example_loan):
    loan_id = example_loan
    refused = await client.post(
        f"{V1}/customer/loans/{loan_id}/repayments", json={"amount": "1"}, headers=customer.headers
    )
    assert refused.status_code in (403, 404, 405)
    for path in ("disburse", "write-off", "repayments/1/reverse"):
        denied = await client.post(
            f"{V1}/admin/loans/{loan_id}/{path}", json={"reason": "x"}, headers=agent.headers
        )
        assert_problem(denied, 403)
    denied = await client.post(
        f"{V1}/admin/loans/{loan_id}/repayments", json={"amount": "1"}, headers=customer.headers
    )
    assert_problem(denied, 403)
    by_admin = await repay(client, admin, loan_id, "10.00", "2025-02-01")
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["actor_id"] == admin.id


async def test_customers_see_only_their_own_statement(
    client, customer, new_customer, admin, example_loan
):
    other = await new_customer("someone")
    for what in ("statement", "payoff"):
        response = await client.get(
            f"{V1}/customer/loans/{example_loan}/{what}", headers=other.headers
        )
        assert_problem(response, 404)
        mine = await client.get(
            f"{V1}/customer/loans/{example_loan}/{what}", headers=customer.headers
        )
        assert mine.status_code == 200


async def test_disbursement_rules(client, customer, agent, admin):
    loan_id = await approved_loan(client, customer, agent, admin)
    today = date.today()
    for body, field in (
        ({"disbursed_on": (today + timedelta(days=1)).isoformat()}, "disbursed_on"),
        ({"disbursed_on": "1999-12-31"}, "disbursed_on"),
        ({"disbursed_on": "2025-01-31", "first_due_on": "2025-01-31"}, "first_due_on"),
        ({"disbursed_on": "2025-01-31", "first_due_on": "2025-04-01"}, "first_due_on"),
    ):
        assert_field_error(await disburse(client, admin, loan_id, **body), "body", field)
    # A loan disbursed on the 31st with first_due_on at a month end stays due at month ends.
    done = await disburse(
        client, admin, loan_id, disbursed_on="2025-01-31", first_due_on="2025-02-28"
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    assert done.headers["etag"] == '"4"'
    statement = await get(client, admin, f"/admin/loans/{loan_id}/statement?on=2025-06-01")
    assert [i["due_on"] for i in statement["installments"][:4]] == [
        "2025-02-28",
        "2025-03-28",
        "2025-04-28",
        "2025-05-28",
    ]
    again = await disburse(client, admin, loan_id)
    assert "active" in assert_problem(again, 409)["detail"]
    # Default dates: today, and a month later counted from the disbursement.
    other = await approved_loan(client, customer, agent, admin)
    done = await disburse(client, admin, other)
    assert done.json()["disbursed_on"] == date.today().isoformat()
    not_approved = await client.post(
        f"{V1}/customer/loans",
        json={"loan_type": "home_loan", "principal": "5000", "tenure_months": 6},
        headers=customer.headers,
    )
    refused = await disburse(client, admin, not_approved.json()["id"])
    assert_problem(refused, 409)
    assert_problem(
        await client.get(
            f"{V1}/admin/loans/{not_approved.json()['id']}/statement", headers=admin.headers
        ),
        409,
    )


async def test_statement_dates_are_checked(client, admin, example_loan):
    for on in ("2025-01-14", (date.today() + timedelta(days=1)).isoformat(), "nope"):
        response = await client.get(
            f"{V1}/admin/loans/{example_loan}/statement?on={on}", headers=admin.headers
        )
        assert_field_error(response, "query", "on")


async def test_write_off_keeps_what_was_outstanding(client, agent, admin, example_loan):
    loan_id = example_loan
    await repay(client, agent, loan_id, "1059.18", "2025-02-15")
    url = f"{V1}/admin/loans/{loan_id}/write-off"
    assert_field_error(await client.post(url, json={}, headers=admin.headers), "body", "reason")
    done = await client.post(url, json={"reason": "Customer unreachable"}, headers=admin.headers)
    assert done.status_code == 200, done.text
    loan = done.json()
    assert loan["status"] == "written_off"
    assert loan["written_off_on"] == date.today().isoformat()
    assert loan["written_off_principal"] == "11048.32"
    assert loan["written_off_interest"] == loan["interest_outstanding"]
    assert Decimal(loan["written_off_penalty"]) == 25 * 11  # every later installment is late
    assert_problem(await repay(client, agent, loan_id, "1.00"), 409)
    listed = await get(client, admin, f"/admin/repayments?loan_id={loan_id}")
    rid = listed["items"][0]["id"]
    reverse = await client.post(
        f"{V1}/admin/loans/{loan_id}/repayments/{rid}/reverse",
        json={"reason": "x"},
        headers=admin.headers,
    )
    assert "written_off" in assert_problem(reverse, 409)["detail"]
    again = await client.post(url, json={"reason": "again"}, headers=admin.headers)
    assert_problem(again, 409)
    history = await get(client, admin, f"/admin/loans/{loan_id}/history")
    assert history["items"][-1]["action"] == "written_off"
    assert history["items"][-1]["reason"] == "Customer unreachable"


async def test_unknown_repayment_is_404(client, admin, example_loan):
    response = await client.post(
        f"{V1}/admin/loans/{example_loan}/repayments/999999/reverse",
        json={"reason": "x"},
        headers=admin.headers,
    )
    assert_problem(response, 404)


async def test_repayment_list_filters_and_pages(client, agent, admin, example_loan):
    for day in ("2025-02-15", "2025-03-15", "2025-04-15"):
        assert (await repay(client, agent, example_loan, "100.00", day)).status_code == 201
    everything = await get(client, admin, "/admin/repayments")
    assert [r["paid_on"] for r in everything["items"]] == ["2025-04-15", "2025-03-15", "2025-02-15"]
    ranged = await get(client, admin, "/admin/repayments?paid_from=2025-03-01&paid_to=2025-03-31")
    assert [r["paid_on"] for r in ranged["items"]] == ["2025-03-15"]
    first = await get(client, admin, "/admin/repayments?limit=2")
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    rest = await get(client, admin, f"/admin/repayments?limit=2&cursor={first['next_cursor']}")
    assert [r["paid_on"] for r in rest["items"]] == ["2025-02-15"]
    assert (await get(client, admin, "/admin/repayments?reversed=true"))["items"] == []
    bad = await client.get(
        f"{V1}/admin/repayments?paid_from=2025-03-01&paid_to=2025-02-01", headers=admin.headers
    )
    assert_field_error(bad, "query", "paid_to")


async def test_delinquency_filters_on_loan_lists(client, customer, agent, admin, example_loan):
    late = await get(client, agent, "/agent/loans?bucket=91%2B&dpd_min=91")
    assert [loan["id"] for loan in late["items"]] == [example_loan]  # never paid since 2025
    assert (await get(client, admin, "/admin/loans?bucket=current"))["items"] == []
    assert (await get(client, admin, "/admin/loans?dpd_max=5"))["items"] == []
    bad = await client.get(f"{V1}/admin/loans?dpd_min=5&dpd_max=1", headers=admin.headers)
    assert_field_error(bad, "query", "dpd_max")


async def test_repayments_are_idempotent(client, agent, admin, example_loan):
    headers = {**agent.headers, "Idempotency-Key": "pay-2025-02-15"}
    body = {"amount": "1059.18", "paid_on": "2025-02-15"}
    url = f"{V1}/agent/loans/{example_loan}/repayments"
    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    listed = await get(client, admin, f"/admin/repayments?loan_id={example_loan}")
    assert len(listed["items"]) == 1


async def test_legacy_shows_serviced_loans_as_approved(client, agent, admin, example_loan):
    token = admin.headers["Authorization"].removeprefix("Bearer ")
    legacy = {"x-access-token": token}
    listed = await client.get("/getloans?status=Approved", headers=legacy)
    assert listed.status_code == 200, listed.text
    assert [(loan["id"], loan["Status"]) for loan in listed.json()["Loans"]] == [
        (example_loan, "Approved")
    ]
    await repay(client, agent, example_loan, "1.00", "2025-02-01")
    agent_token = agent.headers["Authorization"].removeprefix("Bearer ")
    edit = await client.post(
        f"/edit_loan/{example_loan}",
        json={"loan_amount": 5000},
        headers={"x-access-token": agent_token},
    )
    assert edit.status_code == 409, edit.text
    assert "immutable" in edit.text


class StatementCounter:
    """Counts the SQL statements the app runs: through its engine and its asyncpg read pool."""

    def __init__(self, app, monkeypatch):
        from sqlalchemy import event

        from loanapi.db import ReadPool

        self.count = 0
        engine = app.state.engine.sync_engine

        def counted(*_args, **_kwargs):
            self.count += 1

        event.listen(engine, "before_cursor_execute", counted)
        self._remove = lambda: event.remove(engine, "before_cursor_execute", counted)
        original = ReadPool.fetch

        async def fetch(pool, sql, args):
            self.count += 1
            return await original(pool, sql, args)

        monkeypatch.setattr(ReadPool, "fetch", fetch)

    async def measure(self, call):
        self.count = 0
        response = await call()
        assert response.status_code in (200, 201), response.text
        return self.count


async def test_servicing_costs_a_bounded_number_of_statements(
    client, app, agent, admin, customer, example_loan, monkeypatch
):
    """A repayment, a statement and a payoff quote cost the same number of statements on a loan
    with one repayment as on one with thirty (no query per installment or repayment)."""
    counter = StatementCounter(app, monkeypatch)
    loan_id = example_loan
    url = f"{V1}/agent/loans/{loan_id}"
    day = date(2025, 1, 16)

    async def costs():
        paid_on = day.isoformat()
        return (
            await counter.measure(lambda: repay(client, agent, loan_id, "10.00", paid_on)),
            await counter.measure(lambda: client.get(f"{url}/statement", headers=agent.headers)),
            await counter.measure(lambda: client.get(f"{url}/payoff", headers=agent.headers)),
        )

    first = await costs()
    assert all(first), first
    for _ in range(30):
        day += timedelta(days=10)
        assert (await repay(client, agent, loan_id, "10.00", day.isoformat())).status_code == 201
    day += timedelta(days=1)
    assert await costs() == first
