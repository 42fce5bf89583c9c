"""Property-based fuzzing of the app's own OpenAPI document with schemathesis.

Every operation in `/openapi.json` is called with generated requests, schema-valid (positive) and
schema-invalid (negative), as every kind of caller: anonymous, a forged token (`alg: none`, a
wrong key, expired), a customer, an active agent and the admin. Every response must not be a 5xx
and must have a documented status code, content type, headers and body schema; invalid data must
be refused. On top of schemathesis' checks, API.md's conventions: every response has
`X-Request-ID`; `/api/v1` errors are problem details whose `status` is the HTTP status; a caller
without valid credentials gets 401 (with `WWW-Authenticate: Bearer` on bearer routes); a role an
operation is not for gets 401/403; another customer's loan is a 404.

How it runs: the app is the suite's `app` fixture, created on the session event loop (on
PostgreSQL its connection pool belongs to that loop). schemathesis' ASGI transport would run the
app on an event loop of its own, so it is not used: Hypothesis (synchronous) runs in a worker
thread, schemathesis generates the cases and validates the responses, and each request is handed
to the session loop (`run_coroutine_threadsafe`) and sent through `httpx.ASGITransport`, like
the rest of the suite. All failures are collected and reported together, each with its role,
request and response.
"""

import asyncio
import base64
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable, UnsatisfiedAssumption
from jose import jwt
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN, PASSWORD, TEST_SECRET, bearer, register, token_for

pytestmark = pytest.mark.fuzz

BASE_URL = "http://test"
MIN_CASES = 1000
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

# Excluded on purpose:
# - positive_data_acceptance: the schema cannot state the business rules, so a schema-valid
#   request is legitimately a 422 (a principal outside the product's bounds, a password under the
#   configured minimum, a filter value that is not a date, a cursor the API did not issue).
# - ignored_auth, missing_required_header, unsupported_method, use_after_free,
#   ensure_resource_availability: they re-send requests through schemathesis' own transport,
#   i.e. on another event loop than the app's. The callers below cover authentication and
#   authorization instead (`api_md_conventions`).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

VALID_ROLES = ("customer", "agent", "admin")
INVALID = ("anonymous", "alg_none", "wrong_key", "expired")
BASIC_LOGIN = frozenset({"auth_login", "legacy_login", "legacy_login_get"})
CREDENTIAL_HEADERS = frozenset({"authorization", "x-access-token"})
ID_PARAMS = {"loan_id": "loans", "agent_id": "users", "user_id": "users"}
# Examples per operation and generation mode. An operation tagged with a role is called mostly
# by that role (4 in 10 draws), else by every caller alike.
EXAMPLES = {POSITIVE: 24, NEGATIVE: 12}
OWN_ROLE_WEIGHT = 4


@dataclass(frozen=True)
class Caller:
    name: str
    username: str = "fuzz_nobody"
    password: str = "not-the-password"
    user_id: int | None = None
    token: str | None = None

    @property
    def valid(self) -> bool:
        return self.name in VALID_ROLES


@dataclass
class World:
    """The seeded users and loans, and the callers the fuzzer sends requests as."""

    callers: dict[str, Caller]
    loans: list[int]
    other_customers_loans: list[int]
    users: list[int]
    codec: Any = None  # the app's: logout ends a token minted for the case, not the caller's

    def not_callers(self) -> list[int]:
        """Users whose password the fuzzer may reset (the callers' tokens must keep working)."""
        callers = {caller.user_id for caller in self.callers.values()}
        return [user for user in self.users if user not in callers]


