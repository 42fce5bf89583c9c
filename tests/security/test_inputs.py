"""OWASP API3 (mass assignment), API4 (resource limits), API8 (misconfiguration).

Every bad input is a 4xx (never a 5xx) in the surface's own error shape (problem+json on /api/v1,
`{"Message"}` on the legacy routes), leaks nothing of the internals, and changes nothing that the
admin API can see. Then CORS, cache and sniffing headers, and the switch that hides the docs.
"""

import base64
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
import pytest

from tests.conftest import PASSWORD, Caller, client_for
from tests.security.support import (
    DOCS_ROUTES,
    assert_legacy_error,
    assert_no_leak,
    assert_v1_error,
    database_state,
    legacy_headers,
    requested_loan,
    served_routes,
    token_of,
)

SQL = "' OR 1=1 --"
NUL = "\u0000"
REG = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}
LOAN = {"loan_type": "home_loan", "principal": "10000", "tenure_months": 12}
LEGACY_LOAN = {"loan_amount": 10000, "loan_type": "Home_loan", "duration": 12}
PRODUCT = {
    "annual_rate": "6.90",
    "min_principal": "1000.00",
    "max_principal": "10000000.00",
    "min_tenure_months": 1,
    "max_tenure_months": 360,
}
ANY_4XX = frozenset(range(400, 500))
# A well-formed date at the end of the calendar: refusing (422) or answering (200) are both fine.
EDGE = frozenset({200, 422})


