"""OWASP API1 (object level) and API5 (function level): every route, called as every kind of caller.

The routes come from the app itself (its OpenAPI document, cross-checked against the route table
with included routers flattened), so a route added without a row in EXPECTED fails the test.
Every call gets fresh objects (a new loan, a new target user), so no call sees another's effects.
"""

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import PASSWORD, Caller, bearer, register
from tests.helpers import write_deliveries
from tests.security.support import (
    DOCS_ROUTES,
    assert_legacy_error,
    assert_no_leak,
    assert_v1_error,
    documented_routes,
    legacy_headers,
    legacy_routes,
    register_user,
    requested_loan,
    served_routes,
    token_of,
)

ROLES = ("anonymous", "customer", "other_customer", "pending_agent", "agent", "admin")
Expected = int | frozenset[int]


def r(
    anonymous: Expected,
    customer: Expected,
    other_customer: Expected,
    pending_agent: Expected,
    agent: Expected,
    admin: Expected,
) -> dict[str, Expected]:
    """One row: the status each caller gets (other_customer: the loan is the customer's)."""
    return dict(
        zip(ROLES, (anonymous, customer, other_customer, pending_agent, agent, admin), strict=True)
    )


# THE table. v1 (API.md): anonymous or a pending agent's token -> 401, a role that may not call
# the endpoint -> 403, another customer's loan -> 404. Legacy (LEGACY.md): every refusal is a 401.
# Login routes are called with each caller's own credentials (anonymous: unknown credentials).
# anonymous, customer, other_customer, pending_agent, agent, admin
EXPECTED: dict[tuple[str, str], dict[str, Expected]] = {
    # /api/v1/auth
    ("POST", "/api/v1/auth/register/customer"): r(201, 201, 201, 201, 201, 201),
    ("POST", "/api/v1/auth/register/agent"): r(201, 201, 201, 201, 201, 201),
    ("POST", "/api/v1/auth/token"): r(401, 200, 200, 403, 200, 200),
    ("POST", "/api/v1/auth/login"): r(401, 200, 200, 403, 200, 200),
    ("GET", "/api/v1/auth/me"): r(401, 200, 200, 401, 200, 200),
    # each caller logs out a token of its own minted for the case
    ("POST", "/api/v1/auth/logout"): r(401, 204, 204, 401, 204, 204),
    # with a wrong current password: authorized, refused on the field, nothing changes
    ("POST", "/api/v1/auth/password"): r(401, 422, 422, 401, 422, 422),
    ("GET", "/api/v1/loan-products"): r(200, 200, 200, 200, 200, 200),
    # /api/v1/customer
    ("POST", "/api/v1/customer/loans"): r(401, 201, 201, 401, 403, 403),
    ("GET", "/api/v1/customer/loans"): r(401, 200, 200, 401, 403, 403),
    ("GET", "/api/v1/customer/loans/{loan_id}"): r(401, 200, 404, 401, 403, 403),
    ("GET", "/api/v1/customer/loans/{loan_id}/history"): r(401, 200, 404, 401, 403, 403),
    ("POST", "/api/v1/customer/loans/{loan_id}/withdraw"): r(401, 200, 404, 401, 403, 403),
    ("GET", "/api/v1/customer/loans/{loan_id}/schedule"): r(401, 200, 404, 401, 403, 403),
    ("GET", "/api/v1/customer/loans/{loan_id}/payoff"): r(401, 200, 404, 401, 403, 403),
    ("GET", "/api/v1/customer/loans/{loan_id}/statement"): r(401, 200, 404, 401, 403, 403),
    # /api/v1/agent
    ("GET", "/api/v1/agent/customers"): r(401, 403, 403, 401, 200, 403),
    ("GET", "/api/v1/agent/loans"): r(401, 403, 403, 401, 200, 403),
    ("POST", "/api/v1/agent/loans"): r(401, 403, 403, 401, 201, 403),
    ("GET", "/api/v1/agent/loans/{loan_id}"): r(401, 403, 403, 401, 200, 403),
    ("PATCH", "/api/v1/agent/loans/{loan_id}"): r(401, 403, 403, 401, 200, 403),
    ("POST", "/api/v1/agent/loans/{loan_id}/request"): r(401, 403, 403, 401, 200, 403),
    ("POST", "/api/v1/agent/loans/{loan_id}/rollback"): r(401, 403, 403, 401, 200, 403),
    ("GET", "/api/v1/agent/loans/{loan_id}/history"): r(401, 403, 403, 401, 200, 403),
    ("GET", "/api/v1/agent/requests"): r(401, 403, 403, 401, 200, 403),
    ("POST", "/api/v1/agent/loans/{loan_id}/repayments"): r(401, 403, 403, 401, 201, 403),
    ("GET", "/api/v1/agent/loans/{loan_id}/repayments/{repayment_id}"): r(
        401, 403, 403, 401, 200, 403
    ),
    ("GET", "/api/v1/agent/loans/{loan_id}/payoff"): r(401, 403, 403, 401, 200, 403),
    ("GET", "/api/v1/agent/loans/{loan_id}/statement"): r(401, 403, 403, 401, 200, 403),
    # /api/v1/admin
    ("GET", "/api/v1/admin/users"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/customers"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/agents"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/agent-applications"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/agents/{agent_id}/approve"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/agents/{agent_id}/reject"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/users/{user_id}"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/users/{user_id}/disable"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/users/{user_id}/unlock"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/users/{user_id}/reset-password"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/users/{user_id}/enable"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/agents/{agent_id}/loan-requests"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/loans"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/loans/{loan_id}"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/loans/{loan_id}/history"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/loans/{loan_id}/approve"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/loans/{loan_id}/reject"): r(401, 403, 403, 401, 403, 200),
    ("PUT", "/api/v1/admin/loan-products/{loan_type}"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/loans/{loan_id}/disburse"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/loans/{loan_id}/repayments"): r(401, 403, 403, 401, 403, 201),
    ("GET", "/api/v1/admin/loans/{loan_id}/repayments/{repayment_id}"): r(
        401, 403, 403, 401, 403, 200
    ),
    ("POST", "/api/v1/admin/loans/{loan_id}/repayments/{repayment_id}/reverse"): r(
        401, 403, 403, 401, 403, 200
    ),
    ("POST", "/api/v1/admin/loans/{loan_id}/write-off"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/loans/{loan_id}/payoff"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/loans/{loan_id}/statement"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/repayments"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/close-of-business"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/portfolio"): r(401, 403, 403, 401, 403, 200),
    # events and webhooks (EVENTS.md): admins only
    ("GET", "/api/v1/admin/events"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/webhooks"): r(401, 403, 403, 401, 403, 201),
    ("GET", "/api/v1/admin/webhooks"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/webhooks/{endpoint_id}"): r(401, 403, 403, 401, 403, 200),
    ("PATCH", "/api/v1/admin/webhooks/{endpoint_id}"): r(401, 403, 403, 401, 403, 200),
    ("DELETE", "/api/v1/admin/webhooks/{endpoint_id}"): r(401, 403, 403, 401, 403, 204),
    ("POST", "/api/v1/admin/webhooks/{endpoint_id}/rotate-secret"): r(401, 403, 403, 401, 403, 200),
    ("GET", "/api/v1/admin/webhooks/{endpoint_id}/deliveries"): r(401, 403, 403, 401, 403, 200),
    ("POST", "/api/v1/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry"): r(
        401, 403, 403, 401, 403, 202
    ),
    # service probes
    ("GET", "/healthz"): r(200, 200, 200, 200, 200, 200),
    ("GET", "/readyz"): r(200, 200, 200, 200, 200, 200),
    # Prometheus text (README "Monitoring"): unauthenticated, to be fenced off at the network.
    ("GET", "/metrics"): r(200, 200, 200, 200, 200, 200),
    # legacy (LEGACY.md)
    ("POST", "/register_Customer"): r(200, 200, 200, 200, 200, 200),
    ("POST", "/register_Agent"): r(200, 200, 200, 200, 200, 200),
    ("GET", "/login"): r(401, 200, 200, 401, 200, 200),
    ("POST", "/login"): r(401, 200, 200, 401, 200, 200),
    ("POST", "/new_loan"): r(401, 200, 200, 401, 401, 401),
    ("GET", "/getloans"): r(401, 200, 200, 401, 200, 200),
    ("POST", "/edit_loan/{loan_id}"): r(401, 401, 401, 401, 200, 401),
    ("GET", "/request_loan/{loan_id}"): r(401, 401, 401, 401, 200, 401),
    ("POST", "/request_loan/{loan_id}"): r(401, 401, 401, 401, 200, 401),
    ("GET", "/loan_Requests_by_agent"): r(401, 401, 401, 401, 200, 401),
    ("GET", "/view_loan_history/{loan_id}"): r(401, 200, 404, 401, 200, 200),
    ("GET", "/all_Customers"): r(401, 401, 401, 401, 200, 200),
    ("GET", "/filter-by-create-date"): r(401, 401, 401, 401, 200, 200),
    ("GET", "/filter-by-update-date"): r(401, 401, 401, 401, 200, 200),
    ("GET", "/all_users"): r(401, 401, 401, 401, 401, 200),
    ("GET", "/all_agents"): r(401, 401, 401, 401, 401, 200),
    ("GET", "/all_Agent_applications"): r(401, 401, 401, 401, 401, 200),
    ("GET", "/approve_agent/{agent_id}"): r(401, 401, 401, 401, 401, 200),
    ("POST", "/approve_agent/{agent_id}"): r(401, 401, 401, 401, 401, 200),
    ("GET", "/Agent_loan_requests/{agent_id}"): r(401, 401, 401, 401, 401, 200),
    ("GET", "/approve_loan/{loan_id}"): r(401, 401, 401, 401, 401, 200),
    ("POST", "/approve_loan/{loan_id}"): r(401, 401, 401, 401, 401, 200),
    ("GET", "/reject_loan/{loan_id}"): r(401, 401, 401, 401, 401, 200),
    ("POST", "/reject_loan/{loan_id}"): r(401, 401, 401, 401, 401, 200),
}

# LEGACY.md "Messages for refused calls": the body of a legacy role refusal, by route and caller.
UNAUTHORISED = "Unauthorised Access"
NOT_AUTHORIZED_VIEW = "Not Authorized to view this page"
NOT_AUTHORISED_FILTER = "You are not authorised to view this page!"
ADMIN_ONLY = "You are not authorized to open this page"
NOT_APPROVED = "Your Application for agent is not approved by the admin."
CUSTOMERS = ("customer", "other_customer")
LEGACY_REFUSALS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("POST", "/edit_loan/{loan_id}"): (CUSTOMERS, UNAUTHORISED),
    ("GET", "/request_loan/{loan_id}"): (CUSTOMERS, UNAUTHORISED),
    ("POST", "/request_loan/{loan_id}"): (CUSTOMERS, UNAUTHORISED),
    ("GET", "/all_Customers"): (CUSTOMERS, UNAUTHORISED),
    ("GET", "/loan_Requests_by_agent"): ((*CUSTOMERS, "admin"), NOT_AUTHORIZED_VIEW),
    ("GET", "/filter-by-create-date"): (CUSTOMERS, NOT_AUTHORISED_FILTER),
    ("GET", "/filter-by-update-date"): (CUSTOMERS, NOT_AUTHORISED_FILTER),
    **dict.fromkeys(
        [
            ("GET", "/all_users"),
            ("GET", "/all_agents"),
            ("GET", "/all_Agent_applications"),
            ("GET", "/approve_agent/{agent_id}"),
            ("POST", "/approve_agent/{agent_id}"),
            ("GET", "/Agent_loan_requests/{agent_id}"),
            ("GET", "/approve_loan/{loan_id}"),
            ("POST", "/approve_loan/{loan_id}"),
            ("GET", "/reject_loan/{loan_id}"),
            ("POST", "/reject_loan/{loan_id}"),
        ],
        ((*CUSTOMERS, "agent"), ADMIN_ONLY),
    ),
}

SERVICE_ROUTES = ("/healthz", "/readyz", "/metrics")
LOGOUT = ("POST", "/api/v1/auth/logout")
BASIC_LOGINS = {("POST", "/api/v1/auth/login"), ("GET", "/login"), ("POST", "/login")}
FORM_LOGINS = {("POST", "/api/v1/auth/token")}
REGISTRATIONS = {
    ("POST", "/api/v1/auth/register/customer"),
    ("POST", "/api/v1/auth/register/agent"),
    ("POST", "/register_Customer"),
    ("POST", "/register_Agent"),
}
PUBLIC_LEGACY = REGISTRATIONS | BASIC_LOGINS
# Lists where a customer sees the loans they own and only those.
OWN_LOAN_LISTS = {("GET", "/api/v1/customer/loans"): "items", ("GET", "/getloans"): "Loans"}
# Targets of account decisions: a fresh user of the right kind, not one of the callers.
PENDING_AGENT_TARGETS = {
    ("POST", "/api/v1/admin/agents/{agent_id}/approve"),
    ("POST", "/api/v1/admin/agents/{agent_id}/reject"),
    ("GET", "/approve_agent/{agent_id}"),
    ("POST", "/approve_agent/{agent_id}"),
}
# A name that does not resolve is accepted when saved (EVENTS.md), and nothing is ever sent.
HOOK_URL = "https://hooks.authorization-matrix.invalid/loanapi"
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/customer/loans"): {
        "loan_type": "home_loan",
        "principal": "10000",
        "tenure_months": 12,
    },
    ("PATCH", "/api/v1/agent/loans/{loan_id}"): {"tenure_months": 24},
    ("POST", "/api/v1/agent/loans/{loan_id}/rollback"): {"version": 1},
    ("POST", "/api/v1/admin/loans/{loan_id}/reject"): {"reason": "authorization matrix"},
    ("POST", "/api/v1/agent/loans/{loan_id}/repayments"): {"amount": "10.00"},
    ("POST", "/api/v1/admin/loans/{loan_id}/repayments"): {"amount": "10.00"},
    ("POST", "/api/v1/admin/loans/{loan_id}/repayments/{repayment_id}/reverse"): {
        "reason": "authorization matrix"
    },
    ("POST", "/api/v1/admin/loans/{loan_id}/write-off"): {"reason": "authorization matrix"},
    # The defaults: setting them again changes nothing for the other cases.
    ("PUT", "/api/v1/admin/loan-products/{loan_type}"): {
        "annual_rate": "6.90",
        "min_principal": "1000.00",
        "max_principal": "10000000.00",
        "min_tenure_months": 1,
        "max_tenure_months": 360,
    },
    ("POST", "/api/v1/admin/webhooks"): {"url": HOOK_URL, "event_types": ["*"]},
    ("POST", "/api/v1/auth/password"): {
        "current_password": "not-the-current-one",
        "new_password": "matrix-new-password-7",
    },
    ("PATCH", "/api/v1/admin/webhooks/{endpoint_id}"): {"description": "authorization matrix"},
    ("POST", "/new_loan"): {"loan_amount": 10000, "loan_type": "Home_loan", "duration": 12},
    ("POST", "/edit_loan/{loan_id}"): {"duration": 24},
}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/filter-by-create-date"): {"start_date": "2000-01-01", "end_date": "2100-12-31"},
    ("GET", "/filter-by-update-date"): {"start_date": "2000-01-01", "end_date": "2100-12-31"},
}