@dataclass
class Fuzzer:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    world: World
    cases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def send(self, case: Case, caller: Caller) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        allowed = ("method", "url", "headers", "params", "cookies", "json", "data", "files")
        prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()
        headers: dict[str, bytes] = {}
        for name, value in prepared.headers.items():
            if name.lower() == "content-length" or (
                caller.name != "anonymous" and name.lower() in CREDENTIAL_HEADERS
            ):
                continue  # the caller's credentials replace generated ones
            try:
                headers[name] = value if isinstance(value, bytes) else value.encode("latin-1")
            except UnicodeEncodeError:
                reject()  # not sendable over HTTP/1.1
        if caller.name == "anonymous":
            pass  # no credentials, or the generated (random) ones
        elif case.operation.definition.raw["operationId"] in BASIC_LOGIN:
            pair = f"{caller.username}:{caller.password}".encode()
            headers["Authorization"] = b"Basic " + base64.b64encode(pair)
        elif case.operation.definition.raw["operationId"] == "auth_logout" and caller.valid:
            token = self.world.codec.issue(user_id=caller.user_id, role=caller.name)
            headers["Authorization"] = f"Bearer {token}".encode()
        else:
            headers["Authorization"] = f"Bearer {caller.token}".encode()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        request = self.client.request(
            str(prepared.method), str(prepared.url), headers=headers, content=body
        )
        return self.on_loop(request)

    def repair(self, case: Case, response: httpx.Response) -> None:
        """The fuzzer may disable a seeded user: enable it again so its token keeps working."""
        if case.operation.definition.raw["operationId"] != "admin_disable_user":
            return
        if response.status_code != 200:
            return
        user_id = response.json()["id"]
        if user_id in {caller.user_id for caller in self.world.callers.values()}:
            admin = bearer(str(self.world.callers["admin"].token))
            enable = self.client.post(f"/api/v1/admin/users/{user_id}/enable", headers=admin)
            enabled = self.on_loop(enable)
            assert enabled.status_code == 200, enabled.text

    def run_case(self, case: Case, caller: Caller, real_id: int | None) -> None:
        if credentials_negated(case):
            # The case is about missing or malformed credentials: send them as generated.
            caller = self.world.callers["anonymous"]
        if real_id is not None:
            for name in re.findall(r"{(\w+)}", case.operation.path):
                if name in ID_PARAMS:
                    case.path_parameters = {**(case.path_parameters or {}), name: real_id}
        try:
            response = self.send(case, caller)
        except UnsatisfiedAssumption:
            raise
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError):
            reject()  # not a request a client could send
        except Exception as exc:  # the app raised instead of answering
            curl = case.as_curl_command(base_url=BASE_URL)
            raise AssertionError(
                f"the app raised {exc!r}\n  caller: {caller.name}\n  {curl}"
            ) from exc
        self.cases[case.operation.label] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            titles = "; ".join(sorted({failure.title for failure in group.exceptions}))
            details = "\n".join(str(failure) for failure in group.exceptions)
            raise AssertionError(f"{titles}\n{describe(caller, response)}\n{details}") from None
        problems = list(api_md_conventions(case, caller, response, self.world))
        if problems:
            raise AssertionError(f"{'; '.join(problems)}\n{describe(caller, response)}")
        self.repair(case, response)

    def fuzz(self, operation: Any, mode: GenerationMode) -> None:
        raw = operation.definition.raw
        tag = (raw.get("tags") or [""])[0]
        names = [*INVALID, *VALID_ROLES]
        if tag in VALID_ROLES:
            names += [tag] * (OWN_ROLE_WEIGHT - 1)
        callers = st.sampled_from([self.world.callers[name] for name in names])
        # Generated ids rarely name a seeded object: in positive cases, half use real ids.
        kinds = {ID_PARAMS[n] for n in re.findall(r"{(\w+)}", operation.path) if n in ID_PARAMS}
        pool = self.world.loans + self.world.other_customers_loans
        real_ids = st.none()
        if mode is POSITIVE and kinds:
            users = self.world.users
            if raw["operationId"] == "admin_reset_password":
                users = self.world.not_callers()
            real_ids = st.none() | st.sampled_from(pool if "loans" in kinds else users)

        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=operation.as_strategy(generation_mode=mode), caller=callers, real_id=real_ids)
        def fuzz_operation(case: Case, caller: Caller, real_id: int | None) -> None:
            self.run_case(case, caller, real_id)

        try:
            fuzz_operation()
        except Unsatisfiable:
            # Nothing to negate: no parameters or body besides the credentials.
            assert mode is NEGATIVE, f"{operation.label}: no {mode.value} cases"
        except Exception as exc:
            notes = "\n".join(getattr(exc, "__notes__", []))
            self.failures.append(f"[{operation.label}, {mode.value}] {exc}\n{notes}".rstrip())


