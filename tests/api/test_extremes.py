"""The largest terms the inputs allow fit the columns on both engines (no numeric overflow)."""

from decimal import Decimal

import pytest

LIMITS = {
    "annual_rate": "100.00",
    "min_principal": "1000.00",
    "max_principal": "999999999999.99",
    "min_tenure_months": 1,
    "max_tenure_months": 1200,
}


@pytest.mark.parametrize(
    ("principal", "tenure"), [("999999999999.99", 1200), ("999999999999.99", 1)]
)
async def test_the_largest_loan_is_stored_exactly(
    client, admin, customer, agent, principal, tenure
):
    product = await client.put(
        "/api/v1/admin/loan-products/car_loan", json=LIMITS, headers=admin.headers
    )
    assert product.status_code == 200, product.text
    applied = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": "car_loan", "principal": principal, "tenure_months": tenure},
        headers=customer.headers,
    )
    assert applied.status_code == 201, applied.text
    loan = applied.json()
    total, interest = Decimal(loan["total_payable"]), Decimal(loan["total_interest"])
    assert total - Decimal(principal) == interest
    assert total > Decimal(principal)
    stored = await client.get(f"/api/v1/admin/loans/{loan['id']}", headers=admin.headers)
    assert stored.json() == loan
    edited = await client.patch(
        f"/api/v1/agent/loans/{loan['id']}", json={"tenure_months": 600}, headers=agent.headers
    )
    assert edited.status_code == 200, edited.text
    schedule = await client.get(
        f"/api/v1/customer/loans/{loan['id']}/schedule", headers=customer.headers
    )
    assert schedule.json()["rows"][-1]["balance"] == "0.00"
