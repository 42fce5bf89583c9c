"""The original Flask service's recorded answers, replayed step by step against loanapi.

`data/original-transcript.json` (a copy of the project's shared `legacy/original-transcript.json`)
holds what the original answered to 90 README-style
calls on a fresh database. Every step is replayed on a fresh database (and once more with every
path written `//like/this`, as the original's clients send them) and compared: status, content
type, `WWW-Authenticate`, JSON keys at every level, list lengths, messages and every other value.
Ids are mapped to ours by order of creation, timestamps are checked by format, public ids by
shape, and money against loanapi's own formula (rates against loanapi's products), never against
the original's numbers.

A step may differ from the original only when README.md's deviations table names it; a named
step that no longer differs fails too, so the table cannot rot. Each deviating step also has to
answer what loanapi documents for it (`what_loanapi_answers`), so a deviation cannot drift into
an accident.
"""

import base64
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from loanapi.app import bootstrap_admin
from loanapi.loans.models import Loan, LoanProduct
from loanapi.loans.pricing import price
from loanapi.users.models import User
from tests.conftest import _reset, client_for

REPO = Path(__file__).resolve().parents[2]
# A copy of the project's shared `legacy/original-transcript.json`, so a clone alone runs it.
TRANSCRIPT = Path(__file__).with_name("data") / "original-transcript.json"
README = REPO / "README.md"
TABLE_BEGIN = "<!-- legacy-deviations:begin -->"
TABLE_END = "<!-- legacy-deviations:end -->"

# The original's seeded admin; the steps log in with it as `basic:Admin`.
ORIGINAL_ADMIN = {"username": "Admin", "password": "adminpass", "email": "admin@gmail.com"}

TIMESTAMP = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT"
)
PUBLIC_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
JWT = re.compile(r"[\w-]+\.[\w-]+\.[\w-]+")
TIMESTAMP_KEYS = {"Created On", "Updated On", "Created on ", "Created At"}
AMOUNT_KEYS = ("Loan Amount", "Loan amount")
RATE_KEYS = ("Rate of interest", "Rate of Interest")
TOTAL_KEYS = ("Total Payable amount", "Total amount to be paid")
LOAN_TYPES = {
    "Home_loan": "home_loan",
    "Personal_loan": "personal_loan",
    "Car_loan": "car_loan",
    "Educational_loan": "education_loan",
}
# Path segments that carry an id, and which ids they are.
LOAN_ID_PATHS = {"edit_loan", "request_loan", "approve_loan", "reject_loan", "view_loan_history"}
USER_ID_PATHS = {"approve_agent", "agent_loan_requests"}
MISSING_ID = 999_999  # stands for an id the original did not have either (its 999)


class Matcher:
    """An expected value loanapi documents only loosely (e.g. the text of a 404)."""

    def __init__(self, description: str, test: Callable[[Any], bool]) -> None:
        self.description = description
        self.test = test

    def __repr__(self) -> str:
        return self.description


ANY_MESSAGE = Matcher("a non-empty message", lambda v: isinstance(v, str) and bool(v.strip()))


def starts_with(prefix: str) -> Matcher:
    return Matcher(f"{prefix!r}...", lambda v: isinstance(v, str) and v.startswith(prefix))


def answer(
    status: int, body: Any = None, *, text: str | None = None, www: str | None = None
) -> dict[str, Any]:
    ctype = "application/json" if body is not None else "text/html; charset=utf-8"
    return {"status": status, "ctype": ctype, "www": www, "json": body, "text": text}


