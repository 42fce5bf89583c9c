"""GET /loan-products: the public list of products with their current rates and bounds."""

PRODUCTS = "/api/v1/loan-products"
PRODUCT_KEYS = {
    "loan_type",
    "annual_rate",
    "min_principal",
    "max_principal",
    "min_tenure_months",
    "max_tenure_months",
    "late_fee",
    "grace_days",
}
DEFAULT_RATES = {
    "home_loan": "6.90",
    "personal_loan": "10.75",
    "car_loan": "7.25",
    "education_loan": "14.70",
}


async def test_anonymous_caller_gets_the_four_default_products(client):
    response = await client.get(PRODUCTS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 4
    by_type = {product["loan_type"]: product for product in body}
    assert set(by_type) == set(DEFAULT_RATES)
    for loan_type, rate in DEFAULT_RATES.items():
        assert by_type[loan_type] == {
            "loan_type": loan_type,
            "annual_rate": rate,
            "min_principal": "1000.00",
            "max_principal": "10000000.00",
            "min_tenure_months": 1,
            "max_tenure_months": 360,
            "late_fee": "0.00",
            "grace_days": 5,
        }


async def test_every_role_sees_the_same_products(client, admin, customer, agent):
    anonymous = await client.get(PRODUCTS)
    assert anonymous.status_code == 200, anonymous.text
    for caller in (admin, customer, agent):
        response = await client.get(PRODUCTS, headers=caller.headers)
        assert response.status_code == 200, response.text
        assert response.json() == anonymous.json()


async def test_products_have_exactly_the_documented_keys_and_money_strings(client):
    response = await client.get(PRODUCTS)
    assert response.status_code == 200, response.text
    for product in response.json():
        assert set(product) == PRODUCT_KEYS
        for key in ("annual_rate", "min_principal", "max_principal"):
            value = product[key]
            assert isinstance(value, str)
            whole, _, cents = value.partition(".")
            assert whole.isdigit()
            assert len(cents) == 2
            assert cents.isdigit()
        assert isinstance(product["min_tenure_months"], int)
        assert isinstance(product["max_tenure_months"], int)


async def test_product_list_reflects_an_admin_change(client, admin):
    changed = await client.put(
        "/api/v1/admin/loan-products/car_loan",
        json={
            "annual_rate": "8.5",
            "min_principal": 5000,
            "max_principal": "250000",
            "min_tenure_months": 6,
            "max_tenure_months": 84,
            "late_fee": "0.00",
            "grace_days": 5,
        },
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    response = await client.get(PRODUCTS)
    assert response.status_code == 200, response.text
    by_type = {product["loan_type"]: product for product in response.json()}
    assert by_type["car_loan"] == {
        "loan_type": "car_loan",
        "annual_rate": "8.50",
        "min_principal": "5000.00",
        "max_principal": "250000.00",
        "min_tenure_months": 6,
        "max_tenure_months": 84,
        "late_fee": "0.00",
        "grace_days": 5,
    }
    assert by_type["home_loan"]["annual_rate"] == "6.90"
    assert by_type["personal_loan"]["annual_rate"] == "10.75"
    assert by_type["education_loan"]["annual_rate"] == "14.70"
