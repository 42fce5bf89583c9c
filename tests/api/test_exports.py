"""Admin lists as CSV downloads (`?format=csv` or `Accept: text/csv`): every matching row, newest
first, each value the string the JSON list holds; the same filters and role checks as JSON.

The chunk size is made tiny here so that every download crosses several chunk boundaries (and
one ends exactly on one); tests/process/test_exports_memory.py streams 100,000 rows."""

import csv
import io
import re

import pytest

from loanapi.api import exports
from loanapi.loans.schemas import LoanRead, RepaymentRead
from loanapi.users.schemas import UserRead
from tests.api.test_servicing import approved_loan, disburse, repay, set_late_fee
from tests.helpers import assert_field_error, assert_problem

V1 = "/api/v1"
FILENAME = re.compile(r'attachment; filename="(?P<name>[a-z0-9-]+)-\d{8}T\d{6}Z\.csv"')
LIST_OPERATIONS = {
    "/api/v1/admin/users": "admin_list_users",
    "/api/v1/admin/customers": "admin_list_customers",
    "/api/v1/admin/agents": "admin_list_agents",
    "/api/v1/admin/agent-applications": "admin_list_agent_applications",
    "/api/v1/admin/agents/{agent_id}/loan-requests": "admin_agent_loan_requests",
    "/api/v1/admin/loans": "admin_list_loans",
    "/api/v1/admin/repayments": "admin_list_repayments",
}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(exports, "CHUNK", 2)


def cell(value):
    """A JSON value as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def json_items(client, caller, path):
    """Every item of a JSON list, walking its pages."""
    items, cursor = [], None
    separator = "&" if "?" in path else "?"
    while True:
        url = f"{V1}{path}{separator}limit=3" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(url, headers=caller.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        if not (cursor := body["next_cursor"]):
            return items


async def csv_download(client, caller, path, expected_name=None):
    separator = "&" if "?" in path else "?"
    response = await client.get(f"{V1}{path}{separator}format=csv", headers=caller.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = FILENAME.fullmatch(response.headers["content-disposition"])
    assert disposition, response.headers["content-disposition"]
    if expected_name:
        assert disposition["name"] == expected_name
    return response.text


def parse(text):
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


async def assert_csv_equals_json(client, caller, path, model, expected_name=None):
    """The CSV of `path` has the JSON list's items, in order, field by field."""
    header, rows = parse(await csv_download(client, caller, path, expected_name))
    items = await json_items(client, caller, path)
    assert header == list(model.model_fields)
    assert all(list(item) == header for item in items)
    assert rows == [[cell(item[name]) for name in header] for item in items]
    return header, rows, items


@pytest.fixture
async def book(client, customer, agent, admin, new_customer):
    """Loans in several states: one disbursed and repaid (servicing fields set), one requested
    by the agent, new ones of two customers and two types."""
    await set_late_fee(client, admin)
    serviced = await approved_loan(client, customer, agent, admin)
    done = await disburse(
        client, admin, serviced, disbursed_on="2025-01-15", first_due_on="2025-02-15"
    )
    assert done.status_code == 200, done.text
    paid = await repay(client, agent, serviced, "1059.18", "2025-02-15", reference="BANK-1")
    assert paid.status_code == 201, paid.text
    other = await new_customer("olive")
    for who, loan_type, principal in (
        (customer, "home_loan", "10000"),
        (other, "car_loan", "20000.5"),
        (customer, "home_loan", "30000"),
        (other, "home_loan", "40000"),
    ):
        body = {"loan_type": loan_type, "principal": principal, "tenure_months": 24}
        applied = await client.post(f"{V1}/customer/loans", json=body, headers=who.headers)
        assert applied.status_code == 201, applied.text
    requested = applied.json()["id"]
    done = await client.post(f"{V1}/agent/loans/{requested}/request", headers=agent.headers)
    assert done.status_code == 200, done.text
    return {"serviced": serviced, "requested": requested, "other": other}


