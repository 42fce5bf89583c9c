"""Loans: applying, changing through the state machine, history, schedules, lists, products.

Every change is a conditional UPDATE on (id, version) plus one LoanEvent in the same
transaction, so two racing requests can never both win and versions have no holes.
"""

import enum
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loanapi.clock import utcnow
from loanapi.db import WriteSession, fetch
from loanapi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from loanapi.loans import pricing
from loanapi.loans.ledger import Bucket
from loanapi.loans.models import EventAction, Loan, LoanEvent, LoanProduct, LoanStatus, LoanType
from loanapi.loans.records import LoanEventRecord, LoanRecord, ProductRecord
from loanapi.loans.schemas import LoanCreate, LoanProductUpdate, LoanUpdate
from loanapi.loans.workflow import EVENT_OF, Action, permit
from loanapi.pagination import PageParams, keyset, oldest_first
from loanapi.users.models import Role, User, UserStatus
from loanapi.users.records import Caller
from loanapi.webhooks import outbox
from loanapi.webhooks.models import loan_type

TERMS = ("loan_type", "principal", "annual_rate", "tenure_months")
PRICED = ("emi", "total_payable", "total_interest")
SNAPSHOT = (*TERMS, *PRICED, "status", "agent_id")


class LoanNotFound(NotFound):
    def __init__(self, loan_id: int) -> None:
        super().__init__(f"No loan with id {loan_id}")


class ProductNotFound(NotFound):
    def __init__(self, loan_type: LoanType) -> None:
        super().__init__(f"No loan product {loan_type.value}")


class AlreadyRequested(Conflict):
    def __init__(self) -> None:
        super().__init__("Another agent has already requested this loan")


class StaleVersion(PreconditionFailed):
    def __init__(self, current: int) -> None:
        super().__init__(f"The loan has changed: its current version is {current}")


class ConcurrentChange(Conflict):
    def __init__(self) -> None:
        super().__init__("The loan was changed by another request at the same time; retry")


def json_value(value: Any) -> Any:
    """A field's value as an event's changes and snapshot hold it."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return value


def snapshot_of(values: dict[str, Any]) -> dict[str, Any]:
    return {name: json_value(values[name]) for name in SNAPSHOT}


def state_of(loan: LoanRecord) -> dict[str, Any]:
    return {name: getattr(loan, name) for name in SNAPSHOT}


# --- products ---------------------------------------------------------------------------------


_PRODUCTS = select(LoanProduct.__table__)
_PRODUCT_LIST = _PRODUCTS.order_by(LoanProduct.loan_type)


async def list_products(session: AsyncSession) -> list[ProductRecord]:
    rows = await fetch(session, _PRODUCT_LIST)
    return [ProductRecord.of(row) for row in rows]


async def update_product(
    session: WriteSession, *, loan_type: LoanType, data: LoanProductUpdate
) -> ProductRecord:
    if data.loan_type is not None and data.loan_type is not loan_type:
        raise Unprocessable.field(
            ("body", "loan_type"), "must equal the loan type in the path", "value_error"
        )
    # A late fee or grace left out stays as it is (clients from before servicing send neither).
    values = {**data.model_dump(exclude={"loan_type"}, exclude_none=True), "updated_at": utcnow()}
    statement = (
        update(LoanProduct)
        .where(LoanProduct.loan_type == loan_type)
        .values(values)
        .returning(*LoanProduct.__table__.c)
    )
    row = (await (await session.connection()).execute(statement)).mappings().first()
    if row is None:
        raise ProductNotFound(loan_type)
    return ProductRecord.of(row)


_PRODUCT_ROW = _PRODUCTS.where(LoanProduct.loan_type == bindparam("loan_type"))


async def read_product(session: AsyncSession, loan_type: LoanType) -> ProductRecord:
    """A product's current terms, to price a loan with."""
    rows = await fetch(session, _PRODUCT_ROW, {"loan_type": loan_type})
    if not rows:
        raise ProductNotFound(loan_type)
    return ProductRecord.of(rows[0])


def _check_bounds(
    product: ProductRecord, loan_type: LoanType, principal: Decimal, tenure_months: int
) -> None:
    low, high = product.min_principal, product.max_principal
    if not low <= principal <= high:
        raise Unprocessable.field(
            ("body", "principal"),
            f"must be between {low:.2f} and {high:.2f} for {loan_type.value}",
            "out_of_range",
        )
    shortest, longest = product.min_tenure_months, product.max_tenure_months
    if not shortest <= tenure_months <= longest:
        raise Unprocessable.field(
            ("body", "tenure_months"),
            f"must be between {shortest} and {longest} months for {loan_type.value}",
            "out_of_range",
        )


