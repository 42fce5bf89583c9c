"""Call loanapi the way the original Flask system's clients did, and say which calls still work.

Who it is for: someone moving off the old Flask loan service who wants to know, before switching,
whether the calls their clients make are still answered the same way. The old clients were three
unittest scripts (setup, security, API; 20 checks). This script is our own rewrite of what they
exercised, with the same habits those clients had:

- every URL is built as ``f"{base}/{path}"`` with a base that ends in ``/``, and some paths carry
  a leading ``/`` of their own, so requests arrive as ``//login``, ``///approve_agent/4``,
  ``///all_users``, ``///edit_loan/7``;
- agents register with 7-character passwords (``Agent*1``);
- ``/login`` takes HTTP Basic credentials and answers ``{"token": ...}``; later calls send the
  token in ``x-access-token``;
- the loan to work on is ``Loans[0]`` of an agent's ``/getloans?status=New``.

It runs three walks in order (setup, security, API), prints one line per check,
``✓ <n> <name>: Passed`` or ``✗ <n> <name>: Failed (<why>)``, then ``N passed, M failed``, and
exits non-zero when any check failed.

Run it against a server on a FRESH database (the walks register fixed usernames and pick loans
by position). The default database is ``./loanapi.db``, so start the server in an empty
directory (or point ``LOANAPI_DATABASE_URL`` at a new file)::

    cd "$(mktemp -d)" && \\
    LOANAPI_PASSWORD_MIN_LENGTH=6 LOANAPI_ADMIN_USERNAME=Admin LOANAPI_ADMIN_PASSWORD=Adminpass \\
        loanapi serve --port 5000

and, from the project directory::

    .venv/bin/python scripts/legacy_clients.py [--base http://127.0.0.1:5000/] \\
        [--admin Admin:Adminpass]

``LOANAPI_PASSWORD_MIN_LENGTH=6`` is what lets the old clients' 7-character agent passwords in
(the default minimum is 8). tests/process/test_legacy_clients.py does the same on a free port.
"""

from __future__ import annotations

import argparse
import base64
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_BASE = "http://127.0.0.1:5000/"
CUSTOMERS = {f"Customer{n}": f"Customer*{n}" for n in (1, 2, 3)}
AGENTS = {f"Agent{n}": f"Agent*{n}" for n in (1, 2)}
# One application per customer in the setup walk, as the old setup script made them.
FIRST_LOANS = {
    "Customer1": ("Home_loan", 10000, 12),
    "Customer2": ("Car_loan", 20000, 24),
    "Customer3": ("Personal_loan", 30000, 36),
}
# The security walk's extra applications: Customer2 ends with 4 loans, Customer3 with 3.
MORE_LOANS = {
    "Customer2": [("Home_loan", 15000, 12), ("Car_loan", 25000, 24), ("Personal_loan", 35000, 36)],
    "Customer3": [("Home_loan", 12000, 12), ("Car_loan", 22000, 24)],
}
NOT_AUTHORIZED = "You are not authorized to open this page"
REQUESTED = "Request to Admin on behalf of this customer is successfully made by you."
APPROVED = "The Loan has been successfully approved!!"
IMMUTABLE = "This Loan has already been approved by the admin!! It is immutable now."


