# ruff: noqa: T201  (a command-line tool: it prints)
"""The reference floor: the least a Python server must do for loanapi's list and get-one, and
for the legacy `/getloans` (an admin's whole table, a customer's own loans).

Starlette + an asyncpg pool + orjson, served by uvicorn like loanapi (same worker count, uvloop,
httptools). Per request it does the same work as loanapi: verify the HS256 JWT (same secret and
claims), load the caller's user row by id and check it is active and an admin, run the SQL that
loanapi emits (captured from its SQLAlchemy engine: same text, same parameters, so the same
plan), and return the same JSON: `{"items": [...], "next_cursor": ...}`, money as two-place
strings, timestamps ISO 8601 with `Z`, the same keyset cursor. The loanapi / floor throughput
ratio then measures only framework, ORM and serialization overhead.

`/getloans` runs the statements loanapi's legacy endpoint sends, captured by bench/run.py from
loanapi in process just before the floor starts (`capture_legacy`) and handed over in the file
named by BENCH_FLOOR_LEGACY: the caller's user row, then the admin's list or the customer's list
(the parameters that were the caller's id are replaced by the caller's id), with loanapi's text
and parameters. Loanapi's legacy list SQL gives one column per legacy key, labelled with the
key, values final, so the body is `orjson.dumps({"Loans": [dict(row) ...]}, OPT_SORT_KEYS)`.

    BENCH_FLOOR_DSN=postgresql://postgres@127.0.0.1:5432/loanapi_bench_10k \
    BENCH_FLOOR_SECRET=... uvicorn floor:app --app-dir bench --workers 2 \
        --loop uvloop --http httptools
"""

import base64
import hashlib
import os
import pickle
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

try:  # PyJWT when installed (the bench extra), else python-jose (a loanapi dependency)
    import jwt as _pyjwt

    def decode(token: str, key: str) -> dict:
        return _pyjwt.decode(
            token, key, algorithms=["HS256"], options={"require": ["exp", "iat", "sub", "jti"]}
        )

    JWT_LIBRARY = "pyjwt"
except ImportError:  # pragma: no cover
    from jose import jwt as _jose

    def decode(token: str, key: str) -> dict:
        claims = _jose.decode(token, key, algorithms=["HS256"])
        if any(claims.get(name) in (None, "") for name in ("exp", "iat", "sub", "jti")):
            raise ValueError("missing claim")
        return claims

    JWT_LIBRARY = "python-jose"

SECRET = os.environ.get("BENCH_FLOOR_SECRET") or os.environ.get("LOANAPI_SECRET_KEY", "")
DSN = os.environ.get("BENCH_FLOOR_DSN", "postgresql://postgres@127.0.0.1:5432/loanapi_bench_10k")
POOL_SIZE = int(os.environ.get("LOANAPI_DB_POOL_SIZE", "10"))
# {"user" | "bulk" | "customer": {"sql", "params", "caller": [indexes of the caller's id]}}
LEGACY_FILE = os.environ.get("BENCH_FLOOR_LEGACY")
LEGACY = pickle.loads(Path(LEGACY_FILE).read_bytes()) if LEGACY_FILE else {}