def _priced(
    loan_type: LoanType, principal: Decimal, annual_rate: Decimal, tenure_months: int
) -> dict[str, Any]:
    principal = pricing.to_cents(principal)
    terms = pricing.price(principal, annual_rate, tenure_months)
    return {
        "loan_type": loan_type,
        "principal": principal,
        "annual_rate": annual_rate,
        "tenure_months": tenure_months,
        "emi": terms.emi,
        "total_payable": terms.total_payable,
        "total_interest": terms.total_interest,
    }


# --- loading ----------------------------------------------------------------------------------


# Built once: a statement built per request costs a third of what running it does.
_LOAN_ROW = select(Loan.__table__).where(Loan.id == bindparam("loan_id"))
_CUSTOMERS_LOAN_ROW = _LOAN_ROW.where(Loan.customer_id == bindparam("customer_id"))


async def get_loan(
    session: AsyncSession, loan_id: int, *, customer_id: int | None = None
) -> LoanRecord:
    """The loan, or 404; with `customer_id`, another customer's loan is simply not found.

    A plain row, not an entity: building one costs more than the query. In a request that
    writes, it is read in the request's transaction (a change then checks its version).
    """
    if customer_id is None:
        rows = await fetch(session, _LOAN_ROW, {"loan_id": loan_id})
    else:
        params = {"loan_id": loan_id, "customer_id": customer_id}
        rows = await fetch(session, _CUSTOMERS_LOAN_ROW, params)
    if not rows:
        raise LoanNotFound(loan_id)
    return LoanRecord.of(rows[0])


_EVENTS = select(LoanEvent.__table__).where(LoanEvent.loan_id == bindparam("loan_id"))
# With who acted, by name (usernames never change; the history is short).
_HISTORY = (
    select(LoanEvent.__table__, User.username.label("actor_username"))
    .join(User, User.id == LoanEvent.actor_id)
    .where(LoanEvent.loan_id == bindparam("loan_id"))
    .order_by(LoanEvent.version)
)
_VERSION = _EVENTS.where(LoanEvent.version == bindparam("version"))


async def history(
    session: AsyncSession, loan_id: int, *, customer_id: int | None = None
) -> list[LoanEventRecord]:
    await get_loan(session, loan_id, customer_id=customer_id)
    rows = await fetch(session, _HISTORY, {"loan_id": loan_id})
    return [LoanEventRecord.of(row) for row in rows]


async def schedule(session: AsyncSession, loan_id: int, *, customer_id: int) -> pricing.Schedule:
    loan = await get_loan(session, loan_id, customer_id=customer_id)
    return pricing.schedule(loan.principal, loan.annual_rate, loan.tenure_months)


# --- changes ----------------------------------------------------------------------------------


# Inserts as Core statements built once: the ORM's unit of work costs three times as much CPU
# for a row that the request never reads back as an entity.
_INSERT_LOAN = insert(Loan).returning(*Loan.__table__.c)
INSERT_EVENT = insert(LoanEvent)


def event_row(
    loan_id: int,
    version: int,
    action: EventAction,
    actor: tuple[int, Role],
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    *,
    fields: Sequence[str] = SNAPSHOT,
    detail: dict[str, Any] | None = None,
    reason: str | None = None,
    restored_version: int | None = None,
) -> dict[str, Any]:
    """A loan event: the `fields` that changed from `before` (None: a new loan) to `after`, with
    `detail` beside them (the repayment, the fees recorded), and `after` as the snapshot. Every
    path that changes a loan writes its events from here."""
    changes = {
        name: {"from": json_value(before[name]) if before else None, "to": json_value(after[name])}
        for name in fields
        if before is None or before[name] != after[name]
    }
    if detail is not None:
        changes.update(detail)
    actor_id, actor_role = actor
    return {
        "loan_id": loan_id,
        "version": version,
        "action": action,
        "actor_id": actor_id,
        "actor_role": actor_role,
        "at": utcnow(),
        "changes": changes,
        "snapshot": {name: json_value(after[name]) for name in fields},
        "reason": reason,
        "restored_version": restored_version,
    }


