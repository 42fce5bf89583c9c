"""POST /admin/close-of-business and GET /admin/portfolio through the HTTP API."""

from datetime import date, timedelta

from tests.api.test_servicing import approved_loan, disburse, get, repay, set_late_fee
from tests.helpers import assert_field_error, assert_problem

V1 = "/api/v1"
COB = f"{V1}/admin/close-of-business"


async def _example(client, customer, agent, admin) -> int:
    """The worked example's loan, repaid once on 2025-02-15 and never since."""
    await set_late_fee(client, admin)
    loan_id = await approved_loan(client, customer, agent, admin)
    done = await disburse(
        client, admin, loan_id, disbursed_on="2025-01-15", first_due_on="2025-02-15"
    )
    assert done.status_code == 200, done.text
    assert (await repay(client, agent, loan_id, "1059.18", "2025-02-15")).status_code == 201
    return loan_id


async def test_close_of_business_records_fees_once(client, customer, agent, admin):
    loan_id = await _example(client, customer, agent, admin)
    before = await get(client, admin, f"/admin/loans/{loan_id}")
    yesterday = date.today() - timedelta(days=1)

    first = await client.post(COB, json={"date": yesterday.isoformat()}, headers=admin.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["date"] == yesterday.isoformat()
    assert (body["loans"], body["penalties_charged"]) == (1, 11)  # installments 2..12 are late
    assert isinstance(body["seconds"], float)
    loan = await get(client, admin, f"/admin/loans/{loan_id}")
    assert loan["cob_date"] == yesterday.isoformat()
    assert loan["version"] == before["version"] + 1
    # The loan was repaid today, after the day closed: its own fields (as of today) stay.
    for name in ("dpd", "arrears", "penalty_outstanding", "bucket"):
        assert loan[name] == before[name], name
    history = await get(client, admin, f"/admin/loans/{loan_id}/history")
    event = history["items"][-1]
    assert event["action"] == "penalty_charged"
    assert event["changes"]["late_fees"]["to"]["count"] == 11
    assert event["changes"]["late_fees"]["to"]["amount"] == "275.00"
    assert event["actor_id"] == admin.id

    again = await client.post(COB, json={"date": yesterday.isoformat()}, headers=admin.headers)
    assert (again.json()["loans"], again.json()["penalties_charged"]) == (0, 0)
    today = await client.post(COB, json={"date": date.today().isoformat()}, headers=admin.headers)
    assert (today.json()["loans"], today.json()["penalties_charged"]) == (1, 0)
    after = await get(client, admin, f"/admin/loans/{loan_id}")
    assert after["version"] == loan["version"]  # nothing new to record: no event, no version
    assert after["cob_date"] == date.today().isoformat()


async def test_close_of_business_defaults_to_yesterday_and_checks_the_date(client, admin, agent):
    done = await client.post(COB, headers=admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["date"] == (date.today() - timedelta(days=1)).isoformat()
    for day in ((date.today() + timedelta(days=1)).isoformat(), "1999-12-31", "yesterday"):
        assert_field_error(
            await client.post(COB, json={"date": day}, headers=admin.headers), "body", "date"
        )
    assert_field_error(
        await client.post(COB, json={"day": "2025-01-01"}, headers=admin.headers), "body", "day"
    )
    assert_problem(await client.post(COB, headers=agent.headers), 403)


async def test_portfolio(client, customer, agent, admin):
    empty = await get(client, admin, "/admin/portfolio")
    assert empty["as_of"] is None
    assert empty["active_loans"] == 0
    assert (empty["par30"], empty["par90"]) == ("0.0000", "0.0000")
    assert set(empty["by_bucket"]) == {"current", "1-30", "31-60", "61-90", "91+"}

    loan_id = await _example(client, customer, agent, admin)
    other = await approved_loan(client, customer, agent, admin, principal="5000", months=6)
    assert (await disburse(client, admin, other)).status_code == 200  # today: current
    done = await client.post(COB, json={"date": date.today().isoformat()}, headers=admin.headers)
    assert done.status_code == 200, done.text

    book = await get(client, admin, "/admin/portfolio")
    assert book["as_of"] == date.today().isoformat()
    assert book["active_loans"] == 2
    assert book["principal_outstanding"] == "16048.32"  # 11048.32 + 5000.00
    assert book["by_bucket"]["91+"] == {"loans": 1, "principal_outstanding": "11048.32"}
    assert book["by_bucket"]["current"] == {"loans": 1, "principal_outstanding": "5000.00"}
    assert book["par30"] == book["par90"] == "0.6884"  # 11048.32 / 16048.32, half-up
    loan = await get(client, admin, f"/admin/loans/{loan_id}")
    assert book["arrears"] == loan["arrears"]

    january = await get(client, admin, "/admin/portfolio?month=2025-01")
    assert january["disbursed"] == {"count": 1, "amount": "12000.00"}
    assert january["repaid"] == {"count": 0, "amount": "0.00"}
    february = await get(client, admin, "/admin/portfolio?month=2025-02")
    assert february["repaid"] == {"count": 1, "amount": "1059.18"}
    this_month = await get(client, admin, "/admin/portfolio")
    assert this_month["month"] == date.today().strftime("%Y-%m")
    assert this_month["disbursed"] == {"count": 1, "amount": "5000.00"}

    # A reversed repayment leaves the month's flow.
    listed = await get(client, admin, f"/admin/repayments?loan_id={loan_id}")
    reversed_ = await client.post(
        f"{V1}/admin/loans/{loan_id}/repayments/{listed['items'][0]['id']}/reverse",
        json={"reason": "bounced"},
        headers=admin.headers,
    )
    assert reversed_.status_code == 200, reversed_.text
    february = await get(client, admin, "/admin/portfolio?month=2025-02")
    assert february["repaid"] == {"count": 0, "amount": "0.00"}


async def test_portfolio_month_is_checked(client, admin, customer):
    next_month = (date.today().replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    for month in ("2025-13", "1999-12", "2025-1", next_month, "9999-12"):
        response = await client.get(f"{V1}/admin/portfolio?month={month}", headers=admin.headers)
        assert_field_error(response, "query", "month")
    assert_problem(await client.get(f"{V1}/admin/portfolio", headers=customer.headers), 403)


async def test_close_of_business_takes_an_idempotency_key(client, admin):
    """A repeat with the same key gets the first answer back (the second run would say 0)."""
    headers = {**admin.headers, "Idempotency-Key": "cob-1"}
    body = {"date": (date.today() - timedelta(days=2)).isoformat()}
    first = await client.post(COB, json=body, headers=headers)
    again = await client.post(COB, json=body, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json() == again.json()
    other = await client.post(COB, json={"date": "2025-01-01"}, headers=headers)
    assert_problem(other, 409)