# The statements loanapi's SQLAlchemy engine sends (see bench/README.md to re-capture them).
# The caller and whether the token still stands (logged out, or issued before a password change).
USER_SQL = (
    "SELECT users.id, users.public_id, users.username, users.email, users.phone, "
    "users.role, users.status, users.approved_at, users.created_at, users.updated_at, "
    "users.tokens_valid_after, users.kept_token, users.must_change_password, EXISTS (SELECT * "
    "\nFROM revoked_tokens \nWHERE revoked_tokens.jti = $1::VARCHAR) AS logged_out "
    "\nFROM users \nWHERE users.id = $2::INTEGER"
)
COLUMNS = (
    "id customer_id agent_id loan_type principal annual_rate tenure_months emi total_payable "
    "total_interest status version created_at updated_at disbursed_on first_due_on "
    "first_due_given closed_on late_fee grace_days principal_outstanding interest_outstanding "
    "penalty_outstanding arrears dpd bucket cob_date next_due_on next_due_amount written_off_on "
    "written_off_principal written_off_interest written_off_penalty serviced_on fees_charged "
    "fees_recorded rejection_reason customer_username agent_username"
).split()
SELECT_LOANS = "SELECT " + ", ".join(f"loans.{c}" for c in COLUMNS) + " \nFROM loans"
GET_SQL = SELECT_LOANS + " \nWHERE loans.id = $1::INTEGER"
MONEY = ("principal", "annual_rate", "emi", "total_payable", "total_interest")
# servicing money: null until the loan is disbursed (dates and the rest orjson writes as they are)
MONEY_OR_NULL = (
    "late_fee",
    "principal_outstanding",
    "interest_outstanding",
    "penalty_outstanding",
    "arrears",
    "next_due_amount",
    "written_off_principal",
    "written_off_interest",
    "written_off_penalty",
)
# selected (loanapi's SQL) but not in the Loan body: how due dates are counted, close of
# business's bookkeeping
HIDDEN = ("first_due_given", "serviced_on", "fees_charged", "fees_recorded")
TS = "::TIMESTAMP WITH TIME ZONE"
FILTERS = (  # query parameter, SQL condition (in loanapi's order), kind
    ("status", "loans.status = ${}", "str"),
    ("loan_type", "loans.loan_type = ${}", "str"),
    ("customer_id", "loans.customer_id = ${}::INTEGER", "int"),
    ("created_from", "loans.created_at >= ${}" + TS, "from"),
    ("created_to", "loans.created_at < ${}" + TS, "to"),
    ("updated_from", "loans.updated_at >= ${}" + TS, "from"),
    ("updated_to", "loans.updated_at < ${}" + TS, "to"),
)


class Problem(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def problem(status: int, detail: str) -> Response:
    body = {"type": "about:blank", "title": "Error", "status": status, "detail": detail}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status, headers, "application/problem+json")


def bound(value: str, upper: bool) -> datetime:
    if len(value) == 10:
        day = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        return day + timedelta(days=1) if upper else day
    moment = datetime.fromisoformat(value)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment + timedelta(microseconds=1) if upper else moment


def list_scope(path: str, query: list[tuple[str, str]]) -> str:
    """The list and filters a cursor is bound to, as loanapi digests them."""
    filters = sorted((k, v) for k, v in query if k not in ("cursor", "limit", "format"))
    digest = hashlib.sha256(repr((path, filters)).encode()).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode()


def encode_cursor(created_at: datetime, row_id: int, scope: str = "") -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{row_id}|{scope}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> tuple[datetime, int]:
    created, row_id, bound = (
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
    )
    if bound != scope:
        raise ValueError("cursor")
    return datetime.fromisoformat(created), int(row_id)


def loan_json(row: asyncpg.Record) -> dict:
    item = dict(row.items())
    for name in MONEY:
        item[name] = f"{item[name]:.2f}"
    for name in MONEY_OR_NULL:
        if item[name] is not None:
            item[name] = f"{item[name]:.2f}"
    for name in HIDDEN:
        del item[name]
    return item


def revoked(user: asyncpg.Record, claims: dict) -> bool:
    if user["logged_out"]:
        return True
    after = user["tokens_valid_after"]
    issued = datetime.fromtimestamp(float(claims["iat"]), UTC)
    return after is not None and issued < after and claims["jti"] != user["kept_token"]


