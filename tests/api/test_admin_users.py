"""The admin's views of users and decisions on accounts; the agent's customer list; paging."""

from datetime import datetime
from typing import Any

import pytest

from tests.conftest import ADMIN, PASSWORD, bearer, register, token_for

USER_KEYS = {"id", "username", "email", "phone", "role", "status", "created_at"}
PROBLEM_KEYS = {"type", "title", "status", "detail"}
PROBLEM_JSON = "application/problem+json"
MISSING_ID = 987654


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    return dict(body)


def assert_user(body: dict[str, Any], **expected: Any) -> None:
    assert set(body) == USER_KEYS
    for key, value in expected.items():
        assert body[key] == value, key


def assert_page(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    assert isinstance(body["items"], list)
    for item in body["items"]:
        assert set(item) == USER_KEYS
    return dict(body)


def usernames(page: dict[str, Any]) -> list[str]:
    return [item["username"] for item in page["items"]]


def when(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))


async def set_up_population(client: Any, admin: Any) -> dict[str, dict[str, Any]]:
    """Two customers, and agents in every status: active, pending, rejected, disabled."""
    users = {
        "cust1": await register(client, "customer", "cust1"),
        "cust2": await register(client, "customer", "cust2"),
        "ag_active": await register(client, "agent", "ag_active"),
        "ag_pending": await register(client, "agent", "ag_pending"),
        "ag_rejected": await register(client, "agent", "ag_rejected"),
        "ag_disabled": await register(client, "agent", "ag_disabled"),
        "cust_disabled": await register(client, "customer", "cust_disabled"),
    }
    for name, action in [
        ("ag_active", "approve"),
        ("ag_rejected", "reject"),
        ("ag_disabled", "approve"),
    ]:
        response = await client.post(
            f"/api/v1/admin/agents/{users[name]['id']}/{action}", headers=admin.headers
        )
        assert response.status_code == 200, response.text
    for name in ("ag_disabled", "cust_disabled"):
        response = await client.post(
            f"/api/v1/admin/users/{users[name]['id']}/disable", headers=admin.headers
        )
        assert response.status_code == 200, response.text
    return users


# --- lists ------------------------------------------------------------------------------------


async def test_list_users_shows_everyone_newest_first(client, admin):
    users = await set_up_population(client, admin)
    page = assert_page(await client.get("/api/v1/admin/users", headers=admin.headers))
    assert usernames(page) == [*reversed(list(users)), ADMIN["username"]]
    assert page["next_cursor"] is None
    by_name = {item["username"]: item for item in page["items"]}
    assert by_name["ag_active"]["status"] == "active"
    assert by_name["ag_pending"]["status"] == "pending"
    assert by_name["ag_rejected"]["status"] == "rejected"
    assert by_name["ag_disabled"]["status"] == "disabled"
    assert by_name["cust_disabled"]["status"] == "disabled"
    assert by_name[ADMIN["username"]]["role"] == "admin"
    assert by_name["cust1"] == users["cust1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role=customer", ["cust_disabled", "cust2", "cust1"]),
        ("role=agent", ["ag_disabled", "ag_rejected", "ag_pending", "ag_active"]),
        ("role=admin", [ADMIN["username"]]),
        ("status=pending", ["ag_pending"]),
        ("status=rejected", ["ag_rejected"]),
        ("status=disabled", ["cust_disabled", "ag_disabled"]),
        ("status=active", ["ag_active", "cust2", "cust1", ADMIN["username"]]),
        ("role=agent&status=active", ["ag_active"]),
        ("role=customer&status=disabled", ["cust_disabled"]),
        ("role=customer&status=pending", []),
    ],
)
async def test_list_users_filters(client, admin, query, expected):
    await set_up_population(client, admin)
    page = assert_page(await client.get(f"/api/v1/admin/users?{query}", headers=admin.headers))
    assert usernames(page) == expected
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    "query", ["role=superuser", "role=", "status=deleted", "status=ACTIVE", "role=Customer"]
)
async def test_list_users_invalid_filter_is_422(client, admin, query):
    response = await client.get(f"/api/v1/admin/users?{query}", headers=admin.headers)
    problem = assert_problem(response, 422)
    name = query.split("=")[0]
    assert any(error["loc"] == ["query", name] for error in problem["errors"]), problem


async def test_list_customers_shows_only_customers(client, admin):
    await set_up_population(client, admin)
    page = assert_page(await client.get("/api/v1/admin/customers", headers=admin.headers))
    assert usernames(page) == ["cust_disabled", "cust2", "cust1"]
    assert {item["role"] for item in page["items"]} == {"customer"}
    assert page["next_cursor"] is None


