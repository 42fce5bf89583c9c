"""The old Flask system's own acceptance flow, replayed against loanapi's legacy endpoints."""

import base64
import re
from datetime import UTC, datetime

from sqlalchemy import update

from loanapi.loans.models import Loan
from tests.conftest import ADMIN, PASSWORD

LOAN_KEYS = {
    "id",
    "Loan Amount",
    "Loan Type",
    "Rate of interest",
    "Duration",
    "EMI",
    "Status",
    "Total Payable amount",
    "Customer Id",
    "Agent Id",
    "Created On",
    "Updated On",
}
USER_KEYS = {"id", "username", "public_id", "email", "phone", "Created On"}
RFC1123 = (
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT"
)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DATA_KEYS = {
    "Loan amount",
    "Duration",
    "Rate of Interest",
    "EMI",
    "Total amount to be paid",
    "Loan Type",
    "Created on ",
}


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def legacy_login(client, username, password=PASSWORD):
    response = await client.post("/login", headers=basic(username, password))
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["token"]
    return {"x-access-token": response.json()["token"]}


async def test_the_original_acceptance_flow(client, app):
    # Register three customers and two agents.
    for name in ("cust1", "cust2", "cust3"):
        response = await client.post(
            "/register_Customer",
            json={
                "username": name,
                "password": PASSWORD,
                "email": f"{name}@example.com",
                "phone": name.title(),
            },
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"Message": "Your Account has been added successfully !"}
    for name in ("agent1", "agent2"):
        response = await client.post(
            "/register_Agent",
            json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "Message": "Your request has been sent successfully! You will be able to login "
            "after Admin approves your request!"
        }

    # An unapproved agent cannot log in.
    refused = await client.post("/login", headers=basic("agent1"))
    assert refused.status_code == 401
    assert refused.text == "Your Application for agent is not approved by the admin."
    assert refused.headers["content-type"] == "text/html; charset=utf-8"
    assert refused.headers["www-authenticate"] == 'Basic realm="Login Required!"'

    # Wrong credentials: the original's plain answer.
    wrong = await client.post("/login", headers=basic("cust1", "wrong-password"))
    assert wrong.status_code == 401
    assert wrong.text == "Could not verify"
    assert wrong.headers["www-authenticate"] == 'Basic realm="Login Required!"'
    assert wrong.headers["content-type"] == "text/html; charset=utf-8"

    # The admin lists the applications and approves both agents.
    admin = await legacy_login(client, ADMIN["username"], ADMIN["password"])
    applications = await client.get("/all_Agent_applications", headers=admin)
    assert applications.status_code == 200
    pending = applications.json()["Unapproved_agents"]
    assert sorted(agent["username"] for agent in pending) == ["agent1", "agent2"]
    assert all(set(agent) == USER_KEYS for agent in pending)
    assert all(re.fullmatch(UUID, agent["public_id"]) for agent in pending)
    assert all(re.fullmatch(RFC1123, agent["Created On"]) for agent in pending)
    for agent in pending:
        approved = await client.get(f"/approve_agent/{agent['id']}", headers=admin)
        assert approved.status_code == 200
        assert approved.json() == {"Message": "The agent has been successfully approved!!"}
    again = await client.get(f"/approve_agent/{pending[0]['id']}", headers=admin)
    assert again.status_code == 200
    assert again.json() == {"Message": "The agent has already been approved by the admin!"}
    agents = await client.get("/all_Agents", headers=admin)  # the documentation's spelling
    assert agents.status_code == 200
    assert sorted(a["username"] for a in agents.json()["approved_agents"]) == ["agent1", "agent2"]
    assert (await client.get("/all_Agent_applications", headers=admin)).json() == {
        "Message": "No pending agent applications  in the system!"
    }

    agent1 = await legacy_login(client, "agent1")
    agent2 = await legacy_login(client, "agent2")
    cust1 = await legacy_login(client, "cust1")
    cust2 = await legacy_login(client, "cust2")

    # Customers apply.
    applied = await client.post(
        "/new_loan",
        json={"loan_amount": 10000, "loan_type": "Home_loan", "duration": 12},
        headers=cust1,
    )
    assert applied.status_code == 200, applied.text
    assert set(applied.json()) == {"Message", "data"}
    assert applied.json()["Message"] == "Your Loan Application has been successfully created"
    data = applied.json()["data"]
    assert set(data) == DATA_KEYS
    assert data["EMI"] == 864.81
    assert data["Total amount to be paid"] == 10377.67
    assert data["Rate of Interest"] == 6.9
    assert data["Loan Type"] == "Home_loan"
    second = await client.post(
        "/new_loan",
        json={"loan_amount": "20000", "loan_type": "Car_loan", "duration": 24},
        headers=cust2,
    )
    assert second.status_code == 200
    assert second.json()["data"]["EMI"] == 897.72
    third = await client.post(
        "/new_loan",
        json={"loan_amount": 30000, "loan_type": "Personal_loan", "duration": 36},
        headers=cust1,
    )
    assert third.json()["data"]["EMI"] == 978.61

    mine = await client.get("/getloans", headers=cust1)
    assert mine.status_code == 200
    loans = mine.json()["Loans"]
    assert len(loans) == 2
    assert all(set(loan) == LOAN_KEYS for loan in loans)
    assert {loan["Customer Id"] for loan in loans} == {loans[0]["Customer Id"]}
    home = next(loan for loan in loans if loan["Loan Type"] == "Home_loan")
    personal = next(loan for loan in loans if loan["Loan Type"] == "Personal_loan")
    assert home["Status"] == "New"
    assert home["Loan Amount"] == 10000.0
    assert home["Agent Id"] == -1
    assert [loan["id"] for loan in loans] == sorted(loan["id"] for loan in loans)  # oldest first
    assert re.fullmatch(RFC1123, home["Created On"])
    assert list(mine.json()["Loans"][0]) == sorted(LOAN_KEYS)  # Flask sent keys sorted
    car_id = (await client.get("/getloans", headers=cust2)).json()["Loans"][0]["id"]

    # The security checks.
    missing = await client.get("/getloans")
    assert missing.status_code == 401
    assert missing.json() == {"message": "Token is missing!"}
    fake = await client.get("/getloans", headers={"x-access-token": "not.a.token"})
    assert fake.status_code == 401
    assert fake.json() == {"message": "Token is invalid!"}
    on_admin = await client.get("/all_users", headers=cust1)
    assert on_admin.status_code == 401
    assert on_admin.json() == {"Message": "You are not authorized to open this page"}
    editing = await client.post(f"/edit_loan/{home['id']}", json={"duration": 24}, headers=cust1)
    assert editing.status_code == 401
    assert editing.json() == {"Message": "Unauthorised Access"}
    agent_approving = await client.get(f"/approve_loan/{home['id']}", headers=agent1)
    assert agent_approving.status_code == 401
    assert agent_approving.json() == {"Message": "You are not authorized to open this page"}
    customers_by_customer = await client.get("/all_Customers", headers=cust1)
    assert customers_by_customer.status_code == 401
    assert customers_by_customer.json() == {"Message": "Unauthorised Access"}
    requests_by_customer = await client.get("/loan_Requests_by_agent", headers=cust1)
    assert requests_by_customer.status_code == 401
    assert requests_by_customer.json() == {"Message": "Not Authorized to view this page"}
    filter_by_customer = await client.get(
        "/filter-by-create-date?start_date=2026-01-01&end_date=2026-12-31", headers=cust1
    )
    assert filter_by_customer.status_code == 401
    assert filter_by_customer.json() == {"Message": "You are not authorised to view this page!"}
    missing_loan = await client.get("/approve_loan/999999", headers=admin)
    assert missing_loan.status_code == 404
    assert "Message" in missing_loan.json()

    # Approving a loan nobody requested is refused.
    early = await client.get(f"/approve_loan/{home['id']}", headers=admin)
    assert early.status_code == 409
    assert "requested" in early.json()["Message"]

    # An agent edits, requests; the admin approves.
    edited = await client.post(
        f"/edit_loan/{home['id']}", json={"loan_amount": 12000, "duration": 24}, headers=agent1
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["Message"] == "Your Loan Application has been successfully Modified"
    assert edited.json()["data"]["Loan amount"] == 12000.0
    assert edited.json()["data"]["Duration"] == 24
    requested = await client.get(f"/request_loan/{home['id']}", headers=agent1)
    assert requested.status_code == 200
    assert requested.json() == {
        "Message": "Request to Admin on behalf of this customer is successfully made by you."
    }
    taken = await client.get(f"/request_loan/{home['id']}", headers=agent2)
    assert taken.status_code == 409
    approved = await client.get(f"/approve_loan/{home['id']}", headers=admin)
    assert approved.status_code == 200
    assert approved.json() == {"Message": "The Loan has been successfully approved!!"}
    approved_loans = (await client.get("/getloans?status=Approved", headers=admin)).json()
    assert [loan["id"] for loan in approved_loans["Loans"]] == [home["id"]]

    # The approved loan is immutable.
    immutable = await client.post(f"/edit_loan/{home['id']}", json={"duration": 36}, headers=agent2)
    assert immutable.status_code == 409
    assert immutable.json() == {
        "Message": "This Loan has already been approved by the admin!! It is immutable now."
    }

    # A rejection, which persists.
    rejected = await client.get(f"/reject_loan/{car_id}", headers=admin)
    assert rejected.status_code == 200
    assert rejected.json() == {"Message": "The Loan has been successfully Rejected!!"}
    car = (await client.get("/getloans?status=Rejected", headers=cust2)).json()["Loans"]
    assert [(loan["id"], loan["Status"]) for loan in car] == [(car_id, "Rejected")]
    still_new = (await client.get("/getloans?status=New", headers=admin)).json()["Loans"]
    assert [loan["id"] for loan in still_new] == [personal["id"]]

    # Both date filters, on whole UTC days.
    async with app.state.sessions.write() as session, session.begin():
        await session.execute(
            update(Loan)
            .where(Loan.id == personal["id"])
            .values(
                created_at=datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC),
                updated_at=datetime(2026, 3, 5, 0, 0, tzinfo=UTC),
            )
        )
    created = await client.get(
        "/filter-by-create-date?start_date=2026-03-02&end_date=2026-03-02", headers=agent1
    )
    assert created.status_code == 200
    assert [loan["id"] for loan in created.json()["Loans between 2026-03-02 and 2026-03-02"]] == [
        personal["id"]
    ]
    updated = await client.get(
        "/filter-by-update-date?start_date=2026-03-04&end_date=2026-03-05", headers=admin
    )
    assert [loan["id"] for loan in updated.json()["Loans between 2026-03-04 and 2026-03-05"]] == [
        personal["id"]
    ]
    nothing = await client.get(
        "/filter-by-update-date?start_date=2020-01-01&end_date=2020-01-02", headers=admin
    )
    assert nothing.status_code == 200
    assert nothing.json() == {"Message": "No records found for the give range!"}
    bad_date = await client.get(
        "/filter-by-create-date?start_date=2026-13-01&end_date=2026-03-05", headers=admin
    )
    assert bad_date.status_code == 422
    assert "Message" in bad_date.json()

    # The history view: the customer sees their own loan's changes, not another's.
    history = await client.get(f"/view_loan_history/{home['id']}", headers=cust1)
    assert history.status_code == 200
    entries = history.json()["History"]
    # One entry per change of terms, holding the loan as it was before it.
    assert len(entries) == 1
    assert entries[0]["Loan amount"] == 10000.0
    assert entries[0]["Duration"] == 12
    assert entries[0]["Loan Type"] == "Home_loan"
    assert entries[0]["State At this point"] == 2
    assert entries[0]["Origina Loan ID"] == home["id"]
    assert re.fullmatch(RFC1123, entries[0]["Created At"])
    assert (await client.get(f"/view_loan_history/{home['id']}", headers=cust2)).status_code == 404
    untouched = await client.get(f"/view_loan_history/{personal['id']}", headers=admin)
    assert untouched.json() == {"Message": "No changes have been done on this loan object!"}

    # The agent's own requests, and the admin's view of each agent's requests.
    own = await client.get("/loan_Requests_by_agent", headers=agent1)
    assert [loan["id"] for loan in own.json()["Loan Requests"]] == [home["id"]]
    assert (await client.get("/loan_Requests_by_agent", headers=agent2)).json() == {
        "Message": "No requests found !"
    }
    agent1_id = next(a["id"] for a in pending if a["username"] == "agent1")
    per_agent = await client.get(f"/Agent_loan_requests/{agent1_id}", headers=admin)
    assert [loan["id"] for loan in per_agent.json()["Agent_loanRequests"]] == [home["id"]]

    # Users: everyone but the caller, never a password hash.
    everyone = await client.get("/all_users", headers=admin)
    usernames = sorted(user["username"] for user in everyone.json()["Users"])
    assert usernames == ["agent1", "agent2", "cust1", "cust2", "cust3"]
    assert "pbkdf2" not in everyone.text
    assert "password" not in everyone.text
    customers = await client.get("/all_customers", headers=agent1)  # the code's spelling
    assert sorted(c["username"] for c in customers.json()["Customers"]) == [
        "cust1",
        "cust2",
        "cust3",
    ]