# Routes of a loan after approval: their loan is approved, disbursed and has one repayment
# (the disbursement route's loan is only approved).
DISBURSE = ("POST", "/api/v1/admin/loans/{loan_id}/disburse")
SERVICED = {
    key
    for key in EXPECTED
    if key[1].startswith("/api/v1")
    and key[1].split("/")[-1]
    in {"disburse", "repayments", "{repayment_id}", "reverse", "write-off", "payoff", "statement"}
}


async def serviced(world: "World", loan_id: int, *, disbursed: bool) -> int | None:
    """Approve the loan and, unless `disbursed` is false, disburse it and repay 10.00 on it."""
    admin = world.admin.headers
    approved = await world.client.post(f"/api/v1/admin/loans/{loan_id}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    if not disbursed:
        return None
    done = await world.client.post(f"/api/v1/admin/loans/{loan_id}/disburse", headers=admin)
    assert done.status_code == 200, done.text
    paid = await world.client.post(
        f"/api/v1/admin/loans/{loan_id}/repayments", json={"amount": "10.00"}, headers=admin
    )
    assert paid.status_code == 201, paid.text
    return int(paid.json()["id"])


@dataclass
class World:
    client: httpx.AsyncClient
    admin: Caller
    owner: Caller
    other: Caller
    agent: Caller
    pending: Caller
    codec: Any
    sessions: Any
    names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def caller(self, role: str) -> Caller | None:
        return {
            "anonymous": None,
            "customer": self.owner,
            "other_customer": self.other,
            "pending_agent": self.pending,
            "agent": self.agent,
            "admin": self.admin,
        }[role]

    def headers(self, role: str, *, legacy: bool) -> dict[str, str]:
        caller = self.caller(role)
        if caller is None:
            return {}
        return legacy_headers(token_of(caller.headers)) if legacy else dict(caller.headers)

    def credentials(self, role: str) -> tuple[str, str]:
        caller = self.caller(role)
        if caller is None:
            return ("nobody_matrix", "wrong-password-1")
        password = "admin-password-1" if role == "admin" else PASSWORD
        return (caller.username, password)

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"


async def webhook_with_delivery(world: World) -> dict[str, int]:
    """A fresh endpoint, and one delivery to it (an event written after it was added)."""
    admin = world.admin.headers
    body = {"url": HOOK_URL, "event_types": ["*"]}
    created = await world.client.post("/api/v1/admin/webhooks", json=body, headers=admin)
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    await requested_loan(world.client, world.owner.headers, world.agent.headers)
    await write_deliveries(world.sessions)
    listed = await world.client.get(
        f"/api/v1/admin/webhooks/{endpoint_id}/deliveries?limit=1", headers=admin
    )
    return {"endpoint_id": endpoint_id, "delivery_id": listed.json()["items"][0]["id"]}


@dataclass
class Call:
    method: str
    url: str
    kwargs: dict[str, Any]
    loan_id: int | None


async def build_world(
    client: httpx.AsyncClient,
    app: Any,
    admin: Caller,
    new_customer: Callable[[str], Awaitable[Caller]],
    new_agent: Callable[[str], Awaitable[Caller]],
) -> World:
    owner = await new_customer("owner_a")
    other = await new_customer("other_b")
    agent = await new_agent("agent_x")
    pending_user = await register(client, "agent", "pending_p")
    assert pending_user["status"] == "pending"
    # A pending agent cannot log in: a valid token is minted for them directly.
    token = app.state.codec.issue(user_id=pending_user["id"], role="agent")
    pending = Caller(pending_user["id"], "pending_p", bearer(token))
    return World(client, admin, owner, other, agent, pending, app.state.codec, app.state.sessions)


async def prepare(world: World, method: str, template: str, role: str) -> Call:
    """The request for one case, with fresh objects in its path parameters."""
    client, admin = world.client, world.admin
    key = (method, template)
    legacy = not template.startswith("/api/v1")
    params: dict[str, Any] = {}
    loan_id: int | None = None
    if "{loan_id}" in template or key in OWN_LOAN_LISTS:
        loan_id = (await requested_loan(client, world.owner.headers, world.agent.headers))["id"]
        params["loan_id"] = loan_id
        if key in SERVICED:
            params["repayment_id"] = await serviced(world, loan_id, disbursed=key != DISBURSE)
    if "{agent_id}" in template:
        if key in PENDING_AGENT_TARGETS:
            params["agent_id"] = (await register_user(client, "agent", world.name("target_a")))[
                "id"
            ]
        else:
            params["agent_id"] = world.agent.id
    if "{user_id}" in template:
        target = await register_user(client, "customer", world.name("target_c"))
        if template.endswith("/enable"):
            disabled = await client.post(
                f"/api/v1/admin/users/{target['id']}/disable", headers=admin.headers
            )
            assert disabled.status_code == 200, disabled.text
        params["user_id"] = target["id"]
    if "{loan_type}" in template:
        params["loan_type"] = "home_loan"
    if "{endpoint_id}" in template:
        params |= await webhook_with_delivery(world)
    url = template.format(**params)

    kwargs: dict[str, Any] = {}
    if key in BASIC_LOGINS:
        kwargs["auth"] = world.credentials(role)
    elif key in FORM_LOGINS:
        username, password = world.credentials(role)
        kwargs["data"] = {"username": username, "password": password}
    elif key == LOGOUT and (caller := world.caller(role)) is not None:
        kwargs["headers"] = bearer(world.codec.issue(user_id=caller.id, role=role))
    else:
        kwargs["headers"] = world.headers(role, legacy=legacy)
    if key in REGISTRATIONS:
        username = world.name("reg")
        kwargs["json"] = {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
        }
    elif key == ("POST", "/api/v1/agent/loans"):  # a walk-in application for the owner
        kwargs["json"] = {
            **BODIES[("POST", "/api/v1/customer/loans")],
            "customer_id": world.owner.id,
        }
    elif key in BODIES:
        kwargs["json"] = BODIES[key]
    if key in QUERIES:
        kwargs["params"] = QUERIES[key]
    return Call(method, url, kwargs, loan_id)


def check(
    key: tuple[str, str], role: str, call: Call, response: httpx.Response, expected: Expected
) -> list[str]:
    """Every way this response breaks the contract (empty when it keeps it)."""
    method, template = key
    legacy = not template.startswith("/api/v1") and template not in SERVICE_ROUTES
    allowed = {expected} if isinstance(expected, int) else set(expected)
    status = response.status_code
    where = f"{method} {template} as {role}"
    if status not in allowed:
        return [f"{where}: {status}, expected {sorted(allowed)}: {response.text[:200]}"]
    problems: list[str] = []

    def expect(condition: bool, message: str) -> None:
        if not condition:
            problems.append(f"{where}: {message}: {response.text[:200]}")

    try:
        assert_no_leak(response)
        expect(response.headers.get("x-content-type-options") == "nosniff", "no nosniff")
        expect(bool(response.headers.get("x-request-id")), "no X-Request-ID")
        if status >= 400 and not legacy:
            assert_v1_error(response)
            if status == 401:
                expect("www-authenticate" in response.headers, "401 without WWW-Authenticate")
        if status >= 400 and legacy:
            if key in BASIC_LOGINS and role == "anonymous":
                expect(response.text == "Could not verify", "wrong body for bad credentials")
                expect(
                    response.headers.get("www-authenticate") == 'Basic realm="Login Required!"',
                    "wrong challenge",
                )
            elif key in BASIC_LOGINS:
                expect(NOT_APPROVED in response.text, "pending agent login without its message")
            else:
                body = assert_legacy_error(response)
                if role == "anonymous" and key not in PUBLIC_LEGACY:
                    expect(body == {"message": "Token is missing!"}, "wrong missing-token body")
                elif role == "pending_agent" and key not in PUBLIC_LEGACY:
                    expect(body == {"message": "Token is invalid!"}, "wrong invalid-token body")
                elif key in LEGACY_REFUSALS and role in LEGACY_REFUSALS[key][0]:
                    expect(body == {"Message": LEGACY_REFUSALS[key][1]}, "wrong refusal message")
        if key in OWN_LOAN_LISTS and status == 200 and call.loan_id is not None:
            listed = response.json().get(OWN_LOAN_LISTS[key], [])
            ids = {item["id"] for item in listed}
            if role == "other_customer":
                expect(call.loan_id not in ids, "another customer's loan is listed")
            elif role == "customer":
                expect(call.loan_id in ids, "the owner's loan is missing (control)")
    except AssertionError as exc:
        problems.append(f"{where}: {exc}")
    return problems


async def test_every_route_has_a_row_in_the_table(app):
    documented = documented_routes(app)
    served = served_routes(app)
    # Every served route is documented, or is one of the listed documentation routes.
    assert served - documented == DOCS_ROUTES, sorted(served - documented)
    assert documented <= served, sorted(documented - served)
    # The legacy endpoints are in the document (tag `legacy`) and so in the inventory.
    legacy = legacy_routes(app)
    assert len(legacy) == 24, sorted(legacy)
    assert {("POST", "/login"), ("GET", "/getloans"), ("GET", "/all_users")} <= legacy
    missing = documented - set(EXPECTED)
    stale = set(EXPECTED) - documented
    assert not missing, f"routes without a row in EXPECTED: {sorted(missing)}"
    assert not stale, f"rows in EXPECTED for routes the app does not serve: {sorted(stale)}"
    assert all(set(row) == set(ROLES) for row in EXPECTED.values())


async def test_authorization_matrix(client, app, admin, new_customer, new_agent):
    assert documented_routes(app) == set(EXPECTED), "see test_every_route_has_a_row_in_the_table"
    world = await build_world(client, app, admin, new_customer, new_agent)
    failures: list[str] = []
    checked = 0
    for key, row in EXPECTED.items():
        for role in ROLES:
            call = await prepare(world, *key, role)
            response = await client.request(call.method, call.url, **call.kwargs)
            failures.extend(check(key, role, call, response, row[role]))
            checked += 1
    summary = (
        f"authorization matrix: {len(EXPECTED)} routes x {len(ROLES)} callers = {checked} calls, "
        f"{len(failures)} failures"
    )
    print(summary)  # noqa: T201
    assert checked == len(EXPECTED) * len(ROLES) == 93 * 6
    assert not failures, summary + "\n" + "\n".join(failures)


def _spellings(template: str) -> list[str]:
    """Other letter cases of a legacy path's first segment (`/ALL_USERS`, `/all_users`, ...)."""
    head = template[1:].split("/")[0]
    return sorted({head.lower(), head.upper(), head.swapcase()} - {head})


async def test_other_spellings_of_legacy_paths_are_guarded_alike(
    client, app, admin, new_customer, new_agent
):
    """Paths match in any letter case (LEGACY.md): no spelling skips the role check."""
    world = await build_world(client, app, admin, new_customer, new_agent)
    failures: list[str] = []
    checked = 0
    for key in sorted(legacy_routes(app)):
        method, template = key
        head = template[1:].split("/")[0]
        for spelling in _spellings(template):
            for role in ("anonymous", "customer", "agent"):
                call = await prepare(world, method, template, role)
                url = f"/{spelling}{call.url[1 + len(head) :]}"
                response = await client.request(method, url, **call.kwargs)
                failures.extend(
                    f"{url}: {problem}"
                    for problem in check(key, role, call, response, EXPECTED[key][role])
                )
                checked += 1
    assert checked >= 24 * 3, checked
    assert not failures, f"{checked} calls\n" + "\n".join(failures)