def credentials_negated(case: Case) -> bool:
    """A negative case whose invalid part is a credentials header (HTTP Basic, x-access-token)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return False
    data = meta.phase.data
    names = [getattr(data, "parameter", None)]
    names += [mutation.parameter for mutation in getattr(data, "mutations", ())]
    return any(name and name.lower() in CREDENTIAL_HEADERS for name in names)


SHOWN_HEADERS = frozenset({"content-type", "if-match", "idempotency-key", "x-access-token"})


def describe(caller: Caller, response: httpx.Response) -> str:
    """The request (as the caller sent it) and the response, for a reproduction."""
    request = response.request
    lines = [
        f"  caller: {caller.name}",
        f"  request: {request.method} {request.url.raw_path.decode('latin-1')}",
    ]
    sent = {k: v for k, v in request.headers.items() if k.lower() in SHOWN_HEADERS}
    if caller.name == "anonymous" and "authorization" in request.headers:
        sent["authorization"] = request.headers["authorization"]
    if sent:
        lines.append(f"  headers: {sent}")
    if request.content:
        lines.append(f"  body: {request.content[:600]!r}")
    lines.append(f"  status: {response.status_code} {response.headers.get('content-type')}")
    lines.append(f"  response: {response.text[:600]}")
    return "\n".join(lines)


def unparsable_body(response: httpx.Response) -> bool:
    """A 422 for a body that is not JSON at all.

    FastAPI decodes the body before it resolves any dependency, so such a body is refused before
    the caller is authenticated. Nothing is read or changed and the answer is the same for every
    caller, so it reveals nothing; it is the one place where a 422 comes before a 401/403.
    """
    if response.status_code != 422:
        return False
    body = response.json()
    kinds = {error.get("type") for error in body.get("errors") or []}
    message = str(body.get("Message", ""))
    unparsed = ("JSON decode error", "could not be parsed")
    return bool(kinds & {"json_invalid", "body_invalid"}) or any(m in message for m in unparsed)


def api_md_conventions(
    case: Case, caller: Caller, response: httpx.Response, world: World
) -> Iterator[str]:
    """API.md's rules that the OpenAPI document cannot state."""
    raw = case.operation.definition.raw
    tag = (raw.get("tags") or [""])[0]
    operation_id = raw["operationId"]
    status = response.status_code
    if not response.headers.get("x-request-id"):
        yield "no X-Request-ID"
    if case.operation.path.startswith("/api/v1") and status >= 400:
        if response.headers.get("content-type") != "application/problem+json":
            yield "an /api/v1 error that is not application/problem+json"
        elif response.json().get("status") != status:
            yield "the problem's `status` is not the HTTP status"
    throttled = status == 429 and operation_id in BASIC_LOGIN
    if unparsable_body(response):
        return
    if raw.get("security") and not caller.valid and status != 401 and not throttled:
        yield "a secured operation answered a caller without valid credentials with other than 401"
    if status == 401 and case.operation.path.startswith("/api/v1"):
        if operation_id not in BASIC_LOGIN and operation_id != "auth_token":
            if not response.headers.get("www-authenticate", "").startswith("Bearer"):
                yield "a 401 without `WWW-Authenticate: Bearer`"
    if tag in VALID_ROLES and caller.valid and caller.name != tag and status not in (401, 403):
        yield f"the {caller.name} role was not refused an operation for the {tag} role"
    if (
        tag == "customer"
        and caller.name == "customer"
        and (case.path_parameters or {}).get("loan_id") in world.other_customers_loans
        and status not in (404, 422)
        # An Idempotency-Key this customer already used elsewhere is refused before any lookup,
        # the same for every loan id: it tells nothing about the loan.
        and not (status == 409 and "Idempotency-Key" in (response.json().get("detail") or ""))
    ):
        yield "a customer's request for another customer's loan was not a 404"


# --- the seeded world ------------------------------------------------------------------------