def raw(content: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": content, "headers": {"content-type": content_type}}


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


DEEP_JSON = b'{"a":' * 20_000 + b"1" + b"}" * 20_000
LONG_INT = b"1" + b"0" * 5_000


class Bad(NamedTuple):
    name: str
    role: str  # anonymous, customer, agent, admin
    method: str
    url: str  # "{loan}": the id of a loan of the customer, requested by the agent
    kwargs: dict[str, Any]
    allowed: frozenset[int] = ANY_4XX


V1_REG = "/api/v1/auth/register/customer"
APPLY = "/api/v1/customer/loans"
PATCH = "/api/v1/agent/loans/{loan}"
ROLLBACK = "/api/v1/agent/loans/{loan}/rollback"
REJECT = "/api/v1/admin/loans/{loan}/reject"
PRODUCT_URL = "/api/v1/admin/loan-products/home_loan"
ADMIN_LOANS = "/api/v1/admin/loans"

BAD_INPUTS: list[Bad] = [
    # registration (v1)
    Bad("reg_malformed_json", "anonymous", "POST", V1_REG, raw(b'{"username": "newbie", ')),
    Bad("reg_array_body", "anonymous", "POST", V1_REG, raw(b"[]")),
    Bad("reg_string_body", "anonymous", "POST", V1_REG, raw(b'"newbie"')),
    Bad("reg_empty_body", "anonymous", "POST", V1_REG, raw(b"")),
    Bad("reg_text_plain_body", "anonymous", "POST", V1_REG, raw(b'{"a": 1}', "text/plain")),
    Bad("reg_username_int", "anonymous", "POST", V1_REG, {"json": {**REG, "username": 12345}}),
    Bad("reg_password_list", "anonymous", "POST", V1_REG, {"json": {**REG, "password": ["x"]}}),
    Bad("reg_email_null", "anonymous", "POST", V1_REG, {"json": {**REG, "email": None}}),
    Bad("reg_username_sql", "anonymous", "POST", V1_REG, {"json": {**REG, "username": SQL}}),
    Bad("reg_username_nul", "anonymous", "POST", V1_REG, {"json": {**REG, "username": "a" + NUL}}),
    Bad(
        "reg_username_crlf",
        "anonymous",
        "POST",
        V1_REG,
        {"json": {**REG, "username": "newbie\r\nX-Injected: 1"}},
    ),
    Bad(
        "reg_username_1e400",
        "anonymous",
        "POST",
        V1_REG,
        raw(b'{"username": 1e400, "email": "n@example.com", "password": "s3cret-pass"}'),
    ),
    Bad(
        "reg_email_sql",
        "anonymous",
        "POST",
        V1_REG,
        {"json": {**REG, "email": "newbie@example.com' OR '1'='1"}},
    ),
    Bad("reg_phone_nul", "anonymous", "POST", V1_REG, {"json": {**REG, "phone": f"555{NUL}0100"}}),
    Bad("reg_phone_number_1e30", "anonymous", "POST", V1_REG, {"json": {**REG, "phone": 10**30}}),
    Bad("reg_password_1e30", "anonymous", "POST", V1_REG, {"json": {**REG, "password": 10**30}}),
    # registration (legacy)
    Bad("legacy_reg_malformed_json", "anonymous", "POST", "/register_Customer", raw(b"{,}")),
    Bad(
        "legacy_reg_username_sql",
        "anonymous",
        "POST",
        "/register_Customer",
        {"json": {**REG, "username": SQL}},
    ),
    Bad(
        "legacy_reg_username_nul",
        "anonymous",
        "POST",
        "/register_Agent",
        {"json": {**REG, "username": NUL * 3}},
    ),
    Bad(
        "legacy_reg_phone_nul",
        "anonymous",
        "POST",
        "/register_Customer",
        {"json": {**REG, "phone": NUL}},
    ),
    Bad("legacy_reg_deep_json", "anonymous", "POST", "/register_Customer", raw(DEEP_JSON)),
    # login
    Bad(
        "token_sql",
        "anonymous",
        "POST",
        "/api/v1/auth/token",
        {"data": {"username": SQL, "password": "' OR '1'='1"}},
    ),
    Bad(
        "token_username_nul",
        "anonymous",
        "POST",
        "/api/v1/auth/token",
        {"data": {"username": "admin" + NUL, "password": "x"}},
    ),
    Bad(
        "token_username_10k",
        "anonymous",
        "POST",
        "/api/v1/auth/token",
        {"data": {"username": "a" * 10_000, "password": "x"}},
    ),
    Bad(
        "token_grant_type",
        "anonymous",
        "POST",
        "/api/v1/auth/token",
        {"data": {"grant_type": "client_credentials", "username": "admin", "password": "x"}},
    ),
    Bad("basic_sql", "anonymous", "POST", "/api/v1/auth/login", {"auth": (SQL, "' OR '1'='1")}),
    Bad("basic_nul", "anonymous", "POST", "/api/v1/auth/login", {"auth": ("admin" + NUL, "x")}),
    Bad(
        "basic_not_base64",
        "anonymous",
        "POST",
        "/api/v1/auth/login",
        {"headers": {"Authorization": "Basic !!!not-base64"}},
    ),
    Bad("legacy_login_sql", "anonymous", "POST", "/login", {"auth": (SQL, "' OR '1'='1")}),
    Bad("legacy_login_nul", "anonymous", "POST", "/login", {"auth": ("admin" + NUL, "x")}),
    Bad(
        "legacy_login_not_base64",
        "anonymous",
        "GET",
        "/login",
        {"headers": {"Authorization": "Basic %%%"}},
    ),
    # apply
    Bad("apply_malformed_json", "customer", "POST", APPLY, raw(b'{"loan_type": "home_loan"')),
    Bad("apply_null_body", "customer", "POST", APPLY, raw(b"null")),
    Bad(
        "apply_principal_1e400",
        "customer",
        "POST",
        APPLY,
        raw(b'{"loan_type": "home_loan", "principal": 1e400, "tenure_months": 12}'),
    ),
    Bad(
        "apply_principal_nan_literal",
        "customer",
        "POST",
        APPLY,
        raw(b'{"loan_type": "home_loan", "principal": NaN, "tenure_months": 12}'),
    ),
    Bad(
        "apply_tenure_1e400",
        "customer",
        "POST",
        APPLY,
        raw(b'{"loan_type": "home_loan", "principal": 10000, "tenure_months": 1e400}'),
    ),
    Bad(
        "apply_tenure_5000_digits",
        "customer",
        "POST",
        APPLY,
        raw(b'{"loan_type": "home_loan", "principal": 10000, "tenure_months": ' + LONG_INT + b"}"),
    ),
    Bad("apply_principal_1e30", "customer", "POST", APPLY, {"json": {**LOAN, "principal": 10**30}}),
    Bad(
        "apply_tenure_1e30", "customer", "POST", APPLY, {"json": {**LOAN, "tenure_months": 10**30}}
    ),
    Bad("apply_principal_nan", "customer", "POST", APPLY, {"json": {**LOAN, "principal": "NaN"}}),
    Bad(
        "apply_principal_infinity",
        "customer",
        "POST",
        APPLY,
        {"json": {**LOAN, "principal": "Infinity"}},
    ),
    Bad(
        "apply_principal_minus_infinity",
        "customer",
        "POST",
        APPLY,
        {"json": {**LOAN, "principal": "-Infinity"}},
    ),
    Bad("apply_principal_sql", "customer", "POST", APPLY, {"json": {**LOAN, "principal": SQL}}),
    Bad("apply_loan_type_sql", "customer", "POST", APPLY, {"json": {**LOAN, "loan_type": SQL}}),
    Bad(
        "apply_loan_type_nul",
        "customer",
        "POST",
        APPLY,
        {"json": {**LOAN, "loan_type": "home_loan" + NUL}},
    ),
    Bad(
        "apply_tenure_sql",
        "customer",
        "POST",
        APPLY,
        {"json": {**LOAN, "tenure_months": "12; DROP TABLE loans"}},
    ),
    Bad(
        "apply_principal_object",
        "customer",
        "POST",
        APPLY,
        {"json": {**LOAN, "principal": {"$gt": 0}}},
    ),
    Bad("apply_deep_json", "customer", "POST", APPLY, raw(DEEP_JSON)),
    Bad(
        "apply_idempotency_key_sql",
        "customer",
        "POST",
        APPLY,
        {"json": LOAN, "headers": {"Idempotency-Key": SQL}},
    ),
    Bad(
        "apply_idempotency_key_too_long",
        "customer",
        "POST",
        APPLY,
        {"json": LOAN, "headers": {"Idempotency-Key": "k" * 300}},
    ),
    # edit, rollback, reject, products
    Bad("patch_principal_nan", "agent", "PATCH", PATCH, {"json": {"principal": "NaN"}}),
    Bad("patch_tenure_1e30", "agent", "PATCH", PATCH, {"json": {"tenure_months": 10**30}}),
    Bad("patch_loan_type_sql", "agent", "PATCH", PATCH, {"json": {"loan_type": SQL}}),
    Bad("patch_principal_null", "agent", "PATCH", PATCH, {"json": {"principal": None}}),
    Bad("patch_malformed_json", "agent", "PATCH", PATCH, raw(b"{'principal': 1}")),
    Bad(
        "patch_if_match_sql",
        "agent",
        "PATCH",
        PATCH,
        {"json": {"tenure_months": 24}, "headers": {"If-Match": SQL}},
    ),
    Bad(
        "patch_if_match_huge",
        "agent",
        "PATCH",
        PATCH,
        {"json": {"tenure_months": 24}, "headers": {"If-Match": '"' + "9" * 30 + '"'}},
    ),
    Bad("rollback_version_1e30", "agent", "POST", ROLLBACK, {"json": {"version": 10**30}}),
    Bad("rollback_version_sql", "agent", "POST", ROLLBACK, {"json": {"version": "1 OR 1=1"}}),
    Bad("rollback_version_zero", "agent", "POST", ROLLBACK, {"json": {"version": 0}}),
    Bad("rollback_version_negative", "agent", "POST", ROLLBACK, {"json": {"version": -1}}),
    Bad("rollback_version_fraction", "agent", "POST", ROLLBACK, {"json": {"version": 1.5}}),
    Bad("rollback_version_1e400", "agent", "POST", ROLLBACK, raw(b'{"version": 1e400}')),
    Bad("reject_reason_too_long", "admin", "POST", REJECT, {"json": {"reason": "x" * 501}}),
    Bad("reject_reason_nul", "admin", "POST", REJECT, {"json": {"reason": f"bad{NUL}reason"}}),
    Bad("reject_reason_number", "admin", "POST", REJECT, {"json": {"reason": 10**30}}),
    Bad("reject_malformed_json", "admin", "POST", REJECT, raw(b'{"reason": }')),
    Bad(
        "product_rate_1e400",
        "admin",
        "PUT",
        PRODUCT_URL,
        raw(
            b'{"annual_rate": 1e400, "min_principal": 1000, "max_principal": 10000000,'
            b' "min_tenure_months": 1, "max_tenure_months": 360}'
        ),
    ),
    Bad(
        "product_rate_nan", "admin", "PUT", PRODUCT_URL, {"json": {**PRODUCT, "annual_rate": "NaN"}}
    ),
    Bad(
        "product_rate_negative",
        "admin",
        "PUT",
        PRODUCT_URL,
        {"json": {**PRODUCT, "annual_rate": "-1"}},
    ),
    Bad(
        "product_max_principal_1e30",
        "admin",
        "PUT",
        PRODUCT_URL,
        {"json": {**PRODUCT, "max_principal": 10**30}},
    ),
    Bad(
        "product_max_tenure_1e30",
        "admin",
        "PUT",
        PRODUCT_URL,
        {"json": {**PRODUCT, "max_tenure_months": 10**30}},
    ),
    Bad(
        "product_other_type_in_body",
        "admin",
        "PUT",
        PRODUCT_URL,
        {"json": {**PRODUCT, "loan_type": "car_loan"}},
    ),
    Bad(
        "product_type_sql_in_path",
        "admin",
        "PUT",
        "/api/v1/admin/loan-products/' OR 1=1 --",
        {"json": PRODUCT},
    ),
    # path parameters
    Bad("loan_id_sql", "admin", "GET", "/api/v1/admin/loans/1 OR 1=1", {}),
    Bad("loan_id_huge", "admin", "GET", "/api/v1/admin/loans/99999999999999999999", {}),
    Bad("loan_id_negative", "admin", "GET", "/api/v1/admin/loans/-1", {}),
    Bad("loan_id_fraction", "customer", "GET", "/api/v1/customer/loans/1.5", {}),
    Bad("user_id_zero", "admin", "POST", "/api/v1/admin/users/0/disable", {}),
    Bad("legacy_loan_id_sql", "customer", "GET", "/view_loan_history/1' OR '1'='1", {}),
    Bad("legacy_loan_id_huge", "agent", "POST", "/edit_loan/99999999999999999999", {"json": {}}),
    Bad("legacy_agent_id_sql", "admin", "GET", "/approve_agent/1;DROP TABLE users", {}),
    # query parameters
    Bad("customer_status_sql", "customer", "GET", APPLY, {"params": {"status": SQL}}),
    Bad("admin_status_sql", "admin", "GET", ADMIN_LOANS, {"params": {"status": SQL}}),
    Bad("admin_loan_type_sql", "admin", "GET", ADMIN_LOANS, {"params": {"loan_type": SQL}}),
    Bad("admin_customer_id_sql", "admin", "GET", ADMIN_LOANS, {"params": {"customer_id": SQL}}),
    Bad(
        "admin_customer_id_huge",
        "admin",
        "GET",
        ADMIN_LOANS,
        {"params": {"customer_id": 10**30}},
    ),
    Bad("admin_users_role_sql", "admin", "GET", "/api/v1/admin/users", {"params": {"role": SQL}}),
    Bad("cursor_sql", "admin", "GET", ADMIN_LOANS, {"params": {"cursor": SQL}}),
    Bad("cursor_nul", "admin", "GET", ADMIN_LOANS, {"params": {"cursor": NUL}}),
    Bad("cursor_too_long", "admin", "GET", ADMIN_LOANS, {"params": {"cursor": "A" * 201}}),
    Bad(
        "cursor_with_a_huge_id",
        "admin",
        "GET",
        ADMIN_LOANS,
        {"params": {"cursor": cursor("2020-01-01T00:00:00+00:00|99999999999999999999999")}},
    ),
    Bad(
        "cursor_past_the_calendar",
        "admin",
        "GET",
        "/api/v1/admin/users",
        {"params": {"cursor": cursor("9999-12-31T23:59:59-05:00|1")}},
    ),
    Bad(
        "cursor_before_the_calendar",
        "agent",
        "GET",
        "/api/v1/agent/customers",
        {"params": {"cursor": cursor("0001-01-01T00:00:00+05:00|1")}},
    ),
    Bad("limit_zero", "admin", "GET", ADMIN_LOANS, {"params": {"limit": 0}}),
    Bad("limit_negative", "admin", "GET", ADMIN_LOANS, {"params": {"limit": -1}}),
    Bad("limit_201", "admin", "GET", ADMIN_LOANS, {"params": {"limit": 201}}),
    Bad("limit_1e30", "admin", "GET", ADMIN_LOANS, {"params": {"limit": 10**30}}),
    Bad("limit_1e400", "admin", "GET", ADMIN_LOANS, {"params": {"limit": "1e400"}}),
    Bad("limit_sql", "customer", "GET", APPLY, {"params": {"limit": SQL}}),
    Bad("created_from_sql", "admin", "GET", ADMIN_LOANS, {"params": {"created_from": SQL}}),
    Bad("created_to_feb_30", "admin", "GET", ADMIN_LOANS, {"params": {"created_to": "2024-02-30"}}),
    Bad(
        "created_from_hour_25",
        "agent",
        "GET",
        "/api/v1/agent/loans",
        {"params": {"created_from": "2024-01-01T25:00:00"}},
    ),
    Bad("created_to_too_long", "admin", "GET", ADMIN_LOANS, {"params": {"created_to": "2" * 41}}),
    Bad(
        "created_from_year_99999",
        "admin",
        "GET",
        ADMIN_LOANS,
        {"params": {"created_from": "99999-01-01"}},
    ),
    Bad(
        "created_to_last_day",
        "admin",
        "GET",
        ADMIN_LOANS,
        {"params": {"created_to": "9999-12-31"}},
        EDGE,
    ),
    Bad(
        "created_from_first_instant_east",
        "admin",
        "GET",
        ADMIN_LOANS,
        {"params": {"created_from": "0001-01-01T00:00:00+14:00"}},
        EDGE,
    ),
    Bad(
        "updated_to_last_instant",
        "agent",
        "GET",
        "/api/v1/agent/loans",
        {"params": {"updated_to": "9999-12-31T23:59:59.999999+00:00"}},
        EDGE,
    ),
    Bad("legacy_status_sql", "customer", "GET", "/getloans", {"params": {"status": SQL}}),
    Bad("legacy_status_nul", "admin", "GET", "/getloans", {"params": {"status": NUL}}),
    Bad(
        "legacy_start_date_sql",
        "admin",
        "GET",
        "/filter-by-create-date",
        {"params": {"start_date": SQL, "end_date": "2024-01-01"}},
    ),
    Bad(
        "legacy_start_date_year_0",
        "agent",
        "GET",
        "/filter-by-update-date",
        {"params": {"start_date": "0000-01-01", "end_date": "2024-01-01"}},
    ),
    Bad(
        "legacy_end_before_start",
        "admin",
        "GET",
        "/filter-by-create-date",
        {"params": {"start_date": "2024-01-02", "end_date": "2024-01-01"}},
    ),
    Bad(
        "legacy_end_date_last_day",
        "admin",
        "GET",
        "/filter-by-create-date",
        {"params": {"start_date": "2024-01-01", "end_date": "9999-12-31"}},
        EDGE,
    ),
    # legacy loans
    Bad("legacy_new_loan_malformed_json", "customer", "POST", "/new_loan", raw(b"{")),
    Bad(
        "legacy_new_loan_amount_1e400",
        "customer",
        "POST",
        "/new_loan",
        raw(b'{"loan_amount": 1e400, "loan_type": "Home_loan", "duration": 12}'),
    ),
    Bad(
        "legacy_new_loan_amount_nan",
        "customer",
        "POST",
        "/new_loan",
        {"json": {**LEGACY_LOAN, "loan_amount": "NaN"}},
    ),
    Bad(
        "legacy_new_loan_amount_1e30",
        "customer",
        "POST",
        "/new_loan",
        {"json": {**LEGACY_LOAN, "loan_amount": 10**30}},
    ),
    Bad(
        "legacy_new_loan_type_sql",
        "customer",
        "POST",
        "/new_loan",
        {"json": {**LEGACY_LOAN, "loan_type": SQL}},
    ),
    Bad(
        "legacy_new_loan_duration_1e30",
        "customer",
        "POST",
        "/new_loan",
        {"json": {**LEGACY_LOAN, "duration": 10**30}},
    ),
    Bad(
        "legacy_new_loan_duration_5000_digits",
        "customer",
        "POST",
        "/new_loan",
        raw(b'{"loan_amount": 10000, "loan_type": "Home_loan", "duration": ' + LONG_INT + b"}"),
    ),
    Bad("legacy_new_loan_deep_json", "customer", "POST", "/new_loan", raw(DEEP_JSON)),
    Bad(
        "legacy_edit_amount_infinity",
        "agent",
        "POST",
        "/edit_loan/{loan}",
        {"json": {"loan_amount": "Infinity"}},
    ),
    Bad(
        "legacy_edit_duration_text",
        "agent",
        "POST",
        "/edit_loan/{loan}",
        {"json": {"duration": "abc"}},
    ),
    Bad(
        "legacy_edit_type_nul",
        "agent",
        "POST",
        "/edit_loan/{loan}",
        {"json": {"loan_type": NUL}},
    ),
]


@dataclass
class World:
    client: httpx.AsyncClient
    admin: Caller
    customer: Caller
    agent: Caller
    loan_id: int

    def headers(self, role: str, *, legacy: bool) -> dict[str, str]:
        caller = {"customer": self.customer, "agent": self.agent, "admin": self.admin}.get(role)
        if caller is None:
            return {}
        return legacy_headers(token_of(caller.headers)) if legacy else dict(caller.headers)


@pytest.fixture
async def world(client, admin, customer, agent) -> World:
    loan = await requested_loan(client, customer.headers, agent.headers)
    return World(client, admin, customer, agent, loan["id"])


def assert_error_shape(response: httpx.Response, *, legacy: bool, basic_login: bool) -> None:
    assert_no_leak(response)
    assert response.headers.get("x-content-type-options") == "nosniff"
    if response.status_code < 400:
        return
    if not legacy:
        assert_v1_error(response)
    elif basic_login and response.status_code == 401:
        # LEGACY.md: wrong credentials are the original's plain `Could not verify`.
        assert response.text == "Could not verify"
    else:
        assert_legacy_error(response)


def test_bad_inputs_have_unique_names():
    names = [bad.name for bad in BAD_INPUTS]
    assert len(names) == len(set(names))
    assert len(BAD_INPUTS) >= 100, len(BAD_INPUTS)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[bad.name for bad in BAD_INPUTS])