async def test_loans_csv_equals_the_json_list(client, admin, book):
    _, rows, items = await assert_csv_equals_json(client, admin, "/admin/loans", LoanRead, "loans")
    assert len(rows) == 5  # 2-row chunks: two full ones and a last one of one row
    serviced = next(item for item in items if item["id"] == book["serviced"])
    assert serviced["status"] == "active"
    assert (serviced["disbursed_on"], serviced["late_fee"]) == ("2025-01-15", "25.00")
    row = dict(zip(LoanRead.model_fields, rows[items.index(serviced)], strict=True))
    assert (row["principal"], row["first_due_on"]) == ("12000.00", "2025-02-15")
    assert row["principal_outstanding"] == serviced["principal_outstanding"]
    assert row["created_at"] == serviced["created_at"]  # the JSON's own ISO 8601 UTC text
    assert row["written_off_on"] == ""  # null
    assert "first_due_given" not in row  # the ledger's bookkeeping is not part of the API
    principals = [dict(zip(LoanRead.model_fields, r, strict=True))["principal"] for r in rows]
    assert "20000.50" in principals  # money with two places


async def test_loan_filters_apply_to_the_csv(client, customer, agent, admin, book):
    for query in (
        "status=new",
        "loan_type=home_loan",
        f"customer_id={book['other'].id}",
        "status=active&bucket=91%2B",
        "status=approved",  # nothing: a header row alone
    ):
        await assert_csv_equals_json(client, admin, f"/admin/loans?{query}", LoanRead)
    _, rows = parse(await csv_download(client, admin, "/admin/loans?loan_type=car_loan"))
    assert [row[3] for row in rows] == ["car_loan"]
    _, rows = parse(await csv_download(client, admin, "/admin/loans?status=withdrawn"))
    assert rows == []
    requests = f"/admin/agents/{agent.id}/loan-requests"
    _, rows, _ = await assert_csv_equals_json(client, admin, requests, LoanRead)
    assert {int(row[0]) for row in rows} == {book["serviced"], book["requested"]}
    _, rows, _ = await assert_csv_equals_json(
        client, admin, f"{requests}?status=requested", LoanRead
    )
    assert [int(row[0]) for row in rows] == [book["requested"]]


async def test_user_lists_csv_equal_json_and_hold_no_secret(client, admin, agent, new_customer):
    for name in ("amy", "bob", "cat"):
        await new_customer(name)
    await client.post(
        f"{V1}/auth/register/agent",
        json={"username": "pat", "email": "pat@example.com", "password": "s3cret-pass"},
    )
    for path, name in (
        ("/admin/users", "users"),
        ("/admin/users?role=agent", "users"),
        ("/admin/users?status=pending", "users"),
        ("/admin/customers", "customers"),
        ("/admin/agents", "agents"),
        ("/admin/agents?status=active", "agents"),
        ("/admin/agent-applications", "agent-applications"),
    ):
        header, rows, items = await assert_csv_equals_json(client, admin, path, UserRead, name)
        assert header == ["id", "username", "email", "phone", "role", "status", "created_at"]
    everyone = await csv_download(client, admin, "/admin/users")
    assert not {"pbkdf2", "password", "public_id"} & set(re.split(r"[^a-z_0-9]", everyone))
    assert "pbkdf2" not in everyone
    _, rows = parse(everyone)
    assert len(rows) == 6  # the admin, three customers, andy and pat
    _, pending = parse(await csv_download(client, admin, "/admin/agent-applications"))
    assert [row[1] for row in pending] == ["pat"]