def what_loanapi_answers(original: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What loanapi answers on the steps where it deliberately differs (README's table), in the
    original's ids and dates; every other step must answer exactly as the original did."""

    def body(step: str) -> Any:
        return copy.deepcopy(original[step]["json"])

    def same_body(step: str, status: int) -> dict[str, Any]:
        return answer(status, body(step))

    def without_passwords(step: str) -> dict[str, Any]:
        bodies = body(step)
        for users in bodies.values():
            for user in users:
                del user["password"]
        return answer(200, bodies)

    not_verified = 'Basic realm="Login Required!"'
    users = without_passwords("all_users admin")["json"]["Users"]
    agent1 = next(user for user in users if user["username"] == "agent1")
    # The four loans as the original listed them; loanapi approved loan 1 only (loan 2 was never
    # requested) and kept loan 3's rejection (State: Approved 0, Rejected 1, New 2).
    filtered = body("filter-by-update-date admin up to tomorrow")
    window = filtered.pop("Loans between 1985-01-17 and 2026-12-01")
    for item in window:
        item["State"] = {1: 0, 2: 2, 3: 1, 4: 2}[item["id"]]
    rejected = next(loan for loan in body("getloans agent1 (all)")["Loans"] if loan["id"] == 3)
    rejected["Status"] = "Rejected"
    today = ORIGINAL_DAY.isoformat()

    def between(start: str, end: str) -> dict[str, Any]:
        return answer(200, {f"Loans between {start} and {end}": copy.deepcopy(window)})

    missing = answer(404, {"Message": ANY_MESSAGE})
    created = answer(200, {"Message": "Your Loan Application has been successfully created"})
    created["json"]["data"] = body("new_loan cust1 Home 10000/12")["data"]
    created["json"]["data"].update({"Loan amount": 5000.0, "Loan Type": "Educational_loan"})
    return {
        # 401 for a role calling what it may not (the original said so with a 200).
        "all_agents agent1 (refused)": same_body("all_agents agent1 (refused)", 401),
        "all_Agent_applications agent1 (refused)": same_body(
            "all_Agent_applications agent1 (refused)", 401
        ),
        "approve_agent 5 by agent1 (refused)": same_body(
            "approve_agent 5 by agent1 (refused)", 401
        ),
        "Agent_loan_requests 4 by cust1 (refused)": same_body(
            "Agent_loan_requests 4 by cust1 (refused)", 401
        ),
        "reject_loan 4 by agent1 (refused)": same_body("reject_loan 4 by agent1 (refused)", 401),
        # No password hashes.
        "all_Agent_applications admin (2 pending)": without_passwords(
            "all_Agent_applications admin (2 pending)"
        ),
        "all_Customers agent1": without_passwords("all_Customers agent1"),
        "all_Customers admin": without_passwords("all_Customers admin"),
        "all_users admin": without_passwords("all_users admin"),
        "all_Agent_applications admin (agent2 pending)": without_passwords(
            "all_Agent_applications admin (agent2 pending)"
        ),
        # Only a requested loan is approved; loan 2 stays New, so it is not immutable either.
        "approve_loan 2 admin (new, never requested)": answer(
            409, {"Message": starts_with("This Loan cannot be approved: ")}
        ),
        "getloans admin status=Approved": answer(
            200, {"Loans": body("getloans admin status=Approved")["Loans"][:1]}
        ),
        "filter-by-update-date admin up to tomorrow": between("1985-01-17", "2026-12-01"),
        "filter-by-update-date agent1 up to tomorrow": between("1985-01-17", "2026-12-01"),
        "edit_loan 2 agent1 no body": answer(
            401, {"message": "Loan appllication data should be passed for loan"}
        ),
        # An approved loan is immutable: 409, not 200.
        "edit_loan 1 agent1 (approved)": same_body("edit_loan 1 agent1 (approved)", 409),
        # A rejection persists.
        "getloans admin status=Rejected": answer(200, {"Loans": [rejected]}),
        # Another customer's loan history is not found.
        "view_loan_history 1 cust2 (other's)": missing,
        # 404 for a missing object.
        "edit_loan 999 agent1 (missing)": missing,
        "request_loan 999 agent1 (missing)": missing,
        "approve_loan 999 admin (missing)": missing,
        "approve_agent 999 admin (missing)": missing,
        "view_loan_history 999 admin (missing)": missing,
        # Valid calls the original crashed on (500).
        "login no Authorization header": answer(401, text="Could not verify", www=not_verified),
        "Agent_loan_requests 4 admin": answer(
            200, {"Agent_loanRequests": body("loan_Requests_by_agent agent1")["Loan Requests"]}
        ),
        "filter-by-create-date admin README params": answer(
            200, {"Message": "No records found for the give range!"}
        ),
        "filter-by-create-date admin up to tomorrow": between("1985-01-17", "2026-12-01"),
        "filter-by-create-date admin today..today": between(today, today),
        "filter-by-create-date admin no params": between("1985-01-17", today),
        "all_agents admin": answer(200, {"approved_agents": [agent1]}),
        "getloans admin status=foo": answer(422, {"Message": ANY_MESSAGE}),
        "new_loan cust1 Educational_loan": created,
        "register_Customer README body (no phone)": same_body("register_Customer cust1", 200),
        "register_Agent README body (no phone)": same_body("register_Agent agent1", 200),
        "register_Customer duplicate username": answer(409, {"Message": ANY_MESSAGE}),
        # Paths match in any letter case.
        "all_Users admin (README spelling)": without_passwords("all_users admin"),
        "all_Agents admin (README spelling)": answer(200, {"approved_agents": [agent1]}),
        # A missing start_date or end_date is unbounded.
        "filter-by-update-date admin no params": between("1985-01-17", today),
        # /new_loan is for customers only.
        "new_loan by agent1 (seed: any role)": answer(401, {"Message": "Unauthorised Access"}),
    }


def load_transcript() -> list[dict[str, Any]]:
    if not TRANSCRIPT.is_file():
        pytest.fail(f"the original's transcript is missing: {TRANSCRIPT}")
    steps: list[dict[str, Any]] = json.loads(TRANSCRIPT.read_text())
    return steps


def original_day(steps: list[dict[str, Any]]) -> date:
    """The day the transcript was recorded: its dates in query strings and keys mean this day."""
    data = next(step["json"]["data"] for step in steps if step["req"] == "POST /new_loan")
    return parsedate_to_datetime(data["Created on "]).date()


ORIGINAL_DAY = original_day(load_transcript()) if TRANSCRIPT.is_file() else date(2026, 11, 30)


def listed_deviations() -> set[str]:
    """The transcript steps README's deviations table names."""
    text = README.read_text()
    assert TABLE_BEGIN in text, f"{TABLE_BEGIN} is missing from README.md"
    assert TABLE_END in text, f"{TABLE_END} is missing from README.md"
    table = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0]
    rows = [line.strip() for line in table.splitlines() if line.strip().startswith("|")]
    assert len(rows) > 2, "the deviations table has no rows"
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header == ["the original", "loanapi", "why", "transcript steps"], header
    listed: set[str] = set()
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 4, f"a row without four cells in the deviations table: {row}"
        assert all(cells), f"a row with an empty cell in the deviations table: {row}"
        names = re.findall(r"`([^`]+)`", cells[3])
        assert names, f"a row without transcript steps: {row}"
        listed.update(names)
    return listed


@dataclass
class Walk:
    """What the replay learned so far: ids on both sides, passwords and tokens."""

    app: Any
    rates: dict[str, float]
    users: dict[int, int] = field(default_factory=dict)
    loans: dict[int, int] = field(default_factory=dict)
    history: dict[int, int] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    next_user: int = 2  # the original's admin was user 1
    next_loan: int = 1
    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    def dates(self, text: str) -> str:
        """The transcript's "today" and "tomorrow" are this run's, both in one pass: the day
        after the recording, its "tomorrow" is this run's "today", not to be moved again."""
        moved = {
            (ORIGINAL_DAY + timedelta(days=days)).isoformat(): (
                self.today + timedelta(days=days)
            ).isoformat()
            for days in (0, 1)
        }
        return re.sub("|".join(moved), lambda found: moved[found[0]], text)

    def user(self, original_id: Any) -> Any:
        if original_id == -1:
            return -1
        return self.users.get(original_id, MISSING_ID)

    def loan(self, original_id: Any) -> Any:
        return self.loans.get(original_id, MISSING_ID)

    def target(self, target: str, *, doubled: bool) -> str:
        path, _, query = target.partition("?")
        if match := re.fullmatch(r"/(\w+)/(\d+)", path):
            name, original_id = match[1], int(match[2])
            if name.lower() in LOAN_ID_PATHS:
                path = f"/{name}/{self.loan(original_id)}"
            elif name.lower() in USER_ID_PATHS:
                path = f"/{name}/{self.user(original_id)}"
        if doubled:
            path = "/" + path
        return path + (f"?{self.dates(query)}" if query else "")

    def headers(self, step: dict[str, Any]) -> dict[str, str]:
        who = step["who"]
        if who is None:
            return {}
        if who == "fake":
            return {"x-access-token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.bogus-signature"}
        if who.startswith("basic:"):
            username = who.removeprefix("basic:")
            password = self.passwords.get(username.lower(), "not-a-known-password")
            if "wrong password" in step["step"]:
                password += "-wrong"
            raw = base64.b64encode(f"{username}:{password}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        token = self.tokens.get(who.lower())
        return {"x-access-token": token} if token else {}

    async def learn(self, step: dict[str, Any], response: httpx.Response) -> None:
        """Ids, passwords and tokens, as the step created them on each side."""
        path = step["req"].split(" ", 1)[1].partition("?")[0].lower()
        succeeded = response.status_code == 200
        if path in ("/register_customer", "/register_agent"):
            username = step["body"]["username"]
            self.passwords.setdefault(username.lower(), step["body"]["password"])
            original_id = self.next_user if step["status"] == 200 else None
            self.next_user += original_id is not None
            if original_id is not None and succeeded:
                self.users[original_id] = await self.scalar(
                    select(User.id).where(func.lower(User.username) == username.lower())
                )
        elif path == "/login" and succeeded and "json" in response.headers["content-type"]:
            username = step["who"].removeprefix("basic:")
            self.tokens[username.lower()] = response.json().get("token", "")
        elif path == "/new_loan":
            original_id = self.next_loan if step["status"] == 200 else None
            self.next_loan += original_id is not None
            if original_id is not None and succeeded:
                self.loans[original_id] = await self.scalar(select(func.max(Loan.id)))

    async def scalar(self, query: Any) -> Any:
        async with self.app.state.sessions.write() as session:
            return await session.scalar(query)


def kind_of(item: dict[str, Any]) -> str:
    """Which ids an object's `id` holds: a user's, a history entry's or a loan's."""
    if "username" in item:
        return "user"
    return "history" if "Origina Loan ID" in item else "loan"


@dataclass
class Comparison:
    """Differences between an expected answer and ours, one line each."""

    walk: Walk
    learn: bool
    found: list[str] = field(default_factory=list)

    def differ(self, where: str, message: str) -> None:
        self.found.append(f"{where}: {message}")

    def response(self, expected: dict[str, Any], response: httpx.Response) -> list[str]:
        if response.status_code != expected["status"]:
            self.differ("status", f"{response.status_code}, expected {expected['status']}")
        ctype = response.headers.get("content-type")
        if ctype != expected["ctype"]:
            self.differ("content-type", f"{ctype!r}, expected {expected['ctype']!r}")
        www = response.headers.get("www-authenticate")
        if www != expected["www"]:
            self.differ("WWW-Authenticate", f"{www!r}, expected {expected['www']!r}")
        if expected["json"] is not None:
            try:
                body = response.json()
            except ValueError:
                self.differ("body", f"not JSON: {response.text[:200]!r}")
            else:
                self.value("$", None, expected["json"], body, kind="top")
        elif expected["text"] is not None and response.text != expected["text"]:
            self.differ("body", f"{response.text[:200]!r}, expected {expected['text'][:200]!r}")
        return self.found

    def value(self, where: str, key: str | None, expected: Any, got: Any, *, kind: str) -> None:
        if isinstance(expected, Matcher):
            if not expected.test(got):
                self.differ(where, f"{got!r}, expected {expected!r}")
        elif isinstance(expected, dict):
            self.object(where, expected, got)
        elif isinstance(expected, list):
            self.list(where, expected, got)
        elif key in TIMESTAMP_KEYS:
            if not (isinstance(got, str) and TIMESTAMP.fullmatch(got)):
                self.differ(
                    where, f"{got!r} is not a timestamp like 'Mon, 30 Nov 2026 00:12:21 GMT'"
                )
        elif key == "public_id":
            if not (isinstance(got, str) and PUBLIC_ID.fullmatch(got)):
                self.differ(where, f"{got!r} is not a hyphenated UUID")
        elif key == "token":
            if not (isinstance(got, str) and JWT.fullmatch(got)):
                self.differ(where, f"{got!r} is not a token")
        elif key in (*RATE_KEYS, *TOTAL_KEYS, "EMI"):
            # The values are loanapi's (checked in `money`); the JSON type is the original's.
            if type(got) is not type(expected):
                self.differ(where, f"{got!r} is not a {type(expected).__name__}")
        elif key in ("Customer Id", "Agent Id") or (key == "id" and kind == "user"):
            self.same(where, self.walk.user(expected), got)
        elif key == "Origina Loan ID" or (key == "id" and kind == "loan"):
            self.same(where, self.walk.loan(expected), got)
        elif key == "id" and kind == "history":
            self.history_id(where, expected, got)
        else:
            self.same(where, expected, got)

    def same(self, where: str, expected: Any, got: Any) -> None:
        # JSON types too: the original's clients read 10000.0 and 12, not "10000.00".
        if type(got) is not type(expected) or got != expected:
            self.differ(where, f"{got!r}, expected {expected!r}")

    def history_id(self, where: str, expected: Any, got: Any) -> None:
        """History entries' ids are ours, consistent across steps and distinct."""
        if expected in self.walk.history:
            self.same(where, self.walk.history[expected], got)
        elif not isinstance(got, int) or got in self.walk.history.values():
            self.differ(where, f"{got!r} is not a new history entry id")
        elif self.learn:
            self.walk.history[expected] = got

    def object(self, where: str, expected: dict[str, Any], got: Any) -> None:
        if not isinstance(got, dict):
            self.differ(where, f"{got!r}, expected an object")
            return
        expected = {self.walk.dates(key): value for key, value in expected.items()}
        if missing := sorted(set(expected) - set(got)):
            self.differ(where, f"missing keys {missing}")
        if extra := sorted(set(got) - set(expected)):
            self.differ(where, f"unexpected keys {extra}")
        kind = kind_of(expected)
        for key in expected.keys() & got.keys():
            self.value(f"{where}.{key}", key, expected[key], got[key], kind=kind)
        if "EMI" in expected and isinstance(got, dict):
            self.money(where, got)

    def list(self, where: str, expected: list[Any], got: Any) -> None:
        if not isinstance(got, list):
            self.differ(where, f"{got!r}, expected a list")
            return
        if len(got) != len(expected):
            self.differ(where, f"{len(got)} items, expected {len(expected)}")
        for index, (one, other) in enumerate(zip(expected, got, strict=False)):
            self.value(f"{where}[{index}]", None, one, other, kind="item")

    def money(self, where: str, got: dict[str, Any]) -> None:
        """EMI and total by loanapi's formula for the item's own terms, at its product's rate."""
        try:
            amount = next(got[key] for key in AMOUNT_KEYS if key in got)
            rate = next(got[key] for key in RATE_KEYS if key in got)
            total_key = next(key for key in TOTAL_KEYS if key in got)
            terms = price(Decimal(str(amount)), Decimal(str(rate)), int(got["Duration"]))
        except (StopIteration, KeyError, ValueError, ArithmeticError) as error:
            self.differ(where, f"cannot price {got!r}: {error!r}")
            return
        product_rate = self.walk.rates.get(LOAN_TYPES.get(got.get("Loan Type"), ""))
        if rate != product_rate:
            self.differ(where, f"rate {rate!r}, loanapi's product rate is {product_rate!r}")
        if got["EMI"] != float(terms.emi):
            self.differ(f"{where}.EMI", f"{got['EMI']!r}, loanapi's formula says {terms.emi}")
        if got[total_key] != float(terms.total_payable):
            self.differ(
                f"{where}.{total_key}",
                f"{got[total_key]!r}, loanapi's formula says {terms.total_payable}",
            )


def test_the_deviations_table_names_transcript_steps() -> None:
    steps = load_transcript()
    names = {step["step"] for step in steps}
    listed = listed_deviations()
    assert not listed - names, f"steps not in the transcript: {sorted(listed - names)}"
    documented = set(what_loanapi_answers({step["step"]: step for step in steps}))
    assert listed == documented, (
        f"listed without a documented answer: {sorted(listed - documented)}; "
        f"a documented answer but not listed: {sorted(documented - listed)}"
    )


@pytest.mark.parametrize("doubled", [False, True], ids=["paths-as-written", "doubled-slash"])
async def test_the_original_transcript_replays(make_app: Any, database: Any, doubled: bool) -> None:
    steps = load_transcript()
    original = {step["step"]: step for step in steps}
    assert len(original) == len(steps), "step names must be unique"
    deviations = what_loanapi_answers(original)
    listed = listed_deviations()

    # A fresh database whose first admin is the original's seeded one, as its steps expect.
    app = await make_app(
        admin_username=ORIGINAL_ADMIN["username"],
        admin_password=ORIGINAL_ADMIN["password"],
        admin_email=ORIGINAL_ADMIN["email"],
    )
    await _reset(app, database)
    await bootstrap_admin(app)
    async with app.state.sessions.write() as session:
        products = (await session.execute(select(LoanProduct))).scalars()
        rates = {product.loan_type.value: float(product.annual_rate) for product in products}
    walk = Walk(app, rates)
    walk.users[1] = await walk.scalar(
        select(User.id).where(func.lower(User.username) == ORIGINAL_ADMIN["username"].lower())
    )
    walk.passwords[ORIGINAL_ADMIN["username"].lower()] = ORIGINAL_ADMIN["password"]

    problems: list[str] = []
    differing: dict[str, list[str]] = {}
    async with client_for(app) as client:
        for step in steps:
            name = step["step"]
            method, target = step["req"].split(" ", 1)
            body = {"json": step["body"]} if step["body"] is not None else {}
            # An absolute URL: httpx would read a relative `//login` as a host name.
            url = str(client.base_url).rstrip("/") + walk.target(target, doubled=doubled)
            response = await client.request(method, url, headers=walk.headers(step), **body)
            assert response.request.url.raw_path.startswith(b"//") == doubled, url
            expected = deviations.get(name, step)
            wrong = Comparison(walk, learn=True).response(expected, response)
            if wrong:
                what = (
                    "as documented for this deviation" if name in deviations else "as the original"
                )
                problems.append(f"{name!r} did not answer {what}:\n    " + "\n    ".join(wrong))
            if name in deviations:
                if found := Comparison(walk, learn=False).response(step, response):
                    differing[name] = found
            elif wrong:
                differing[name] = wrong
            await walk.learn(step, response)

    for name in sorted(differing.keys() - listed):
        problems.append(f"{name!r} differs from the original but README's table does not list it")
    for name in sorted(listed - differing.keys()):
        problems.append(f"{name!r} is listed in README's table but answers as the original did")
    passed = len(steps) - len(differing)
    assert not problems, (
        f"{passed} of {len(steps)} steps answer as the original, {len(differing)} differ; "
        f"{len(problems)} problems:\n" + "\n".join(problems)
    )


def test_the_transcripts_days_move_once():
    """The day after the recording, the transcript's "tomorrow" is the run's "today": each date
    moves once (the replay failed on 2026-12-01 when they moved one after the other)."""
    day = timedelta(days=1)
    walk = Walk(app=None, rates={}, today=ORIGINAL_DAY + day)
    recorded = f"start={ORIGINAL_DAY.isoformat()}&end={(ORIGINAL_DAY + day).isoformat()}"
    expected = (
        f"start={(ORIGINAL_DAY + day).isoformat()}&end={(ORIGINAL_DAY + 2 * day).isoformat()}"
    )
    assert walk.dates(recorded) == expected