async def test_list_customers_when_there_are_none(client, admin):
    page = assert_page(await client.get("/api/v1/admin/customers", headers=admin.headers))
    assert page == {"items": [], "next_cursor": None}


async def test_list_agents_shows_every_agent(client, admin):
    await set_up_population(client, admin)
    page = assert_page(await client.get("/api/v1/admin/agents", headers=admin.headers))
    assert usernames(page) == ["ag_disabled", "ag_rejected", "ag_pending", "ag_active"]
    assert {item["role"] for item in page["items"]} == {"agent"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("active", ["ag_active"]), ("pending", ["ag_pending"]), ("rejected", ["ag_rejected"])],
)
async def test_list_agents_by_status(client, admin, status, expected):
    await set_up_population(client, admin)
    page = assert_page(
        await client.get(f"/api/v1/admin/agents?status={status}", headers=admin.headers)
    )
    assert usernames(page) == expected
    assert {item["status"] for item in page["items"]} == {status}


@pytest.mark.parametrize("status", ["disabled", "approved", "", "Active"])
async def test_list_agents_refuses_other_statuses(client, admin, status):
    response = await client.get(f"/api/v1/admin/agents?status={status}", headers=admin.headers)
    problem = assert_problem(response, 422)
    assert any(error["loc"] == ["query", "status"] for error in problem["errors"]), problem


async def test_agent_applications_are_the_pending_agents(client, admin):
    users = await set_up_population(client, admin)
    late = await register(client, "agent", "ag_late")
    page = assert_page(await client.get("/api/v1/admin/agent-applications", headers=admin.headers))
    assert usernames(page) == ["ag_late", "ag_pending"]
    assert {item["status"] for item in page["items"]} == {"pending"}
    assert {item["role"] for item in page["items"]} == {"agent"}

    approved = await client.post(
        f"/api/v1/admin/agents/{users['ag_pending']['id']}/approve", headers=admin.headers
    )
    assert approved.status_code == 200, approved.text
    page = assert_page(await client.get("/api/v1/admin/agent-applications", headers=admin.headers))
    assert page["items"] == [late]


# --- approve and reject -----------------------------------------------------------------------


async def test_approve_pending_agent(client, admin):
    agent = await register(client, "agent", "newbie")
    response = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/approve", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert_user(
        response.json(),
        id=agent["id"],
        username="newbie",
        role="agent",
        status="active",
        created_at=agent["created_at"],
    )
    # The change is stored, and the agent can now log in.
    token = await token_for(client, "newbie")
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert_user(me.json(), id=agent["id"], status="active")


async def test_approve_rejected_agent(client, admin):
    agent = await register(client, "agent", "second_chance")
    rejected = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/reject", headers=admin.headers
    )
    assert rejected.status_code == 200, rejected.text
    response = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/approve", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=agent["id"], role="agent", status="active")
    token = await token_for(client, "second_chance")
    assert token


async def test_approving_an_active_agent_is_409(client, admin, agent):
    response = await client.post(f"/api/v1/admin/agents/{agent.id}/approve", headers=admin.headers)
    assert_problem(response, 409)
    me = await client.get("/api/v1/auth/me", headers=agent.headers)
    assert me.status_code == 200, me.text
    assert_user(me.json(), status="active")


async def test_approving_a_disabled_agent_is_409(client, admin):
    agent = await register(client, "agent", "off_agent")
    disabled = await client.post(
        f"/api/v1/admin/users/{agent['id']}/disable", headers=admin.headers
    )
    assert disabled.status_code == 200, disabled.text
    response = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/approve", headers=admin.headers
    )
    assert_problem(response, 409)
    users = assert_page(
        await client.get("/api/v1/admin/users?status=disabled", headers=admin.headers)
    )
    assert usernames(users) == ["off_agent"]


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_deciding_on_an_unknown_agent_is_404(client, admin, action):
    response = await client.post(
        f"/api/v1/admin/agents/{MISSING_ID}/{action}", headers=admin.headers
    )
    assert_problem(response, 404)


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_deciding_on_a_customer_as_an_agent_is_404(client, admin, customer, action):
    response = await client.post(
        f"/api/v1/admin/agents/{customer.id}/{action}", headers=admin.headers
    )
    assert_problem(response, 404)
    me = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert me.status_code == 200, me.text
    assert_user(me.json(), role="customer", status="active")


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_deciding_on_the_admin_as_an_agent_is_404(client, admin, action):
    response = await client.post(f"/api/v1/admin/agents/{admin.id}/{action}", headers=admin.headers)
    assert_problem(response, 404)


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "99999999999999999999"])
async def test_malformed_agent_id_is_a_client_error(client, admin, bad_id):
    response = await client.post(f"/api/v1/admin/agents/{bad_id}/approve", headers=admin.headers)
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["status"] == response.status_code