async def _record(
    session: WriteSession,
    loan: LoanRecord,
    action: EventAction,
    actor: Caller,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    reason: str | None = None,
    restored_version: int | None = None,
) -> None:
    """Write the change's loan event and its integration event (`loan` as it is now), in the
    request's transaction."""
    event = event_row(
        loan.id,
        loan.version,
        action,
        (actor.id, actor.role),
        before,
        after,
        reason=reason,
        restored_version=restored_version,
    )
    await (await session.connection()).execute(INSERT_EVENT, event)
    await outbox.publish(session, [outbox.loan_event(loan_type(action), loan, actor.id)])


async def apply(
    session: WriteSession, *, customer: Caller, data: LoanCreate, actor: Caller | None = None
) -> LoanRecord:
    """A new loan of `customer`'s, priced at the product's current rate. `actor`: who opens
    it, when not the customer themself (an agent, for a walk-in customer)."""
    product = await read_product(session, data.loan_type)
    _check_bounds(product, data.loan_type, data.principal, data.tenure_months)
    values = _priced(data.loan_type, data.principal, product.annual_rate, data.tenure_months)
    now = utcnow()
    loan = {
        "customer_id": customer.id,
        "customer_username": customer.username,
        "agent_id": None,
        "status": LoanStatus.new,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    connection = await session.connection()
    row = LoanRecord.of((await connection.execute(_INSERT_LOAN, loan)).mappings().one())
    await _record(session, row, EventAction.created, actor or customer, None, loan)
    return row


_CUSTOMER = select(User.id, User.username, User.role, User.status).where(User.id == bindparam("id"))


async def apply_for(
    session: WriteSession, *, customer_id: int, data: LoanCreate, agent: Caller
) -> LoanRecord:
    """An agent opens an application on a walk-in customer's behalf (the `created` event is
    the agent's)."""
    found = (await session.execute(_CUSTOMER, {"id": customer_id})).mappings().first()
    if found is None or found["role"] is not Role.customer:
        raise NotFound(f"No customer with id {customer_id}")
    if found["status"] is not UserStatus.active:
        raise Conflict(f"Customer {customer_id}'s account is {found['status'].value}")
    customer = replace(agent, id=customer_id, username=found["username"], role=Role.customer)
    return await apply(session, customer=customer, data=data, actor=agent)


def _permit(
    loan: LoanRecord, action: Action, actor: Caller, expected_version: int | None
) -> LoanStatus:
    """The preconditions of every change, in order: a stale If-Match (412), then who may take
    the action from the loan's status (the state machine: 403, 409)."""
    if expected_version is not None and expected_version != loan.version:
        raise StaleVersion(loan.version)
    return permit(loan.status, action, role=actor.role, actor_id=actor.id, agent_id=loan.agent_id)


@functools.cache
def _update_statement(columns: tuple[str, ...], beside: Any = None) -> Any:
    """The conditional UPDATE on (id, version) of the columns a change sets, built once per set
    of columns (a statement built per request costs a third of what running it does); with
    `beside`, an INSERT in the same statement (a data-modifying CTE, PostgreSQL)."""
    statement = (
        update(Loan)
        .where(Loan.id == bindparam("loan_id"), Loan.version == bindparam("old_version"))
        .values({name: bindparam(f"new_{name}") for name in (*columns, "version", "updated_at")})
    )
    return statement if beside is None else statement.add_cte(beside.cte("beside"))


async def update_loan(
    session: WriteSession,
    loan: LoanRecord,
    changed: dict[str, Any],
    versions: int = 1,
    beside: tuple[Any, dict[str, Any]] | None = None,
) -> LoanRecord | None:
    """Every change's write: set `changed` and move the loan `versions` on, if it is still at
    the version it was read at; None when another change got there first (then the caller's
    transaction is rolled back). `beside`: an INSERT and its parameters written with the change,
    on PostgreSQL by the same statement (one round trip less), on SQLite just before it."""
    values = {**changed, "version": loan.version + versions, "updated_at": utcnow()}
    params = {f"new_{name}": value for name, value in values.items()}
    params |= {"loan_id": loan.id, "old_version": loan.version}
    connection = await session.connection()
    statement = _update_statement(tuple(changed))
    if beside is not None:
        insert_beside, insert_params = beside
        if connection.dialect.name == "postgresql":
            statement = _update_statement(tuple(changed), insert_beside)
            params |= insert_params
        else:
            await connection.execute(insert_beside, insert_params)
    if (await connection.execute(statement, params)).rowcount != 1:
        return None
    return replace(loan, **values)


async def _change(
    session: WriteSession,
    *,
    loan: LoanRecord,
    action: Action,
    actor: Caller,
    values: dict[str, Any],
    expected_version: int | None,
    reason: str | None = None,
    restored_version: int | None = None,
    beside: dict[str, Any] | None = None,
) -> LoanRecord:
    """Move `loan` through the state machine; no-op when nothing would change. A rejection
    keeps its reason on the loan, and leaving `rejected` clears it; `beside`: columns set with
    the change that are not part of its history (the agent's username)."""
    status = _permit(loan, action, actor, expected_version)
    before = state_of(loan)
    after = {**before, **values, "status": status}
    if after == before:
        return loan
    diff = {name: after[name] for name in SNAPSHOT if after[name] != before[name]}
    diff |= beside or {}
    if action is Action.reject:
        diff["rejection_reason"] = reason
    elif loan.status is LoanStatus.rejected and status is not LoanStatus.rejected:
        diff["rejection_reason"] = None
    changed = await update_loan(session, loan, diff)
    if changed is None:
        current = await get_loan(session, loan.id)
        if expected_version is not None:
            raise StaleVersion(current.version)
        raise ConcurrentChange
    await _record(
        session, changed, EVENT_OF[action], actor, before, after, reason, restored_version
    )
    return changed


async def edit(
    session: WriteSession,
    *,
    loan_id: int,
    actor: Caller,
    data: LoanUpdate,
    expected_version: int | None,
) -> LoanRecord:
    loan = await get_loan(session, loan_id)
    _permit(loan, Action.edit, actor, expected_version)  # 412/409 before a 422 on the terms
    current_type = loan.loan_type
    loan_type = data.loan_type or current_type
    principal = pricing.to_cents(data.principal) if data.principal is not None else loan.principal
    tenure = data.tenure_months if data.tenure_months is not None else loan.tenure_months
    if (loan_type, principal, tenure) == (current_type, loan.principal, loan.tenure_months):
        return loan
    product = await read_product(session, loan_type)
    _check_bounds(product, loan_type, principal, tenure)
    # A loan keeps the rate it was priced at, unless its type changes.
    rate = product.annual_rate if loan_type is not current_type else loan.annual_rate
    return await _change(
        session,
        loan=loan,
        action=Action.edit,
        actor=actor,
        values=_priced(loan_type, principal, rate, tenure),
        expected_version=expected_version,
    )


async def rollback(
    session: WriteSession,
    *,
    loan_id: int,
    actor: Caller,
    version: int,
    expected_version: int | None,
) -> LoanRecord:
    loan = await get_loan(session, loan_id)
    _permit(loan, Action.rollback, actor, expected_version)
    if version >= loan.version:
        raise Unprocessable.field(
            ("body", "version"),
            f"must be an earlier version of this loan (1 to {loan.version - 1})",
            "out_of_range",
        )
    targets = await fetch(session, _VERSION, {"loan_id": loan_id, "version": version})
    if not targets:
        raise NotFound(f"Loan {loan_id} has no version {version}")
    old = LoanEventRecord.of(targets[0]).snapshot
    values = _priced(
        LoanType(old["loan_type"]),
        Decimal(old["principal"]),
        Decimal(old["annual_rate"]),
        int(old["tenure_months"]),
    )
    return await _change(
        session,
        loan=loan,
        action=Action.rollback,
        actor=actor,
        values=values,
        expected_version=expected_version,
        restored_version=version,
    )


async def request(
    session: WriteSession, *, loan_id: int, agent: Caller, expected_version: int | None
) -> LoanRecord:
    loan = await get_loan(session, loan_id)
    if loan.status is LoanStatus.requested and expected_version in (None, loan.version):
        if loan.agent_id == agent.id:
            return loan  # asking again is a no-op
        raise AlreadyRequested
    return await _change(
        session,
        loan=loan,
        action=Action.request,
        actor=agent,
        values={"agent_id": agent.id},
        expected_version=expected_version,
        beside={"agent_username": agent.username},
    )


async def decide(
    session: WriteSession,
    *,
    loan_id: int,
    actor: Caller,
    action: Action,
    expected_version: int | None,
    reason: str | None = None,
    customer_id: int | None = None,
) -> LoanRecord:
    """approve, reject or withdraw: a status change and nothing else."""
    loan = await get_loan(session, loan_id, customer_id=customer_id)
    return await _change(
        session,
        loan=loan,
        action=action,
        actor=actor,
        values={},
        expected_version=expected_version,
        reason=reason,
    )


# --- lists ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanFilters:
    statuses: tuple[LoanStatus, ...] = ()  # any of them; none: any status
    loan_type: LoanType | None = None
    customer_id: int | None = None
    agent_id: int | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    updated_from: datetime | None = None
    updated_before: datetime | None = None
    dpd_min: int | None = None
    dpd_max: int | None = None
    bucket: Bucket | None = None
    # a LIKE pattern on the customer's lower-cased username or e-mail (`customer_prefix`)
    customer_like: str | None = None

    def params(self) -> dict[str, Any]:
        """The filters given, by name; each is a bindparam of the same name in _CONDITIONS (one
        status is `status`, an equality; several are `statuses`, an IN list)."""
        given = {name: value for name, value in vars(self).items() if value not in (None, ())}
        if len(self.statuses) == 1:
            given["status"] = given.pop("statuses")[0]
        return given


# Each filter's condition. A list's statement is built once per combination of filters and
# cursor (a statement built per request costs a third of what running it does).
_CONDITIONS = {
    "status": Loan.status == bindparam("status"),
    "statuses": Loan.status.in_(bindparam("statuses", expanding=True)),
    "loan_type": Loan.loan_type == bindparam("loan_type"),
    "customer_like": Loan.customer_id.in_(
        select(User.id).where(
            or_(
                func.lower(User.username).like(bindparam("customer_like"), escape="/"),
                func.lower(User.email).like(bindparam("customer_like"), escape="/"),
            )
        )
    ),
    "customer_id": Loan.customer_id == bindparam("customer_id"),
    "agent_id": Loan.agent_id == bindparam("agent_id"),
    "created_from": Loan.created_at >= bindparam("created_from"),
    "created_before": Loan.created_at < bindparam("created_before"),
    "updated_from": Loan.updated_at >= bindparam("updated_from"),
    "updated_before": Loan.updated_at < bindparam("updated_before"),
    "dpd_min": Loan.dpd >= bindparam("dpd_min"),
    "dpd_max": Loan.dpd <= bindparam("dpd_max"),
    "bucket": Loan.bucket == bindparam("bucket"),
}


@functools.cache
def _list_statement(filters: tuple[str, ...], with_cursor: bool) -> Select[Any]:
    query = select(Loan.__table__).where(*(_CONDITIONS[name] for name in filters))
    return keyset(query, with_cursor, Loan.created_at, Loan.id)


async def list_loans(
    session: AsyncSession, *, filters: LoanFilters, page: PageParams
) -> list[LoanRecord]:
    """A page of loans, newest first, and one more when there are more (`make_page`)."""
    params = filters.params()
    query = _list_statement(tuple(params), page.after is not None)
    rows = await fetch(session, query, {**params, **page.binds()})
    return [LoanRecord.of(row) for row in rows]


def customer_prefix(text: str) -> str:
    """The LIKE pattern of customers whose username or e-mail starts with `text`, any case."""
    escaped = text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


@functools.cache
def _rows_statement(columns: tuple[Any, ...], filters: tuple[str, ...]) -> Select[Any]:
    query = select(*columns).where(*(_CONDITIONS[name] for name in filters))
    return oldest_first(query, Loan.created_at, Loan.id)


async def oldest_rows(
    session: AsyncSession, *, filters: LoanFilters, columns: tuple[Any, ...], limit: int
) -> Sequence[Mapping[str, Any]]:
    """At most `limit` loans, oldest first, as the given columns (built once by the caller)."""
    params = filters.params()
    query = _rows_statement(columns, tuple(params))
    return await fetch(session, query, {**params, "limit": limit})


async def require_agent(session: AsyncSession, agent_id: int) -> None:
    """404 unless the id is an agent's: their requests are listed, not a customer's loans."""
    agent = await session.get(User, agent_id)
    if agent is None or agent.role is not Role.agent:
        raise NotFound(f"No agent with id {agent_id}")


async def agent_requests(
    session: AsyncSession,
    *,
    agent_id: int,
    statuses: tuple[LoanStatus, ...] = (),
    page: PageParams,
) -> list[LoanRecord]:
    """The loans `agent_id` requested, in any of `statuses` (none: any status)."""
    await require_agent(session, agent_id)
    filters = LoanFilters(agent_id=agent_id, statuses=statuses)
    return await list_loans(session, filters=filters, page=page)