async def test_bad_input_is_a_clean_4xx_and_changes_nothing(world, bad):
    client = world.client
    legacy = not bad.url.startswith("/api/v1")
    before = await database_state(client, world.admin.headers)
    kwargs = dict(bad.kwargs)
    kwargs["headers"] = {**world.headers(bad.role, legacy=legacy), **kwargs.get("headers", {})}
    response = await client.request(bad.method, bad.url.format(loan=world.loan_id), **kwargs)
    expected = "a 4xx" if bad.allowed == ANY_4XX else sorted(bad.allowed)
    assert response.status_code in bad.allowed, (
        f"{bad.name}: {response.status_code}, expected {expected}: {response.text[:300]}"
    )
    assert_error_shape(response, legacy=legacy, basic_login=bad.url == "/login")
    assert await database_state(client, world.admin.headers) == before


# --- mass assignment: every input model refuses unknown fields ----------------------------------


class Model(NamedTuple):
    name: str
    role: str
    method: str
    url: str
    body: dict[str, Any]
    unknown: dict[str, Any]  # one field the model does not have, with a tempting value
    success: int


MODELS = [
    Model("register_customer", "anonymous", "POST", V1_REG, REG, {"role": "admin"}, 201),
    Model(
        "register_agent",
        "anonymous",
        "POST",
        "/api/v1/auth/register/agent",
        REG,
        {"status": "active"},
        201,
    ),
    Model("apply", "customer", "POST", APPLY, LOAN, {"annual_rate": "0.01"}, 201),
    Model("patch", "agent", "PATCH", PATCH, {"tenure_months": 24}, {"status": "approved"}, 200),
    Model("rollback", "agent", "POST", ROLLBACK, {"version": 1}, {"agent_id": 1}, 200),
    Model("reject", "admin", "POST", REJECT, {"reason": "r"}, {"status": "approved"}, 200),
    Model("product", "admin", "PUT", PRODUCT_URL, PRODUCT, {"emi": "1.00"}, 200),
]