async def test_reject_pending_agent(client, admin):
    agent = await register(client, "agent", "nope")
    response = await client.post(
        f"/api/v1/admin/agents/{agent['id']}/reject", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=agent["id"], username="nope", role="agent", status="rejected")
    page = assert_page(
        await client.get("/api/v1/admin/agents?status=rejected", headers=admin.headers)
    )
    assert usernames(page) == ["nope"]
    applications = assert_page(
        await client.get("/api/v1/admin/agent-applications", headers=admin.headers)
    )
    assert applications["items"] == []


async def test_rejecting_an_active_agent_is_409(client, admin, agent):
    response = await client.post(f"/api/v1/admin/agents/{agent.id}/reject", headers=admin.headers)
    assert_problem(response, 409)
    me = await client.get("/api/v1/auth/me", headers=agent.headers)
    assert me.status_code == 200, me.text
    assert_user(me.json(), status="active")


async def test_rejecting_a_rejected_agent_is_409(client, admin):
    agent = await register(client, "agent", "twice")
    first = await client.post(f"/api/v1/admin/agents/{agent['id']}/reject", headers=admin.headers)
    assert first.status_code == 200, first.text
    second = await client.post(f"/api/v1/admin/agents/{agent['id']}/reject", headers=admin.headers)
    assert_problem(second, 409)


# --- disable and enable -----------------------------------------------------------------------


async def test_disable_customer(client, admin, customer):
    response = await client.post(
        f"/api/v1/admin/users/{customer.id}/disable", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=customer.id, username=customer.username, status="disabled")
    page = assert_page(await client.get("/api/v1/admin/customers", headers=admin.headers))
    assert [(i["username"], i["status"]) for i in page["items"]] == [
        (customer.username, "disabled")
    ]


@pytest.mark.parametrize("initial", ["pending", "rejected", "active"])
async def test_disable_agent_in_any_live_status(client, admin, initial):
    agent = await register(client, "agent", "target")
    if initial != "pending":
        action = "approve" if initial == "active" else "reject"
        changed = await client.post(
            f"/api/v1/admin/agents/{agent['id']}/{action}", headers=admin.headers
        )
        assert changed.status_code == 200, changed.text
    response = await client.post(
        f"/api/v1/admin/users/{agent['id']}/disable", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=agent["id"], role="agent", status="disabled")


async def test_disabling_yourself_is_409(client, admin):
    response = await client.post(f"/api/v1/admin/users/{admin.id}/disable", headers=admin.headers)
    assert_problem(response, 409)
    me = await client.get("/api/v1/auth/me", headers=admin.headers)
    assert me.status_code == 200, me.text
    assert_user(me.json(), id=admin.id, role="admin", status="active")


async def test_disabling_a_disabled_user_is_409(client, admin, customer):
    first = await client.post(f"/api/v1/admin/users/{customer.id}/disable", headers=admin.headers)
    assert first.status_code == 200, first.text
    second = await client.post(f"/api/v1/admin/users/{customer.id}/disable", headers=admin.headers)
    assert_problem(second, 409)


@pytest.mark.parametrize("action", ["disable", "enable"])
async def test_unknown_user_is_404(client, admin, action):
    response = await client.post(
        f"/api/v1/admin/users/{MISSING_ID}/{action}", headers=admin.headers
    )
    assert_problem(response, 404)


async def test_enable_disabled_customer(client, admin, customer):
    disabled = await client.post(
        f"/api/v1/admin/users/{customer.id}/disable", headers=admin.headers
    )
    assert disabled.status_code == 200, disabled.text
    response = await client.post(f"/api/v1/admin/users/{customer.id}/enable", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=customer.id, role="customer", status="active")
    token = await token_for(client, customer.username)
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert_user(me.json(), status="active")


async def test_enable_never_approved_agent_goes_back_to_pending(client, admin):
    agent = await register(client, "agent", "waiting")
    disabled = await client.post(
        f"/api/v1/admin/users/{agent['id']}/disable", headers=admin.headers
    )
    assert disabled.status_code == 200, disabled.text
    response = await client.post(f"/api/v1/admin/users/{agent['id']}/enable", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=agent["id"], role="agent", status="pending")
    login = await client.post(
        "/api/v1/auth/token", data={"username": "waiting", "password": PASSWORD}
    )
    problem = assert_problem(login, 403)
    assert "not been approved" in problem["detail"]
    applications = assert_page(
        await client.get("/api/v1/admin/agent-applications", headers=admin.headers)
    )
    assert usernames(applications) == ["waiting"]