async def admin_of(request: Request, conn: asyncpg.Connection) -> None:
    """Verify the bearer token and load its user: 401 unless valid and active, 403 unless admin."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Not authenticated")
    try:
        claims = decode(token, SECRET)
        user_id = int(claims["sub"])
    except Exception as exc:
        raise Problem(401, "The token is invalid") from exc
    user = await conn.fetchrow(USER_SQL, claims["jti"], user_id)
    if user is None or user["status"] != "active" or revoked(user, claims):
        raise Problem(401, "The token is invalid")
    if user["role"] != "admin":
        raise Problem(403, "This endpoint is for the admin role")


async def list_loans(request: Request) -> Response:
    query = request.query_params
    scope = list_scope(request.url.path, query.multi_items())
    try:
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 200:
            raise ValueError("limit")
        where, args = [], []
        for name, condition, kind in FILTERS:
            if (value := query.get(name)) is None:
                continue
            args.append(
                int(value)
                if kind == "int"
                else bound(value, kind == "to")
                if kind in ("from", "to")
                else value
            )
            where.append(condition.format(len(args)))
        if cursor := query.get("cursor"):
            args += decode_cursor(cursor, scope)
            n = len(args)
            where.append(f"(loans.created_at, loans.id) < (${n - 1}{TS}, ${n}::INTEGER)")
    except ValueError:
        return problem(422, "invalid query parameter")
    args.append(limit + 1)
    sql = SELECT_LOANS + (" \nWHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY loans.created_at DESC, loans.id DESC \n LIMIT ${len(args)}::INTEGER"
    try:
        async with request.app.state.pool.acquire() as conn:
            await admin_of(request, conn)
            rows = await conn.fetch(sql, *args)
    except Problem as exc:
        return problem(exc.status, exc.detail)
    more = len(rows) > limit
    rows = rows[:limit]
    body = {
        "items": [loan_json(row) for row in rows],
        "next_cursor": (
            encode_cursor(rows[-1]["created_at"], rows[-1]["id"], scope) if more else None
        ),
    }
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


async def get_loan(request: Request) -> Response:
    try:
        loan_id = int(request.path_params["loan_id"])
    except ValueError:
        return problem(422, "invalid loan id")
    try:
        async with request.app.state.pool.acquire() as conn:
            await admin_of(request, conn)
            row = await conn.fetchrow(GET_SQL, loan_id)
    except Problem as exc:
        return problem(exc.status, exc.detail)
    if row is None:
        return problem(404, f"No loan with id {loan_id}")
    return Response(
        orjson.dumps(loan_json(row), option=orjson.OPT_UTC_Z),
        media_type="application/json",
        headers={"ETag": f'"{row["version"]}"'},
    )


# --- legacy /getloans ----------------------------------------------------------------------------


def legacy_error(status: int, key: str, text: str) -> Response:
    return Response(orjson.dumps({key: text}), status, media_type="application/json")


def bind(statement: dict, caller: int, jti: str = "") -> list:
    """The captured parameters, with the caller's id and token id where loanapi had put its
    caller's."""
    args = list(statement["params"])
    for index in statement["caller"]:
        args[index] = caller
    for index in statement.get("token", ()):
        args[index] = jti
    return args


def interim(value: object) -> float:
    """Only while loanapi's legacy SQL still returns raw columns (numerics): the final SQL
    returns floats, strings and ints, and orjson never calls this."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


async def get_loans(request: Request) -> Response:
    user_sql, bulk, own = LEGACY.get("user"), LEGACY.get("bulk"), LEGACY.get("customer")
    if not (user_sql and bulk and own):
        return legacy_error(503, "message", "no SQL captured from loanapi (see the bench log)")
    token = request.headers.get("x-access-token")
    if not token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return legacy_error(401, "message", "Token is missing!")
    try:
        claims = decode(token, SECRET)
        user_id = int(claims["sub"])
    except Exception:
        return legacy_error(401, "message", "Token is invalid!")
    async with request.app.state.pool.acquire() as conn:
        user = await conn.fetchrow(user_sql["sql"], *bind(user_sql, user_id, claims["jti"]))
        if user is None or user["status"] != "active" or revoked(user, claims):
            return legacy_error(401, "message", "Token is invalid!")
        if user["role"] == "admin":
            rows = await conn.fetch(bulk["sql"], *bind(bulk, user_id))
        elif user["role"] == "customer":
            rows = await conn.fetch(own["sql"], *bind(own, user_id))
        else:
            return legacy_error(401, "Message", "not measured: agents' /getloans")
    if not rows:
        return legacy_error(200, "Message", "No all Loans found !")
    body = orjson.dumps(
        {"Loans": [dict(row) for row in rows]}, default=interim, option=orjson.OPT_SORT_KEYS
    )
    return Response(body, media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def no_reset(_conn: asyncpg.Connection) -> None:
    pass


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # No reset on release (asyncpg's default costs a round trip per request): these requests
    # leave no state on a connection (no transaction, LISTEN, advisory lock or SET).
    app.state.pool = await asyncpg.create_pool(
        DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=no_reset
    )
    yield
    await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/api/v1/admin/loans", list_loans),
        Route("/api/v1/admin/loans/{loan_id}", get_loan),
        Route("/getloans", get_loans),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
