"""`loanapi demo`: a believable book in a fresh database, made through the API itself.

Agents and customers register and log in, customers apply, agents edit and forward, the admin
decides, disburses (back-dated, so the loans have a past), repayments come in on time, late or
not at all, one loan is paid off and one written off. Every step is an HTTP request to the app
in this process, so the book is exactly what the API would have made: histories, events and
servicing figures included.
"""

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from loanapi.clock import utcnow
from loanapi.loans.ledger import add_months

V1 = "/api/v1"
PASSWORD = "demo-password-2026"
AGENTS = ("alice_agent", "bob_agent")
PENDING_AGENT = "carl_applicant"
CUSTOMERS = (
    "dana_okafor",
    "eli_novak",
    "farah_haddad",
    "gus_lindqvist",
    "hana_sato",
    "ivan_petrov",
    "jo_martins",
    "kim_osei",
)
PRODUCTS = ("home_loan", "personal_loan", "car_loan", "education_loan")


class DemoError(Exception):
    """The database is not fresh, or a step of the story was refused."""


@dataclass
class Book:
    client: httpx.AsyncClient
    admin: dict[str, str]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    made: dict[str, int] = field(default_factory=dict)

    async def call(self, method: str, path: str, who: dict[str, str], **kwargs: Any) -> Any:
        response = await self.client.request(method, V1 + path, headers=who, **kwargs)
        if response.status_code >= 400:
            raise DemoError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    async def join(self, username: str, role: str) -> None:
        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        self.ids[username] = (await self.call("POST", f"/auth/register/{role}", {}, json=body))[
            "id"
        ]

    async def log_in(self, username: str) -> None:
        form = {"username": username, "password": PASSWORD}
        token = (await self.call("POST", "/auth/token", {}, data=form))["access_token"]
        self.tokens[username] = {"Authorization": f"Bearer {token}"}

    def count(self, status: str) -> None:
        self.made[status] = self.made.get(status, 0) + 1


async def fill(app: Any, admin_token: str, *, seed: int = 2026) -> Book:
    """Fill the app's (fresh) database; returns what was made."""
    rng = random.Random(seed)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        book = Book(client, {"Authorization": f"Bearer {admin_token}"})
        existing = await book.call("GET", "/admin/loans?limit=1", book.admin)
        if existing["items"]:
            raise DemoError("the database already holds loans: the demo fills a fresh one")
        await products(book)
        await people(book)
        for n, customer in enumerate(CUSTOMERS):
            await customer_story(book, rng, customer, n)
    return book


# Late fees and grace days of the products (they start without): late loans pay them.
LATE_FEES = {
    "home_loan": ("50.00", 10),
    "personal_loan": ("25.00", 5),
    "car_loan": ("35.00", 7),
    "education_loan": ("15.00", 10),
}


async def products(book: Book) -> None:
    for product in await book.call("GET", "/loan-products", book.admin):
        fee, grace = LATE_FEES[product["loan_type"]]
        terms = {
            key: product[key]
            for key in (
                "annual_rate",
                "min_principal",
                "max_principal",
                "min_tenure_months",
                "max_tenure_months",
            )
        }
        body = {**terms, "late_fee": fee, "grace_days": grace}
        await book.call(
            "PUT", f"/admin/loan-products/{product['loan_type']}", book.admin, json=body
        )


async def people(book: Book) -> None:
    for agent in AGENTS:
        await book.join(agent, "agent")
        await book.call("POST", f"/admin/agents/{book.ids[agent]}/approve", book.admin)
        await book.log_in(agent)
    await book.join(PENDING_AGENT, "agent")
    for customer in CUSTOMERS:
        await book.join(customer, "customer")
        await book.log_in(customer)


# Each customer's loans, by what happens to them: one story each, cycling through the book.
STORIES = (
    ("repaid_on_time", "requested"),
    ("late", "new"),
    ("paid_off", "rejected"),
    ("repaid_on_time", "withdrawn"),
    ("written_off", "approved"),
    ("late", "edited_and_requested"),
    ("repaid_on_time", "new"),
    ("partly_paid", "requested"),
)