async def test_enable_approved_agent_goes_back_to_active(client, admin, agent):
    disabled = await client.post(f"/api/v1/admin/users/{agent.id}/disable", headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    response = await client.post(f"/api/v1/admin/users/{agent.id}/enable", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert_user(response.json(), id=agent.id, role="agent", status="active")
    listed = await client.get("/api/v1/agent/customers", headers=agent.headers)
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("who", ["customer", "agent", "admin"])
async def test_enabling_an_active_user_is_409(client, admin, customer, agent, who):
    user_id = {"customer": customer.id, "agent": agent.id, "admin": admin.id}[who]
    response = await client.post(f"/api/v1/admin/users/{user_id}/enable", headers=admin.headers)
    assert_problem(response, 409)


async def test_enabling_a_pending_agent_is_409(client, admin):
    agent = await register(client, "agent", "queued")
    response = await client.post(f"/api/v1/admin/users/{agent['id']}/enable", headers=admin.headers)
    assert_problem(response, 409)
    page = assert_page(await client.get("/api/v1/admin/agent-applications", headers=admin.headers))
    assert usernames(page) == ["queued"]


# --- who may call -----------------------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/api/v1/admin/users"),
    ("GET", "/api/v1/admin/customers"),
    ("GET", "/api/v1/admin/agents"),
    ("GET", "/api/v1/admin/agent-applications"),
    ("POST", "/api/v1/admin/agents/{id}/approve"),
    ("POST", "/api/v1/admin/agents/{id}/reject"),
    ("POST", "/api/v1/admin/users/{id}/disable"),
    ("POST", "/api/v1/admin/users/{id}/enable"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
@pytest.mark.parametrize("role", ["customer", "agent"])
async def test_admin_endpoints_are_403_for_other_roles(
    client, admin, customer, agent, method, path, role
):
    pending = await register(client, "agent", "bystander")
    caller = customer if role == "customer" else agent
    response = await client.request(method, path.format(id=pending["id"]), headers=caller.headers)
    assert_problem(response, 403)
    # The refused call changed nothing.
    page = assert_page(await client.get("/api/v1/admin/agent-applications", headers=admin.headers))
    assert page["items"] == [pending]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
async def test_admin_endpoints_are_401_without_a_token(client, admin, method, path):
    pending = await register(client, "agent", "bystander")
    response = await client.request(method, path.format(id=pending["id"]))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    page = assert_page(await client.get("/api/v1/admin/agent-applications", headers=admin.headers))
    assert page["items"] == [pending]


async def test_customer_cannot_disable_anyone(client, admin, customer, new_customer):
    other = await new_customer("other_cust")
    response = await client.post(
        f"/api/v1/admin/users/{other.id}/disable", headers=customer.headers
    )
    assert_problem(response, 403)
    me = await client.get("/api/v1/auth/me", headers=other.headers)
    assert me.status_code == 200, me.text
    assert_user(me.json(), status="active")


# --- the agent's customer list ----------------------------------------------------------------


async def test_agent_lists_customers_only(client, admin, agent):
    first = await register(client, "customer", "kay1")
    second = await register(client, "customer", "kay2")
    await register(client, "agent", "kay_agent")
    response = await client.get("/api/v1/agent/customers", headers=agent.headers)
    page = assert_page(response)
    assert page["items"] == [second, first]
    assert page["next_cursor"] is None


async def test_agent_customer_list_pages(client, agent):
    registered = [await register(client, "customer", f"pc{i}") for i in range(5)]
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        url = "/api/v1/agent/customers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = assert_page(await client.get(url, headers=agent.headers))
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(registered))


@pytest.mark.parametrize("role", ["customer", "admin"])
async def test_agent_customer_list_is_403_for_other_roles(client, admin, customer, role):
    caller = customer if role == "customer" else admin
    response = await client.get("/api/v1/agent/customers", headers=caller.headers)
    assert_problem(response, 403)


async def test_agent_customer_list_is_401_without_token(client):
    response = await client.get("/api/v1/agent/customers")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_pending_agent_has_no_token_to_list_customers(client):
    await register(client, "agent", "not_yet")
    response = await client.post(
        "/api/v1/auth/token", data={"username": "not_yet", "password": PASSWORD}
    )
    assert_problem(response, 403)


# --- keyset pagination ------------------------------------------------------------------------


async def page_through(client: Any, url: str, headers: dict[str, str], limit: int) -> list[Any]:
    pages = []
    cursor = None
    for _ in range(50):
        sep = "&" if "?" in url else "?"
        query = f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = assert_page(await client.get(query, headers=headers))
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str)
        assert cursor
    raise AssertionError("paging never ended")


async def test_keyset_pagination_over_customers(client, admin):
    registered = [await register(client, "customer", f"pager{i}") for i in range(7)]
    pages = await page_through(client, "/api/v1/admin/customers", admin.headers, 3)
    assert [len(page["items"]) for page in pages] == [3, 3, 1]
    assert [page["next_cursor"] is None for page in pages] == [False, False, True]
    items = [item for page in pages for item in page["items"]]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == 7
    assert items == list(reversed(registered))
    stamps = [when(item) for item in items]
    assert stamps == sorted(stamps, reverse=True)


async def test_exact_multiple_of_limit_ends_with_null_cursor(client, admin):
    registered = [await register(client, "customer", f"even{i}") for i in range(6)]
    pages = await page_through(client, "/api/v1/admin/customers", admin.headers, 3)
    items = [item for page in pages for item in page["items"]]
    assert items == list(reversed(registered))
    assert pages[-1]["next_cursor"] is None
    assert all(page["items"] for page in pages[:-1])
    assert len(pages) in (2, 3)


async def test_pagination_is_stable_under_inserts(client, admin):
    registered = [await register(client, "customer", f"stable{i}") for i in range(5)]
    first = assert_page(await client.get("/api/v1/admin/customers?limit=2", headers=admin.headers))
    assert first["items"] == [registered[4], registered[3]]
    # A newer customer arrives between pages; the next page continues where the first stopped.
    await register(client, "customer", "latecomer")
    second = assert_page(
        await client.get(
            f"/api/v1/admin/customers?limit=2&cursor={first['next_cursor']}", headers=admin.headers
        )
    )
    assert second["items"] == [registered[2], registered[1]]
    third = assert_page(
        await client.get(
            f"/api/v1/admin/customers?limit=2&cursor={second['next_cursor']}",
            headers=admin.headers,
        )
    )
    assert third["items"] == [registered[0]]
    assert third["next_cursor"] is None


async def test_pagination_with_filters(client, admin):
    await set_up_population(client, admin)
    pages = await page_through(client, "/api/v1/admin/users?role=agent", admin.headers, 1)
    names = [item["username"] for page in pages for item in page["items"]]
    assert names == ["ag_disabled", "ag_rejected", "ag_pending", "ag_active"]


async def test_default_limit_is_50(client, admin):
    for i in range(51):
        await register(client, "customer", f"many{i:02d}")
    page = assert_page(await client.get("/api/v1/admin/customers", headers=admin.headers))
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    rest = assert_page(
        await client.get(
            f"/api/v1/admin/customers?cursor={page['next_cursor']}", headers=admin.headers
        )
    )
    assert usernames(rest) == ["many00"]
    assert rest["next_cursor"] is None


async def test_limit_200_is_allowed(client, admin):
    await register(client, "customer", "solo")
    page = assert_page(await client.get("/api/v1/admin/customers?limit=200", headers=admin.headers))
    assert usernames(page) == ["solo"]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5"])
@pytest.mark.parametrize(
    "path", ["/api/v1/admin/users", "/api/v1/admin/customers", "/api/v1/admin/agents"]
)
async def test_bad_limit_is_422(client, admin, path, limit):
    response = await client.get(f"{path}?limit={limit}", headers=admin.headers)
    problem = assert_problem(response, 422)
    assert any(error["loc"] == ["query", "limit"] for error in problem["errors"]), problem


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "Zm9vYmFy",
        "bm90LWEtZGF0ZXwx",
        "MjAyNC0wMS0wMVQwMDowMDowMHxhYmM",
        "x" * 201,
    ],
)
async def test_bad_cursor_is_422(client, admin, cursor):
    response = await client.get(f"/api/v1/admin/customers?cursor={cursor}", headers=admin.headers)
    problem = assert_problem(response, 422)
    assert isinstance(problem["errors"], list)
    assert any(error["loc"] == ["query", "cursor"] for error in problem["errors"]), problem


async def test_bad_cursor_is_422_on_agent_list(client, agent):
    response = await client.get("/api/v1/agent/customers?cursor=garbage", headers=agent.headers)
    problem = assert_problem(response, 422)
    assert any(error["loc"] == ["query", "cursor"] for error in problem["errors"]), problem