class CheckFailed(Exception):
    """A check's reason for failing, shown in its line."""


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def basic(username: str, password: str) -> str:
    """The Authorization value the old clients sent to /login."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def shown(response: httpx.Response, limit: int = 160) -> str:
    text = response.text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def expect(
    response: httpx.Response,
    status: int,
    *,
    contains: str | None = None,
    what: str = "",
) -> Any:
    """Raise CheckFailed unless the status matches (and the body holds `contains`)."""
    call = f"{response.request.method} {response.request.url.raw_path.decode()}"
    label = f"{what} [{call}]" if what else call
    if response.status_code != status:
        raise CheckFailed(f"{label}: {response.status_code}, expected {status}: {shown(response)}")
    if contains is not None and contains not in response.text:
        raise CheckFailed(f"{label}: {contains!r} not in the answer: {shown(response)}")
    return json_of(response)


def keys_of(body: Any, label: str) -> list[str]:
    if not isinstance(body, dict):
        raise CheckFailed(f"{label}: the answer is not a JSON object")
    return sorted(body)


@dataclass
class OldClient:
    """HTTP calls as the original's clients made them: base + '/' + path, token in a header."""

    base: str
    admin: tuple[str, str]
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def get(
        self, path: str, *, who: str | None = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.http.get(self.url(path), headers=self.headers(who), params=params)

    def post(
        self, path: str, *, who: str | None = None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return self.http.post(self.url(path), headers=self.headers(who), json=body)

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"x-access-token": self.token(who)}

    def login(self, username: str, password: str) -> httpx.Response:
        return self.http.post(
            self.url("login"), headers={"Authorization": basic(username, password)}
        )

    def token(self, who: str) -> str:
        """`who`'s token, logging in on first use (each walk logs in afresh, as each script did)."""
        if who not in self.tokens:
            password = self.admin[1] if who == self.admin[0] else self.passwords[who]
            body = expect(self.login(who, password), 200, what=f"login of {who}")
            if not isinstance(body, dict) or not isinstance(body.get("token"), str):
                raise CheckFailed(f"login of {who}: no token in the answer")
            self.tokens[who] = body["token"]
        return self.tokens[who]


class Run:
    """Numbers, runs and reports the checks."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, number: int, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except CheckFailed as failure:
            self.fail(number, name, str(failure))
        except httpx.HTTPError as error:
            self.fail(number, name, f"{type(error).__name__}: {error}")
        else:
            self.passed += 1
            say(f"✓ {number} {name}: Passed")

    def fail(self, number: int, name: str, why: str) -> None:
        self.failed += 1
        say(f"✗ {number} {name}: Failed ({why})")


# --- setup walk (checks 1-8) ---------------------------------------------------------------


def setup_walk(client: OldClient, run: Run) -> None:
    say("# setup")
    agent_ids: list[int] = []

    def register(path: str, accounts: dict[str, str]) -> None:
        for username, password in accounts.items():
            account = {
                "username": username,
                "password": password,
                "email": f"{username}@gmail.com",
                "phone": username,
            }
            label = f"{path} of {username}"
            body = expect(client.post(path, body=account), 200, what=label)
            if len(keys_of(body, label)) != 1:
                raise CheckFailed(f"{label}: {len(body)} keys, expected one: {body}")

    def customers_log_in() -> None:
        for username, password in CUSTOMERS.items():
            label = f"login of {username}"
            body = expect(client.login(username, password), 200, what=label)
            if keys_of(body, label) != ["token"]:
                raise CheckFailed(f"{label}: keys {sorted(body)}, expected exactly ['token']")
            client.tokens[username] = body["token"]

    def customers_apply() -> None:
        for username, (loan_type, amount, months) in FIRST_LOANS.items():
            loan = {"loan_amount": amount, "loan_type": loan_type, "duration": months}
            label = f"new_loan of {username}"
            body = expect(client.post("new_loan", who=username, body=loan), 200, what=label)
            if len(keys_of(body, label)) != 2:
                raise CheckFailed(f"{label}: keys {sorted(body)}, expected exactly two")

    def unapproved_agent_refused() -> None:
        expect(
            client.login("Agent1", AGENTS["Agent1"]),
            401,
            contains="agent is not approved",
            what="login of the unapproved Agent1",
        )

    def admin_logs_in() -> None:
        client.tokens.pop(client.admin[0], None)
        client.token(client.admin[0])

    def pending_applications() -> None:
        label = "all_Agent_applications as admin"
        body = expect(client.get("all_Agent_applications", who=client.admin[0]), 200, what=label)
        if "Unapproved_agents" not in keys_of(body, label):
            raise CheckFailed(f"{label}: no Unapproved_agents key: {body}")
        pending = {row.get("username"): row.get("id") for row in body["Unapproved_agents"]}
        missing = [name for name in AGENTS if name not in pending]
        if missing:
            raise CheckFailed(f"{label}: {missing} not among the pending {sorted(pending)}")
        agent_ids.extend(int(pending[name]) for name in AGENTS)

    def approve_agents() -> None:
        if not agent_ids:
            raise CheckFailed("no agent ids (check 7 failed)")
        for agent_id in agent_ids:
            response = client.get(f"/approve_agent/{agent_id}", who=client.admin[0])
            label = f"approve_agent/{agent_id}"
            if "Message" not in keys_of(expect(response, 200, what=label), label):
                raise CheckFailed(f"{label}: no Message key: {shown(response)}")

    run.check(1, "register customers", lambda: register("register_Customer", CUSTOMERS))
    run.check(
        2, "register agents with 7-character passwords", lambda: register("register_Agent", AGENTS)
    )
    run.check(3, "customers log in with HTTP Basic", customers_log_in)
    run.check(4, "each customer applies for a loan", customers_apply)
    run.check(5, "an unapproved agent cannot log in", unapproved_agent_refused)
    run.check(6, "admin logs in", admin_logs_in)
    run.check(7, "admin lists pending agent applications", pending_applications)
    run.check(8, "admin approves the agents", approve_agents)


# --- security walk (checks 9-14) -----------------------------------------------------------


def security_walk(client: OldClient, run: Run) -> None:
    say("# security")
    client.tokens.clear()
    loan = {"loan_amount": 1000, "loan_type": "Home_loan", "duration": 12}

    def no_token() -> None:
        expect(client.post("new_loan", body=loan), 401, contains="Token is missing!")

    def fake_token() -> None:
        forged = {"x-access-token": f"not-a-token-{uuid.uuid4().hex}"}
        response = client.http.post(client.url("new_loan"), headers=forged, json=loan)
        expect(response, 401, contains="Token is invalid!")

    def customer_on_all_users() -> None:
        expect(client.get("/all_users", who="Customer1"), 401, contains=NOT_AUTHORIZED)

    def customer_edits_loan() -> None:
        expect(client.post("/edit_loan/7", who="Customer1"), 401, contains="Unauthorised Access")

    def agent_approves_loan() -> None:
        expect(client.get("/approve_loan/3", who="Agent1"), 401, contains="not authorized")

    def customers_see_their_own() -> None:
        for username, loans in MORE_LOANS.items():
            for loan_type, amount, months in loans:
                terms = {"loan_amount": amount, "loan_type": loan_type, "duration": months}
                expect(
                    client.post("new_loan", who=username, body=terms),
                    200,
                    what=f"new_loan of {username}",
                )
        label = "all_Customers as admin"
        listed = expect(client.get("all_Customers", who=client.admin[0]), 200, what=label)
        if "Customers" not in keys_of(listed, label):
            raise CheckFailed(f"{label}: no Customers key: {listed}")
        ids = {row.get("username"): row.get("id") for row in listed["Customers"]}
        for username, count in (("Customer2", 4), ("Customer3", 3)):
            label = f"getloans of {username}"
            body = expect(client.get("getloans", who=username), 200, what=label)
            if "Loans" not in keys_of(body, label):
                raise CheckFailed(f"{label}: no Loans key: {body}")
            if len(body["Loans"]) != count:
                raise CheckFailed(f"{label}: {len(body['Loans'])} loans, expected {count}")
            owners = {row.get("Customer Id") for row in body["Loans"]}
            if owners != {ids.get(username)}:
                raise CheckFailed(
                    f"{label}: Customer Id {sorted(map(str, owners))}, {username} is "
                    f"{ids.get(username)}"
                )

    run.check(9, "new_loan without a token", no_token)
    run.check(10, "new_loan with a fake token", fake_token)
    run.check(11, "a customer on all_users", customer_on_all_users)
    run.check(12, "a customer on edit_loan without a body", customer_edits_loan)
    run.check(13, "an agent on approve_loan", agent_approves_loan)
    run.check(14, "customers see only their own loans", customers_see_their_own)


# --- API walk (checks 15-20) ---------------------------------------------------------------


def api_walk(client: OldClient, run: Run) -> None:
    say("# API")
    client.tokens.clear()
    admin, agent, customer = client.admin[0], "Agent1", "Customer2"
    chosen: list[int] = []

    def loan_id() -> int:
        """Loans[0] of the agent's New loans (Approved ones if none is New), found once."""
        if not chosen:
            for status in ("New", "Approved"):
                response = client.get("getloans", who=agent, params={"status": status})
                body = expect(response, 200, what=f"getloans?status={status} as {agent}")
                if isinstance(body, dict) and body.get("Loans"):
                    chosen.append(int(body["Loans"][0]["id"]))
                    break
            else:
                raise CheckFailed(f"no New or Approved loan in {agent}'s getloans")
        return chosen[0]

    def by_role(path: str, expected: dict[str, tuple[int, str | None]]) -> None:
        for who, (status, contains) in expected.items():
            response = client.get(path, who=who)
            expect(response, status, contains=contains, what=f"{path} as {who}")

    def all_customers() -> None:
        by_role("all_Customers", {admin: (200, None), agent: (200, None), customer: (401, None)})

    def all_users() -> None:
        by_role("/all_users", {admin: (200, None), agent: (401, None), customer: (401, None)})

    def request_loan() -> None:
        by_role(
            f"request_loan/{loan_id()}",
            {admin: (401, None), agent: (200, REQUESTED), customer: (401, None)},
        )

    def approve_loan() -> None:
        by_role(
            f"/approve_loan/{loan_id()}",
            {admin: (200, APPROVED), agent: (401, None), customer: (401, None)},
        )

    def approved_listed() -> None:
        for who in (admin, agent):
            response = client.get("getloans", who=who, params={"status": "Approved"})
            expect(response, 200, what=f"getloans?status=Approved as {who}")

    def approved_immutable() -> None:
        path, terms = f"/edit_loan/{loan_id()}", {"loan_amount": 2000, "duration": 5}
        expect(client.post(path, who=admin, body=terms), 401, what=f"{path} as {admin}")
        response = client.post(path, who=agent, body=terms)
        if IMMUTABLE not in response.text:
            raise CheckFailed(f"{path} as {agent}: {response.status_code} {shown(response)}")

    run.check(15, "all_Customers: admin and agent yes, customer no", all_customers)
    run.check(16, "all_users: admin only", all_users)
    run.check(17, "request_loan: agent only", request_loan)
    run.check(18, "approve_loan: admin only", approve_loan)
    run.check(19, "getloans status=Approved for admin and agent", approved_listed)
    run.check(20, "an approved loan cannot be edited", approved_immutable)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"default {DEFAULT_BASE}")
    parser.add_argument("--admin", default="Admin:Adminpass", help="USERNAME:PASSWORD")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args(argv)
    username, colon, password = args.admin.partition(":")
    if not colon:
        parser.error("--admin takes USERNAME:PASSWORD")
    # The old clients' base always ended in '/', which is what doubles the slashes.
    base = args.base if args.base.endswith("/") else args.base + "/"
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # ✓ and ✗ on a terminal that lacks them
    run = Run()
    with httpx.Client(timeout=args.timeout) as http:
        client = OldClient(base, (username, password), http, passwords={**CUSTOMERS, **AGENTS})
        for walk in (setup_walk, security_walk, api_walk):
            walk(client, run)
    say(f"{run.passed} passed, {run.failed} failed")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