async def test_tokens_are_interchangeable(client, customer):
    legacy = await legacy_login(client, customer.username)
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {legacy['x-access-token']}"}
    )
    assert me.status_code == 200
    assert me.json()["username"] == customer.username
    loans = await client.get("/getloans", headers=customer.headers)  # a v1 bearer token
    assert loans.status_code == 200
    assert loans.json() == {"Message": "No all Loans found !"}


async def test_legacy_routes_are_documented_and_deprecated(client):
    document = (await client.get("/openapi.json")).json()
    legacy = {
        path: operation
        for path, methods in document["paths"].items()
        for operation in methods.values()
        if "legacy" in operation.get("tags", [])
    }
    assert {
        "/login",
        "/register_Customer",
        "/new_loan",
        "/getloans",
        "/edit_loan/{loan_id}",
        "/approve_loan/{loan_id}",
        "/filter-by-create-date",
    } <= set(legacy)
    assert all(operation.get("deprecated") for operation in legacy.values())
    assert "requestBody" in legacy["/new_loan"]


async def test_bad_legacy_input_changes_nothing(client, customer):
    token = await legacy_login(client, customer.username)
    for body in (
        {"loan_amount": -5, "loan_type": "Home_loan", "duration": 12},
        {"loan_amount": 10000, "loan_type": "Boat_loan", "duration": 12},
        {"loan_amount": 10000, "loan_type": "Home_loan", "duration": 0},
    ):
        response = await client.post("/new_loan", json=body, headers=token)
        assert response.status_code == 422, body
        assert set(response.json()) == {"Message"}
    assert (await client.get("/getloans", headers=token)).json() == {
        "Message": "No all Loans found !"
    }
    missing = await client.get("/view_loan_history/12345", headers=token)
    assert missing.status_code == 404
    assert set(missing.json()) == {"Message"}


async def test_the_token_and_the_role_come_before_the_body(client, customer, agent):
    """As the original: a missing token or a refused role answers before a body is looked at,
    even a body that is not JSON at all."""
    garbage = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    no_token = await client.post("/new_loan", **garbage)
    assert no_token.status_code == 401
    assert no_token.json() == {"message": "Token is missing!"}
    token = await legacy_login(client, agent.username)
    refused = await client.post(
        "/new_loan", content=b"{not json", headers={**token, "Content-Type": "application/json"}
    )
    assert refused.status_code == 401
    assert refused.json() == {"Message": "Unauthorised Access"}
    mine = await legacy_login(client, customer.username)
    bad = await client.post(
        "/new_loan", content=b"{not json", headers={**mine, "Content-Type": "application/json"}
    )
    assert bad.status_code == 422
    assert set(bad.json()) == {"Message"}
