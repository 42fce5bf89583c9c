"""The walk-through of the README: apply, edit, request, approve, with history."""

from decimal import Decimal


async def test_apply_edit_request_approve(client, customer, agent, admin):
    applied = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": "home_loan", "principal": 10000, "tenure_months": 12},
        headers=customer.headers,
    )
    assert applied.status_code == 201, applied.text
    loan = applied.json()
    assert loan["emi"] == "864.81"
    assert loan["total_payable"] == "10377.67"
    assert loan["total_interest"] == "377.67"
    assert loan["annual_rate"] == "6.90"
    assert loan["principal"] == "10000.00"
    assert loan["status"] == "new"
    assert loan["version"] == 1
    assert loan["agent_id"] is None
    assert applied.headers["etag"] == '"1"'

    edited = await client.patch(
        f"/api/v1/agent/loans/{loan['id']}",
        json={"principal": "20000", "tenure_months": 24, "loan_type": "car_loan"},
        headers={**agent.headers, "If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["emi"] == "897.72"
    assert edited.json()["annual_rate"] == "7.25"
    assert edited.json()["version"] == 2

    requested = await client.post(
        f"/api/v1/agent/loans/{loan['id']}/request", headers=agent.headers
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["status"] == "requested"
    assert requested.json()["agent_id"] == agent.id

    approved = await client.post(f"/api/v1/admin/loans/{loan['id']}/approve", headers=admin.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["version"] == 4

    history = await client.get(
        f"/api/v1/customer/loans/{loan['id']}/history", headers=customer.headers
    )
    assert history.status_code == 200
    events = history.json()["items"]
    assert [(e["version"], e["action"]) for e in events] == [
        (1, "created"),
        (2, "edited"),
        (3, "requested"),
        (4, "approved"),
    ]
    assert events[1]["changes"]["principal"] == {"from": "10000.00", "to": "20000.00"}
    assert events[3]["snapshot"]["status"] == "approved"
    assert Decimal(events[3]["snapshot"]["emi"]) == Decimal("897.72")