async def test_repayments_csv_equals_json_and_quotes_its_values(client, customer, agent, admin):
    await set_late_fee(client, admin)
    loan_id = await approved_loan(client, customer, agent, admin)
    done = await disburse(client, admin, loan_id, disbursed_on="2025-01-15")
    assert done.status_code == 200, done.text
    awkward = 'ACME, "Ltd" #1'
    for day, reference in (("2025-02-15", awkward), ("2025-03-15", None), ("2025-04-15", "x")):
        paid = await repay(client, agent, loan_id, "100.00", day, reference=reference)
        assert paid.status_code == 201, paid.text
    reversed_id = paid.json()["id"]
    done = await client.post(
        f"{V1}/admin/loans/{loan_id}/repayments/{reversed_id}/reverse",
        json={"reason": "Bounced, twice"},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text

    path = "/admin/repayments"
    _, rows, items = await assert_csv_equals_json(client, admin, path, RepaymentRead, "repayments")
    text = await csv_download(client, admin, path)
    assert '"ACME, ""Ltd"" #1"' in text  # quoted, its quotes doubled
    assert '"Bounced, twice"' in text
    assert (text.endswith("\r\n"), text.count("\r\n")) == (True, 4)
    by_id = {int(row[0]): dict(zip(RepaymentRead.model_fields, row, strict=True)) for row in rows}
    assert by_id[reversed_id]["reversed"] == "true"
    assert by_id[reversed_id]["reversed_at"] == items[0]["reversed_at"] != ""
    assert {row["reversed"] for i, row in by_id.items() if i != reversed_id} == {"false"}
    assert [row["reference"] for row in by_id.values()] == ["x", "", awkward]
    assert [row["amount"] for row in by_id.values()] == ["100.00"] * 3

    for query in ("reversed=true", "reversed=false", "paid_from=2025-03-01", "loan_id=999"):
        await assert_csv_equals_json(client, admin, f"{path}?{query}", RepaymentRead)
    _, only = parse(await csv_download(client, admin, f"{path}?paid_to=2025-02-28"))
    assert [row[4] for row in only] == [awkward]


async def test_accept_header_chooses_csv_unless_json_is_preferred(client, admin):
    url = f"{V1}/admin/users"

    async def kind(accept, query=""):
        headers = {**admin.headers, **({"Accept": accept} if accept else {})}
        response = await client.get(f"{url}{query}", headers=headers)
        assert response.status_code == 200, response.text
        return response.headers["content-type"].split(";")[0]

    assert await kind(None) == "application/json"
    assert await kind("*/*") == "application/json"
    assert await kind("application/json") == "application/json"
    assert await kind("text/csv") == "text/csv"
    assert await kind("TEXT/CSV; charset=utf-8") == "text/csv"
    assert await kind("text/csv, */*;q=0.8") == "text/csv"
    assert await kind("text/csv;q=0.9, application/json;q=0.5") == "text/csv"
    assert await kind("application/json, text/csv") == "application/json"  # a tie: the default
    assert await kind("text/csv;q=0.5, application/json") == "application/json"
    assert await kind("text/csv;q=0") == "application/json"
    assert await kind("text/csv", "?format=json") == "application/json"  # format wins
    assert await kind("application/json", "?format=csv") == "text/csv"


async def test_bad_format_and_paging_with_csv_are_422(client, admin, agent):
    paths = [f"/admin/agents/{agent.id}/loan-requests", *LIST_OPERATIONS]
    paths = [p.removeprefix(V1) for p in paths if "{" not in p]
    for path in paths:
        for query in ("format=xml", "format=", "format=CSV"):
            response = await client.get(f"{V1}{path}?{query}", headers=admin.headers)
            assert_field_error(response, "query", "format")
        for query in ("format=csv&limit=10", "limit=10&format=csv"):
            response = await client.get(f"{V1}{path}?{query}", headers=admin.headers)
            assert_field_error(response, "query", "limit")
        page = (await client.get(f"{V1}{path}?limit=1", headers=admin.headers)).json()
        if page["next_cursor"]:
            csv_page = f"{V1}{path}?cursor={page['next_cursor']}"
            response = await client.get(csv_page, headers={**admin.headers, "Accept": "text/csv"})
            assert_field_error(response, "query", "cursor")
        ok = await client.get(f"{V1}{path}?format=json&limit=1", headers=admin.headers)
        assert ok.status_code == 200, ok.text
        assert ok.headers["content-type"] == "application/json"
    # a filter is still checked first, as in JSON
    response = await client.get(f"{V1}/admin/loans?format=csv&status=nope", headers=admin.headers)
    assert_field_error(response, "query", "status")


async def test_roles_are_checked_as_for_json(client, customer, agent, admin):
    for path in [p.replace("{agent_id}", str(agent.id)) for p in LIST_OPERATIONS]:
        for caller in (customer, agent):
            response = await client.get(f"{path}?format=csv", headers=caller.headers)
            assert_problem(response, 403)
        response = await client.get(path, headers={"Accept": "text/csv"})
        assert_problem(response, 401)
    unknown = await client.get(
        f"{V1}/admin/agents/999999/loan-requests?format=csv", headers=admin.headers
    )
    assert_problem(unknown, 404)
    not_agent = f"{V1}/admin/agents/{customer.id}/loan-requests?format=csv"
    assert_problem(await client.get(not_agent, headers=admin.headers), 404)


async def test_docs_show_the_csv_download(app):
    document = app.openapi()
    for path, operation_id in LIST_OPERATIONS.items():
        operation = document["paths"][path]["get"]
        assert operation["operationId"] == operation_id
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        formats = [p for p in operation["parameters"] if p["name"] == "format"]
        assert formats == [exports.FORMAT_PARAMETER], path
        assert "Content-Disposition" in operation["responses"]["200"]["headers"]
    assert "format" not in str(document["paths"]["/api/v1/agent/loans"])  # admin lists only