def forged_tokens(admin_id: int) -> dict[str, str]:
    """Tokens claiming to be the admin that the app must refuse."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(admin_id),
        "role": "admin",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "jti": "f" * 32,
    }

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    expired = {**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600}
    return {
        "alg_none": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.",
        "wrong_key": jwt.encode(claims, "another-key-" * 4, algorithm="HS256"),
        "expired": jwt.encode(expired, TEST_SECRET, algorithm="HS256"),
    }


async def seed(client: httpx.AsyncClient) -> World:
    """Users in every role and status, and loans in every status with some history."""
    admin_token = await token_for(client, ADMIN["username"], ADMIN["password"])
    admin = bearer(admin_token)
    me = (await client.get("/api/v1/auth/me", headers=admin)).json()

    async def post(path: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
        response = await client.post(path, headers=headers, json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    customer = await register(client, "customer", "fuzz_carol", phone="+44 20 7946 0000")
    other = await register(client, "customer", "fuzz_dave")
    agent = await register(client, "agent", "fuzz_andy")
    pending = await register(client, "agent", "fuzz_pam")
    rejected = await register(client, "agent", "fuzz_rex")
    await post(f"/api/v1/admin/agents/{agent['id']}/approve", admin)
    await post(f"/api/v1/admin/agents/{rejected['id']}/reject", admin)
    customer_token = await token_for(client, "fuzz_carol")
    agent_token = await token_for(client, "fuzz_andy")
    customer_h, agent_h = bearer(customer_token), bearer(agent_token)
    other_h = bearer(await token_for(client, "fuzz_dave"))

    async def apply(headers: dict[str, str], loan_type: str, principal: str, months: int) -> int:
        body = {"loan_type": loan_type, "principal": principal, "tenure_months": months}
        return int((await post("/api/v1/customer/loans", headers, body))["id"])

    own = [
        await apply(customer_h, "home_loan", "10000.00", 12),
        await apply(customer_h, "personal_loan", "30000", 36),
        await apply(customer_h, "car_loan", "20000.50", 24),
        await apply(customer_h, "education_loan", "100000", 60),
        await apply(customer_h, "home_loan", "5000", 7),
        await apply(customer_h, "car_loan", "1000", 1),
    ]
    edited, requested, approved, rejected_loan, withdrawn = own[1:]
    for change in ({"tenure_months": 48}, {"loan_type": "car_loan"}, {"principal": "31000"}):
        response = await client.patch(f"/api/v1/agent/loans/{edited}", headers=agent_h, json=change)
        assert response.status_code == 200, response.text
    await post(f"/api/v1/agent/loans/{edited}/rollback", agent_h, {"version": 2})
    for loan in (requested, approved):
        await post(f"/api/v1/agent/loans/{loan}/request", agent_h)
    await post(f"/api/v1/admin/loans/{approved}/approve", admin)
    await post(f"/api/v1/admin/loans/{rejected_loan}/reject", admin, {"reason": "fuzz"})
    await post(f"/api/v1/customer/loans/{withdrawn}/withdraw", customer_h)
    others = [
        await apply(other_h, "home_loan", "250000", 240),
        await apply(other_h, "personal_loan", "7500.25", 18),
    ]
    await post(f"/api/v1/agent/loans/{others[1]}/request", agent_h)

    callers = {
        "anonymous": Caller("anonymous"),
        "customer": Caller("customer", "fuzz_carol", PASSWORD, customer["id"], customer_token),
        "agent": Caller("agent", "fuzz_andy", PASSWORD, agent["id"], agent_token),
        "admin": Caller("admin", ADMIN["username"], ADMIN["password"], me["id"], admin_token),
    }
    for name, token in forged_tokens(me["id"]).items():
        callers[name] = Caller(name, token=token)
    return World(
        callers=callers,
        loans=own,
        other_customers_loans=others,
        users=[me["id"], customer["id"], other["id"], agent["id"], pending["id"], rejected["id"]],
    )


def run_all(fuzzer: Fuzzer, schema: Any) -> None:
    for result in schema.get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        fuzzer.fuzz(operation, POSITIVE)
        # Without parameters or a body there is nothing to negate (credentials aside).
        if raw.get("parameters") or raw.get("requestBody") or raw["operationId"] in BASIC_LOGIN:
            fuzzer.fuzz(operation, NEGATIVE)


async def test_openapi_fuzz(app: Any, database: Any, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        world = await seed(client)
        world.codec = app.state.codec
        schema = schemathesis.openapi.from_dict(app.openapi())
        fuzzer = Fuzzer(asyncio.get_running_loop(), client, world)
        await asyncio.to_thread(run_all, fuzzer, schema)

    total = sum(fuzzer.cases.values())
    operations = sum(1 for result in schema.get_all_operations() if result.ok())
    with capsys.disabled():
        print(  # noqa: T201
            f"\nschemathesis {schemathesis.__version__} on {database.name}: {total} cases over "
            f"{len(fuzzer.cases)} of {operations} operations in {time.monotonic() - started:.1f}s,"
            f" {len(fuzzer.failures)} failing"
        )
    assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
    assert len(fuzzer.cases) == operations, "some operations got no case"
    assert total >= MIN_CASES, f"only {total} cases were generated"