# The original read only the keys it knew: legacy bodies ignore the rest (and assign nothing).
LEGACY_MODELS = [
    Model(
        "legacy_register_customer", "anonymous", "POST", "/register_Customer", REG, {"id": 1}, 200
    ),
    Model(
        "legacy_register_agent",
        "anonymous",
        "POST",
        "/register_Agent",
        REG,
        {"public_id": "x"},
        200,
    ),
    Model(
        "legacy_new_loan", "customer", "POST", "/new_loan", LEGACY_LOAN, {"Status": "Approved"}, 200
    ),
    Model(
        "legacy_edit_loan",
        "agent",
        "POST",
        "/edit_loan/{loan}",
        {"duration": 24},
        {"Rate of interest": 0},
        200,
    ),
]


@pytest.mark.parametrize("model", MODELS, ids=[model.name for model in MODELS])
async def test_every_input_model_refuses_unknown_fields(world, model):
    client = world.client
    url = model.url.format(loan=world.loan_id)
    headers = world.headers(model.role, legacy=False)
    (field_name,) = model.unknown
    before = await database_state(client, world.admin.headers)

    refused = await client.request(
        model.method, url, json={**model.body, **model.unknown}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert_error_shape(refused, legacy=False, basic_login=False)
    locations = [error["loc"] for error in refused.json()["errors"]]
    assert ["body", field_name] in locations, locations
    assert await database_state(client, world.admin.headers) == before

    # Control: without the unknown field the same request succeeds.
    accepted = await client.request(model.method, url, json=model.body, headers=headers)
    assert accepted.status_code == model.success, accepted.text


@pytest.mark.parametrize("model", LEGACY_MODELS, ids=[model.name for model in LEGACY_MODELS])
async def test_legacy_bodies_ignore_unknown_fields(world, model):
    client = world.client
    url = model.url.format(loan=world.loan_id)
    headers = world.headers(model.role, legacy=True)
    ((field_name, tempting),) = model.unknown.items()

    accepted = await client.request(
        model.method, url, json={**model.body, **model.unknown}, headers=headers
    )
    assert accepted.status_code == model.success, accepted.text
    data = accepted.json().get("data", {})
    assert data.get(field_name, object()) != tempting
    admin = world.headers("admin", legacy=True)
    loans = (await client.get("/getloans", headers=admin)).json()["Loans"]
    assert all(loan["Status"] != "Approved" and loan["Rate of interest"] > 0 for loan in loans)
    users = (await client.get("/all_users", headers=admin)).json()["Users"]
    assert all(user["public_id"] != tempting for user in users)


# --- CORS -------------------------------------------------------------------------------------

PREFLIGHT = {
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "Authorization, Content-Type, If-Match",
}


async def test_cors_is_closed_by_default(client, customer):
    for origin in ("https://evil.example", "https://ok.example", "null"):
        simple = await client.get("/api/v1/auth/me", headers={**customer.headers, "Origin": origin})
        assert simple.status_code == 200, simple.text
        assert "access-control-allow-origin" not in simple.headers
        assert "access-control-allow-credentials" not in simple.headers
        preflight = await client.options(
            "/api/v1/agent/loans/1", headers={"Origin": origin, **PREFLIGHT}
        )
        assert 400 <= preflight.status_code < 500, preflight.text
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-methods" not in preflight.headers


async def test_cors_allows_only_the_configured_origin(make_app, customer):
    app = await make_app(cors_origins=["https://ok.example"])
    async with client_for(app) as client:
        allowed = await client.get(
            "/api/v1/auth/me", headers={**customer.headers, "Origin": "https://ok.example"}
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == "https://ok.example"
        preflight = await client.options(
            "/api/v1/agent/loans/1", headers={"Origin": "https://ok.example", **PREFLIGHT}
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://ok.example"
        assert "PATCH" in preflight.headers["access-control-allow-methods"]

        for origin in ("https://evil.example", "https://ok.example.evil.example", "null"):
            other = await client.get(
                "/api/v1/auth/me", headers={**customer.headers, "Origin": origin}
            )
            assert other.status_code == 200, other.text
            assert "access-control-allow-origin" not in other.headers
            refused = await client.options(
                "/api/v1/agent/loans/1", headers={"Origin": origin, **PREFLIGHT}
            )
            assert 400 <= refused.status_code < 500, refused.text
            assert "access-control-allow-origin" not in refused.headers
            assert refused.headers.get("access-control-allow-origin") != "*"


# --- caching of credentials, sniffing, docs -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/api/v1/auth/token", "form"),
        ("POST", "/api/v1/auth/login", "basic"),
        ("POST", "/login", "basic"),
        ("GET", "/login", "basic"),
    ],
)
async def test_responses_with_a_token_are_not_stored(client, customer, method, path, kind):
    if kind == "form":
        response = await client.request(
            method, path, data={"username": customer.username, "password": PASSWORD}
        )
    else:
        response = await client.request(method, path, auth=(customer.username, PASSWORD))
    assert response.status_code == 200, response.text
    assert "token" in response.text
    cache_control = response.headers.get("cache-control", "")
    assert "no-store" in cache_control, f"{method} {path}: Cache-Control {cache_control!r}"


def _example_url(template: str) -> str:
    return template.format(
        loan_id=1,
        agent_id=1,
        user_id=1,
        repayment_id=1,
        loan_type="home_loan",
        endpoint_id=1,
        delivery_id=1,
    )


async def test_nosniff_on_every_route(app, client):
    """Every route the app serves, plus errors, static files and the docs, says nosniff."""
    urls: list[tuple[str, str]] = []
    for method, template in sorted(served_routes(app)):
        if method == "MOUNT":
            urls.append(("GET", f"{template}/favicon.png"))
        else:
            urls.append((method, _example_url(template)))
    urls += [("GET", "/no-such-page"), ("DELETE", "/api/v1/auth/me"), ("GET", "/ALL_USERS")]
    assert {("GET", "/docs"), ("GET", "/openapi.json")} <= set(urls)
    assert len(urls) >= len(DOCS_ROUTES) + 62
    missing = []
    for method, url in urls:
        response = await client.request(method, url)
        assert response.status_code < 500, (method, url, response.text[:300])
        if response.headers.get("x-content-type-options") != "nosniff":
            missing.append(f"{method} {url} ({response.status_code})")
    assert not missing, missing


DOCS_URLS = [
    "/docs",
    "/redoc",
    "/openapi.json",
    "/docs/oauth2-redirect",
    "/static-offline-docs/favicon.png",
]


async def test_docs_can_be_switched_off(client, make_app):
    for url in DOCS_URLS:  # control: served by default
        assert (await client.get(url)).status_code == 200, url
    hidden = await make_app(docs=False)
    async with client_for(hidden) as quiet:
        for url in DOCS_URLS:
            response = await quiet.get(url)
            assert response.status_code == 404, (url, response.status_code)
            assert_v1_error(response)
        assert (await quiet.get("/healthz")).status_code == 200
