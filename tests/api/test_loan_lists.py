"""Loan lists: keyset pagination, limits and cursors, and the filters of the agent/admin lists."""

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from loanapi.loans.models import Loan
from tests.helpers import assert_field_error, assert_problem

CUSTOMER_LOANS = "/api/v1/customer/loans"
LIST_PATHS = {"admin": "/api/v1/admin/loans", "agent": "/api/v1/agent/loans"}

# Around the UTC day 2026-03-02: just before, its first instant, its last instant, just after.
BEFORE = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
START = datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC)
AFTER = datetime(2026, 3, 3, 0, 0, 0, tzinfo=UTC)
MOMENTS = (BEFORE, START, END, AFTER)


async def apply(
    client: Any,
    caller: Any,
    loan_type: str = "home_loan",
    principal: Any = "10000",
    tenure_months: int = 12,
) -> dict[str, Any]:
    response = await client.post(
        CUSTOMER_LOANS,
        json={"loan_type": loan_type, "principal": principal, "tenure_months": tenure_months},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def ids(client: Any, caller: Any, path: str, **params: Any) -> list[Any]:
    response = await client.get(path, params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    return [loan["id"] for loan in body["items"]]


async def all_pages(
    client: Any, caller: Any, path: str, limit: int, between: Any = None
) -> list[list[Any]]:
    """Every page's ids, following next_cursor; `between` runs after each page but the last."""
    pages: list[list[Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(path, params=params, headers=caller.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        pages.append([loan["id"] for loan in body["items"]])
        if body["next_cursor"] is None:
            return pages
        assert isinstance(body["next_cursor"], str)
        assert body["items"]
        if between is not None:
            await between(len(pages))
        params = {"limit": limit, "cursor": body["next_cursor"]}
        assert len(pages) < 100, "pagination does not end"


async def set_times(app: Any, column: str, times: dict[Any, datetime]) -> None:
    async with app.state.sessions.write() as session:
        for loan_id, moment in times.items():
            await session.execute(update(Loan).where(Loan.id == loan_id).values({column: moment}))
        await session.commit()


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- pagination -------------------------------------------------------------------------------


async def test_admin_list_pages_newest_first_without_gaps(client, admin, customer, new_customer):
    other = await new_customer("olivia")
    created = []
    for number in range(7):
        owner = customer if number % 2 else other
        created.append((await apply(client, owner, principal=1000 + number))["id"])
    pages = await all_pages(client, admin, LIST_PATHS["admin"], limit=2)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    flat = [loan_id for page in pages for loan_id in page]
    assert flat == list(reversed(created))


async def test_customer_list_pages_only_own_loans(client, customer, new_customer):
    other = await new_customer("olivia")
    mine = []
    for number in range(5):
        mine.append((await apply(client, customer, principal=2000 + number))["id"])
        await apply(client, other)
    pages = await all_pages(client, customer, CUSTOMER_LOANS, limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [loan_id for page in pages for loan_id in page] == list(reversed(mine))


async def test_an_exact_multiple_of_the_limit_ends_with_a_null_cursor(client, admin, customer):
    created = [(await apply(client, customer))["id"] for _ in range(4)]
    pages = await all_pages(client, admin, LIST_PATHS["admin"], limit=2)
    assert pages == [list(reversed(created))[:2], list(reversed(created))[2:]]


async def test_equal_timestamps_are_ordered_by_id(app, client, admin, customer):
    created = [(await apply(client, customer))["id"] for _ in range(5)]
    await set_times(app, "created_at", dict.fromkeys(created, START))
    pages = await all_pages(client, admin, LIST_PATHS["admin"], limit=2)
    assert [loan_id for page in pages for loan_id in page] == sorted(created, reverse=True)
    pages = await all_pages(client, customer, CUSTOMER_LOANS, limit=2)
    assert [loan_id for page in pages for loan_id in page] == sorted(created, reverse=True)


async def test_order_follows_created_at_not_id(app, client, admin, customer):
    created = [(await apply(client, customer))["id"] for _ in range(4)]
    # The oldest id gets the newest timestamp, and so on.
    await set_times(app, "created_at", dict(zip(created, MOMENTS[::-1], strict=True)))
    pages = await all_pages(client, admin, LIST_PATHS["admin"], limit=3)
    assert [loan_id for page in pages for loan_id in page] == created


@pytest.mark.parametrize("who", ["admin", "customer"])
async def test_pages_are_stable_under_inserts(client, admin, customer, who):
    initial = [(await apply(client, customer))["id"] for _ in range(6)]
    inserted: list[Any] = []

    async def insert(_page_number: int) -> None:
        for _ in range(2):
            inserted.append((await apply(client, customer, loan_type="car_loan"))["id"])

    path = LIST_PATHS["admin"] if who == "admin" else CUSTOMER_LOANS
    caller = admin if who == "admin" else customer
    pages = await all_pages(client, caller, path, limit=2, between=insert)
    flat = [loan_id for page in pages for loan_id in page]
    assert flat == list(reversed(initial))
    assert len(inserted) == 4
    assert not set(inserted) & set(flat)
    fresh = await all_pages(client, caller, path, limit=200)
    assert fresh == [list(reversed(initial + inserted))]


async def test_default_limit_is_50(client, admin, customer):
    created = [(await apply(client, customer))["id"] for _ in range(51)]
    response = await client.get(LIST_PATHS["admin"], headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [loan["id"] for loan in body["items"]] == list(reversed(created))[:50]
    assert isinstance(body["next_cursor"], str)
    rest = await client.get(
        LIST_PATHS["admin"], params={"cursor": body["next_cursor"]}, headers=admin.headers
    )
    assert rest.status_code == 200, rest.text
    assert [loan["id"] for loan in rest.json()["items"]] == [created[0]]
    assert rest.json()["next_cursor"] is None
    mine = await client.get(CUSTOMER_LOANS, headers=customer.headers)
    assert mine.status_code == 200, mine.text
    assert len(mine.json()["items"]) == 50
    assert isinstance(mine.json()["next_cursor"], str)


async def test_limit_200_is_allowed(client, admin, customer):
    created = [(await apply(client, customer))["id"] for _ in range(3)]
    for path, caller in ((LIST_PATHS["admin"], admin), (CUSTOMER_LOANS, customer)):
        assert await ids(client, caller, path, limit=200) == list(reversed(created))
        assert await ids(client, caller, path, limit=1, status="withdrawn") == []


@pytest.mark.parametrize("who", ["admin", "agent", "customer"])
@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "2.5"])
async def test_bad_limit_is_422(client, admin, agent, customer, who, limit):
    await apply(client, customer)
    path = CUSTOMER_LOANS if who == "customer" else LIST_PATHS[who]
    caller = {"admin": admin, "agent": agent, "customer": customer}[who]
    response = await client.get(path, params={"limit": limit}, headers=caller.headers)
    assert_field_error(response, "query", "limit")


@pytest.mark.parametrize("who", ["admin", "agent", "customer"])
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "x" * 201,
        cursor_of("no-separator"),
        cursor_of("2026-03-02T00:00:00+00:00|not-an-id"),
        cursor_of("not-a-time|5"),
        cursor_of("2026-03-02T00:00:00|5"),
        cursor_of("a|b|c"),
    ],
)
async def test_garbage_cursor_is_422(client, admin, agent, customer, who, cursor):
    await apply(client, customer)
    path = CUSTOMER_LOANS if who == "customer" else LIST_PATHS[who]
    caller = {"admin": admin, "agent": agent, "customer": customer}[who]
    response = await client.get(path, params={"cursor": cursor}, headers=caller.headers)
    assert_field_error(response, "query", "cursor")


# --- filters ----------------------------------------------------------------------------------


@pytest.fixture
async def portfolio(client, admin, agent, new_customer):
    """Five loans of two customers in several statuses and types, keyed by a letter."""
    first = await new_customer("fiona")
    second = await new_customer("gavin")
    loans = {
        "a": await apply(client, first, "home_loan"),
        "b": await apply(client, first, "car_loan"),
        "c": await apply(client, second, "home_loan"),
        "d": await apply(client, second, "personal_loan"),
        "e": await apply(client, first, "home_loan"),
    }
    for letter in ("b", "c"):
        response = await client.post(
            f"/api/v1/agent/loans/{loans[letter]['id']}/request", headers=agent.headers
        )
        assert response.status_code == 200, response.text
    for letter in ("d", "e"):
        response = await client.post(
            f"/api/v1/admin/loans/{loans[letter]['id']}/reject", headers=admin.headers
        )
        assert response.status_code == 200, response.text
    return {
        "ids": {letter: loan["id"] for letter, loan in loans.items()},
        "first": first,
        "second": second,
    }


def filter_cases() -> list[tuple[str, list[str]]]:
    return [
        ("", ["e", "d", "c", "b", "a"]),
        ("status=new", ["a"]),
        ("status=requested", ["c", "b"]),
        ("status=rejected", ["e", "d"]),
        ("status=approved", []),
        ("loan_type=home_loan", ["e", "c", "a"]),
        ("loan_type=car_loan", ["b"]),
        ("loan_type=education_loan", []),
        ("customer_id=first", ["e", "b", "a"]),
        ("customer_id=second", ["d", "c"]),
        ("customer_id=first&status=rejected", ["e"]),
        ("loan_type=home_loan&status=requested", ["c"]),
        ("loan_type=home_loan&status=requested&customer_id=first", []),
        ("loan_type=home_loan&customer_id=first", ["e", "a"]),
        ("status=requested&loan_type=car_loan&customer_id=first", ["b"]),
    ]


@pytest.mark.parametrize("who", ["admin", "agent"])
@pytest.mark.parametrize(("query", "expected"), filter_cases())
async def test_equality_filters_combine_with_and(
    client, admin, agent, portfolio, who, query, expected
):
    caller = {"admin": admin, "agent": agent}[who]
    params: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        name, value = pair.split("=")
        params[name] = portfolio[value].id if name == "customer_id" else value
    assert await ids(client, caller, LIST_PATHS[who], **params) == [
        portfolio["ids"][letter] for letter in expected
    ]


@pytest.mark.parametrize("who", ["admin", "agent"])
async def test_filters_work_across_pages(client, admin, agent, portfolio, who):
    caller = {"admin": admin, "agent": agent}[who]
    path = LIST_PATHS[who]
    pages: list[list[Any]] = []
    params: dict[str, Any] = {"limit": 1, "loan_type": "home_loan"}
    while True:
        response = await client.get(path, params=params, headers=caller.headers)
        assert response.status_code == 200, response.text
        pages.append([loan["id"] for loan in response.json()["items"]])
        if response.json()["next_cursor"] is None:
            break
        params = {**params, "cursor": response.json()["next_cursor"]}
    expected = [portfolio["ids"][letter] for letter in ("e", "c", "a")]
    assert pages == [[loan_id] for loan_id in expected]


async def test_customer_id_of_nobody_matches_nothing(client, admin, portfolio):
    assert await ids(client, admin, LIST_PATHS["admin"], customer_id=2**31 - 1) == []


@pytest.mark.parametrize("who", ["admin", "agent"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "bogus"),
        ("status", "NEW"),
        ("loan_type", "gold_loan"),
        ("customer_id", "0"),
        ("customer_id", "abc"),
        ("customer_id", str(2**31)),
        ("limit", "0"),
    ],
)
async def test_malformed_filter_is_422(client, admin, agent, who, name, value):
    caller = {"admin": admin, "agent": agent}[who]
    response = await client.get(LIST_PATHS[who], params={name: value}, headers=caller.headers)
    assert_field_error(response, "query", name)


# --- date filters -----------------------------------------------------------------------------


@pytest.fixture
async def dated(app, client, customer):
    """Four loans whose created_at and updated_at are BEFORE, START, END and AFTER."""
    loans = [await apply(client, customer) for _ in MOMENTS]
    loan_ids = [loan["id"] for loan in loans]
    await set_times(app, "created_at", dict(zip(loan_ids, MOMENTS, strict=True)))
    await set_times(app, "updated_at", dict(zip(loan_ids, MOMENTS, strict=True)))
    return dict(zip(("before", "start", "end", "after"), loan_ids, strict=True))


def date_cases(prefix: str) -> list[tuple[dict[str, str], list[str]]]:
    frm, to = f"{prefix}_from", f"{prefix}_to"
    return [
        ({frm: "2026-03-02", to: "2026-03-02"}, ["end", "start"]),
        ({frm: "2026-03-02"}, ["after", "end", "start"]),
        ({to: "2026-03-02"}, ["end", "start", "before"]),
        ({frm: "2026-03-01", to: "2026-03-01"}, ["before"]),
        ({frm: "2026-03-03", to: "2026-03-03"}, ["after"]),
        ({frm: "2026-03-01", to: "2026-03-03"}, ["after", "end", "start", "before"]),
        ({frm: "2026-03-04"}, []),
        ({to: "2026-02-28"}, []),
        ({to: "2026-03-02T00:00:00Z"}, ["start", "before"]),
        ({to: "2026-03-02T00:00:00+00:00"}, ["start", "before"]),
        ({to: "2026-03-01T23:59:59.999999Z"}, ["before"]),
        ({frm: "2026-03-02T00:00:00Z"}, ["after", "end", "start"]),
        ({frm: "2026-03-02T00:00:00.000001Z"}, ["after", "end"]),
        ({frm: "2026-03-02T23:59:59.999999Z", to: "2026-03-02T23:59:59.999999Z"}, ["end"]),
        ({frm: "2026-03-02T00:00:00Z", to: "2026-03-02T00:00:00Z"}, ["start"]),
        (
            {frm: "2026-03-02T01:59:59.999999+02:00", to: "2026-03-02T02:00:00+02:00"},
            ["start", "before"],
        ),
        ({frm: "2026-03-02T18:59:59.999999-05:00"}, ["after", "end"]),
        ({to: "2026-03-02T01:59:59.999999+02:00"}, ["before"]),
        ({to: "2026-03-02T01:59:59+02:00"}, []),
    ]


@pytest.mark.parametrize("who", ["admin", "agent"])
@pytest.mark.parametrize(("params", "expected"), date_cases("created"))
async def test_created_date_filters(client, admin, agent, dated, who, params, expected):
    caller = {"admin": admin, "agent": agent}[who]
    found = await ids(client, caller, LIST_PATHS[who], **params)
    assert found == [dated[name] for name in expected]


@pytest.mark.parametrize("who", ["admin", "agent"])
@pytest.mark.parametrize(("params", "expected"), date_cases("updated"))
async def test_updated_date_filters(app, client, admin, agent, dated, who, params, expected):
    # created_at no longer follows updated_at, so only updated_at can decide the result.
    await set_times(app, "created_at", dict.fromkeys(dated.values(), AFTER))
    caller = {"admin": admin, "agent": agent}[who]
    found = await ids(client, caller, LIST_PATHS[who], **params)
    assert found == [dated[name] for name in expected]


async def test_created_and_updated_filters_combine(app, client, admin, dated):
    await set_times(app, "updated_at", {dated["start"]: AFTER, dated["end"]: BEFORE})
    found = await ids(
        client,
        admin,
        LIST_PATHS["admin"],
        created_from="2026-03-02",
        created_to="2026-03-02",
        updated_from="2026-03-03",
    )
    assert found == [dated["start"]]


async def test_date_filter_combines_with_status(client, admin, agent, dated):
    response = await client.post(
        f"/api/v1/admin/loans/{dated['end']}/reject", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    found = await ids(
        client,
        agent,
        LIST_PATHS["agent"],
        created_from="2026-03-02",
        created_to="2026-03-02",
        status="new",
    )
    assert found == [dated["start"]]


@pytest.mark.parametrize("who", ["admin", "agent"])
@pytest.mark.parametrize("name", ["created_from", "created_to", "updated_from", "updated_to"])
@pytest.mark.parametrize(
    "value",
    ["2026-13-01", "yesterday", "2026-02-30", "2026-3-2", "02/03/2026", "2026-03-02T25:00:00Z"],
)
async def test_malformed_date_is_422(client, admin, agent, who, name, value):
    caller = {"admin": admin, "agent": agent}[who]
    response = await client.get(LIST_PATHS[who], params={name: value}, headers=caller.headers)
    assert_field_error(response, "query", name)


@pytest.mark.parametrize("who", ["admin", "agent"])
@pytest.mark.parametrize("prefix", ["created", "updated"])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-03", "2026-03-02"),
        ("2026-03-02T00:00:01Z", "2026-03-02T00:00:00Z"),
        ("2026-03-02T00:00:00Z", "2026-03-02T01:00:00+02:00"),
        ("2026-03-03T00:00:00Z", "2026-03-02"),
    ],
)
async def test_from_after_to_is_422(client, admin, agent, who, prefix, start, end):
    caller = {"admin": admin, "agent": agent}[who]
    response = await client.get(
        LIST_PATHS[who],
        params={f"{prefix}_from": start, f"{prefix}_to": end},
        headers=caller.headers,
    )
    assert_problem(response, 422)
    assert any(error["loc"][0] == "query" for error in response.json()["errors"])


async def test_loan_bodies_are_exactly_the_documented_loan(client, customer, admin):
    """Loan records are serialized without pydantic's LoanRead: the bytes must agree with it."""
    from loanapi.loans.schemas import LoanRead

    body = {"loan_type": "personal_loan", "principal": "12345.6", "tenure_months": 7}
    created = await client.post("/api/v1/customer/loans", json=body, headers=customer.headers)
    assert created.status_code == 201, created.text
    listed = await client.get("/api/v1/admin/loans", headers=admin.headers)
    one = await client.get(f"/api/v1/admin/loans/{created.json()['id']}", headers=admin.headers)
    for item in (created.json(), listed.json()["items"][0], one.json()):
        assert list(item) == list(LoanRead.model_fields)
        assert LoanRead.model_validate(item).model_dump(mode="json") == item
        assert item["principal"] == "12345.60"
    assert set(listed.json()) == {"items", "next_cursor"}