async def customer_story(book: Book, rng: random.Random, customer: str, n: int) -> None:
    agent = book.tokens[AGENTS[n % 2]]
    for story in STORIES[n % len(STORIES)]:
        loan = await book.call(
            "POST",
            "/customer/loans",
            book.tokens[customer],
            json={
                "loan_type": PRODUCTS[rng.randrange(len(PRODUCTS))],
                "principal": str(rng.choice((5_000, 12_000, 25_000, 40_000, 90_000))),
                "tenure_months": rng.choice((12, 18, 24, 36)),
            },
        )
        await origination(book, story, loan["id"], customer, agent)
        if story in SERVICING:
            await servicing(book, rng, story, loan["id"], agent)


SERVICING = ("repaid_on_time", "late", "paid_off", "written_off", "partly_paid")


async def origination(
    book: Book, story: str, loan_id: int, customer: str, agent: dict[str, str]
) -> None:
    if story == "new":
        return book.count("new")
    if story == "withdrawn":
        await book.call("POST", f"/customer/loans/{loan_id}/withdraw", book.tokens[customer])
        return book.count("withdrawn")
    if story == "edited_and_requested":
        await book.call("PATCH", f"/agent/loans/{loan_id}", agent, json={"tenure_months": 48})
    await book.call("POST", f"/agent/loans/{loan_id}/request", agent)
    if story in ("requested", "edited_and_requested"):
        return book.count("requested")
    if story == "rejected":
        reason = {"reason": "Income could not be verified"}
        await book.call("POST", f"/admin/loans/{loan_id}/reject", book.admin, json=reason)
        return book.count("rejected")
    await book.call("POST", f"/admin/loans/{loan_id}/approve", book.admin)
    if story == "approved":
        book.count("approved")
    return None


async def servicing(
    book: Book, rng: random.Random, story: str, loan_id: int, agent: dict[str, str]
) -> None:
    """Disbursed months ago on the 10th (due on the 10th), then repaid as the story goes."""
    today = utcnow().date()
    months_ago = rng.randint(4, 9)
    disbursed = add_months(today.replace(day=10), -months_ago)
    if disbursed >= today:
        disbursed = add_months(disbursed, -1)
    terms = {"disbursed_on": disbursed.isoformat()}
    loan = await book.call("POST", f"/admin/loans/{loan_id}/disburse", book.admin, json=terms)
    due = [add_months(disbursed, k) for k in range(1, months_ago + 1)]
    due = [day for day in due if day <= today]
    paying = {
        "repaid_on_time": due,
        "late": due[:-2],  # the last two installments unpaid: days past due, late fees
        "paid_off": due[:2],
        "written_off": due[:1],
        "partly_paid": due[:-1],
    }[story]
    for k, day in enumerate(paying):
        amount = loan["emi"] if story != "partly_paid" else f"{float(loan['emi']) * 0.6:.2f}"
        body = {"amount": amount, "paid_on": day.isoformat(), "reference": f"DEMO-{loan_id}-{k}"}
        await book.call("POST", f"/agent/loans/{loan_id}/repayments", agent, json=body)
    if story == "paid_off":
        on = (due[2] if len(due) > 2 else today) - timedelta(days=3)
        on = min(max(on, due[1] + timedelta(days=1)), today)
        quote = await book.call("GET", f"/agent/loans/{loan_id}/payoff?on={on}", agent)
        body = {"amount": quote["total"], "paid_on": on.isoformat(), "reference": "PAYOFF"}
        await book.call("POST", f"/agent/loans/{loan_id}/repayments", agent, json=body)
        return book.count("closed")
    if story == "written_off":
        reason = {"reason": "Borrower unreachable for six months"}
        await book.call("POST", f"/admin/loans/{loan_id}/write-off", book.admin, json=reason)
        return book.count("written_off")
    book.count("active, late" if story in ("late", "partly_paid") else "active, current")
    return None


def logins() -> list[tuple[str, str, str]]:
    """(username, role, password) of the people the demo made."""
    return [
        *((name, "agent", PASSWORD) for name in AGENTS),
        (PENDING_AGENT, "agent (pending: cannot log in until approved)", PASSWORD),
        *((name, "customer", PASSWORD) for name in CUSTOMERS),
    ]
