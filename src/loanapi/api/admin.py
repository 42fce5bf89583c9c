"""The admin's views and decisions."""

from enum import StrEnum
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from loanapi.api.common import (
    history_response,
    loan_page,
    loan_response,
    model_response,
    payoff_response,
    repayment_page,
    repayment_response,
    statement_response,
    user_page,
    user_response,
)
from loanapi.api.deps import (
    V1,
    AdminUser,
    HasherDep,
    IfMatch,
    LoanId,
    LoanListDep,
    PageDep,
    ReadSessionDep,
    RepaymentId,
    StatusText,
    UserId,
    WriteSessionDep,
    statuses_of,
)
from loanapi.api.exports import LOANS, REPAYMENTS, USERS, csv_download, csv_route, wants_csv
from loanapi.api.idempotency import IdempotentRoute
from loanapi.api.servicing import LOAN_EXAMPLE, PAYOFF, REPAY, REPAYMENT, STATEMENT, OnDate
from loanapi.errors import Unprocessable, problem_responses
from loanapi.loans import service as loans
from loanapi.loans import servicing
from loanapi.loans.models import LoanType
from loanapi.loans.schemas import (
    Disbursement,
    IsoDate,
    LoanHistory,
    LoanProductRead,
    LoanProductUpdate,
    LoanRead,
    LoanReject,
    PayoffRead,
    Reason,
    RepaymentCreate,
    RepaymentRead,
)
from loanapi.loans.workflow import Action
from loanapi.orm import MAX_ID
from loanapi.pagination import Page
from loanapi.users import service as users
from loanapi.users.models import Role, UserStatus
from loanapi.users.schemas import PasswordReset, UserRead

router = APIRouter(
    route_class=IdempotentRoute,
    prefix=f"{V1}/admin",
    tags=["admin"],
    responses=problem_responses(401, 403, 422),
)


class AgentStatus(StrEnum):
    active = "active"
    pending = "pending"
    rejected = "rejected"


@router.get(
    "/users",
    response_model=Page[UserRead],
    operation_id="admin_list_users",
    summary="All users, newest first",
    description="Filters `role` and `status` combine with AND. Paged with `limit` and `cursor` "
    "(the previous page's `next_cursor`, sent with the same filters); `format=csv` downloads every "
    "matching user instead.",
    **csv_route(),
)
async def list_users(
    request: Request,
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    role: Annotated[Role | None, Query(description="Users of this role")] = None,
    status: Annotated[UserStatus | None, Query(description="Users in this status")] = None,
) -> Response:
    roles, statuses = [role] if role else (), [status] if status else ()
    if wants_csv(request):
        pages = partial(users.list_users, roles=roles, statuses=statuses)
        return await csv_download(request, session, "users", USERS, pages)
    found = await users.list_users(session, page=page, roles=roles, statuses=statuses)
    return user_page(found, page)


@router.get(
    "/customers",
    response_model=Page[UserRead],
    operation_id="admin_list_customers",
    summary="All customers, newest first",
    description="Customers in every status, `disabled` included. Paged with `limit` and `cursor` "
    "(the previous page's `next_cursor`); `format=csv` downloads them all.",
    **csv_route(),
)
async def list_customers(
    request: Request, admin: AdminUser, session: ReadSessionDep, page: PageDep
) -> Response:
    if wants_csv(request):
        pages = partial(users.list_users, roles=[Role.customer])
        return await csv_download(request, session, "customers", USERS, pages)
    return user_page(await users.list_users(session, page=page, roles=[Role.customer]), page)


@router.get(
    "/agents",
    response_model=Page[UserRead],
    operation_id="admin_list_agents",
    summary="Agents, optionally by status (active = approved)",
    description="`status` takes `active`, `pending` or `rejected`; without it every agent is "
    "listed, `disabled` ones included. Paged with `limit` and `cursor` (the previous page's "
    "`next_cursor`, sent with the same `status`); `format=csv` downloads every match.",
    **csv_route(),
)
async def list_agents(
    request: Request,
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    status: Annotated[
        AgentStatus | None, Query(description="`active` is approved; `pending` awaits a decision")
    ] = None,
) -> Response:
    statuses = [UserStatus(status.value)] if status else ()
    if wants_csv(request):
        pages = partial(users.list_users, roles=[Role.agent], statuses=statuses)
        return await csv_download(request, session, "agents", USERS, pages)
    found = await users.list_users(session, page=page, roles=[Role.agent], statuses=statuses)
    return user_page(found, page)


@router.get(
    "/agent-applications",
    response_model=Page[UserRead],
    operation_id="admin_list_agent_applications",
    summary="Agents waiting for approval",
    description="Agents in status `pending`: registered and not decided yet, or enabled again "
    "without ever having been approved. They cannot log in until approved "
    "(`POST /api/v1/admin/agents/{agent_id}/approve`). Newest first, paged with `limit` and "
    "`cursor`; `format=csv` downloads them all.",
    **csv_route(),
)
async def list_agent_applications(
    request: Request, admin: AdminUser, session: ReadSessionDep, page: PageDep
) -> Response:
    if wants_csv(request):
        pages = partial(users.list_users, roles=[Role.agent], statuses=[UserStatus.pending])
        return await csv_download(request, session, "agent-applications", USERS, pages)
    return user_page(
        await users.list_users(
            session, page=page, roles=[Role.agent], statuses=[UserStatus.pending]
        ),
        page,
    )


@router.post(
    "/agents/{agent_id}/approve",
    response_model=UserRead,
    operation_id="admin_approve_agent",
    summary="Approve an agent's application",
    description="Allowed from `pending` or `rejected` (409 otherwise, e.g. a `disabled` "
    "agent); 404 when the id is not an agent's. The agent becomes `active` and can log in; an "
    "`agent.approved` integration event is written.",
    responses=problem_responses(404, 409),
)
async def approve_agent(admin: AdminUser, session: WriteSessionDep, agent_id: UserId) -> Response:
    return user_response(await users.approve_agent(session, agent_id=agent_id, actor=admin))


@router.post(
    "/agents/{agent_id}/reject",
    response_model=UserRead,
    operation_id="admin_reject_agent",
    summary="Reject a pending agent's application",
    description="Only a `pending` agent (409 otherwise); 404 when the id is not an agent's. A "
    "rejected agent's login is refused (403), and an admin may still approve them later. Writes "
    "an `agent.rejected` integration event.",
    responses=problem_responses(404, 409),
)
async def reject_agent(admin: AdminUser, session: WriteSessionDep, agent_id: UserId) -> Response:
    return user_response(await users.reject_agent(session, agent_id=agent_id, actor=admin))


@router.post(
    "/users/{user_id}/disable",
    response_model=UserRead,
    operation_id="admin_disable_user",
    summary="Disable a user; their tokens stop working at once",
    description="Any user but yourself (409 for your own account, or one already `disabled`). From "
    "the next request on, their tokens get 401 and their logins 403; the tokens are not revoked, "
    "so unexpired ones work again if the user is enabled. Writes a `user.disabled` integration "
    "event.",
    responses=problem_responses(404, 409),
)
async def disable_user(admin: AdminUser, session: WriteSessionDep, user_id: UserId) -> Response:
    return user_response(await users.disable_user(session, user_id=user_id, actor=admin))


@router.post(
    "/users/{user_id}/enable",
    response_model=UserRead,
    operation_id="admin_enable_user",
    summary="Enable a disabled user again",
    description="Only a `disabled` user (409 otherwise). The user is `active` again, except an "
    "agent who was never approved, who goes back to `pending` (the agent applications). Tokens "
    "issued before the disable that have not expired work again; a `user.enabled` integration "
    "event is written.",
    responses=problem_responses(404, 409),
)
async def enable_user(admin: AdminUser, session: WriteSessionDep, user_id: UserId) -> Response:
    return user_response(await users.enable_user(session, user_id=user_id, actor=admin))


@router.get(
    "/users/{user_id}",
    response_model=UserRead,
    operation_id="admin_get_user",
    summary="One user",
    description="Any user, admins included, in any status (`disabled` too); 404 for an unknown id. "
    "The body never holds a password or its hash.",
    responses=problem_responses(404),
)
async def get_user(admin: AdminUser, session: ReadSessionDep, user_id: UserId) -> Response:
    return user_response(await users.get_user(session, user_id=user_id))


@router.post(
    "/users/{user_id}/unlock",
    response_model=UserRead,
    operation_id="admin_unlock_user",
    summary="Clear a user's failed logins: their lockout and slowdown end at once",
    description="Deletes this username's failed-login counts: the lockout (429) per username and "
    "address, and the slowdown after many failures from any addresses. The count of an address's "
    "failures across all usernames is kept; the account's status, password and tokens do not "
    "change.",
    responses=problem_responses(404, 409),
)
async def unlock_user(admin: AdminUser, session: WriteSessionDep, user_id: UserId) -> Response:
    return user_response(await users.unlock(session, user_id=user_id))


@router.post(
    "/users/{user_id}/reset-password",
    response_model=PasswordReset,
    operation_id="admin_reset_password",
    summary="Give a user a one-time temporary password; their tokens stop working",
    description="The answer shows the temporary password once. With it the user logs in and "
    "must choose a new password (POST /api/v1/auth/password) before anything else: every "
    "other endpoint answers 403 until then. Their failed logins are cleared too. A replay "
    "with the same Idempotency-Key answers the same temporary password.",
    responses=problem_responses(404, 409),
)
async def reset_password(
    admin: AdminUser, session: WriteSessionDep, hasher: HasherDep, user_id: UserId
) -> Response:
    user, temporary = await users.reset_password(session, user_id=user_id, hasher=hasher)
    body = PasswordReset(user=UserRead.model_validate(user), temporary_password=temporary)
    return model_response(body, headers={"Cache-Control": "no-store"})


@router.get(
    "/agents/{agent_id}/loan-requests",
    response_model=Page[LoanRead],
    operation_id="admin_agent_loan_requests",
    summary="Loans one agent has requested, newest first",
    description="Loans whose `agent_id` is this agent (who requested them), in whatever status "
    "they have reached since; `status` narrows it (one or several, separated by commas). 404 "
    "when the id is not an agent's. Paged with `limit` and `cursor`; `format=csv` downloads "
    "every match.",
    **csv_route(problem_responses(404)),
)
async def agent_loan_requests(
    request: Request,
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    agent_id: UserId,
    status: Annotated[StatusText, Query()] = None,
) -> Response:
    requested = partial(loans.agent_requests, agent_id=agent_id, statuses=statuses_of(status))
    if wants_csv(request):
        name = f"agent-{agent_id}-loan-requests"
        return await csv_download(request, session, name, LOANS, requested)
    found = await requested(session, page=page)
    return loan_page(found, page)


@router.get(
    "/loans",
    response_model=Page[LoanRead],
    operation_id="admin_list_loans",
    summary="All loans, filtered, newest first",
    description="Filters combine with AND: `status` (one, or several separated by commas), "
    "`loan_type`, `customer_id`, `q` (the customer's username or e-mail starts with it), "
    "`created_from`/`created_to` and `updated_from`/`updated_to` (a date is the whole UTC day), "
    "`dpd_min`/`dpd_max` and `bucket`. Paged with `limit` and `cursor` (a cursor only works with "
    "the filters it came with); `format=csv` downloads every match.",
    **csv_route(),
)
async def list_loans(
    request: Request, admin: AdminUser, session: ReadSessionDep, query: LoanListDep
) -> Response:
    if wants_csv(request):
        pages = partial(loans.list_loans, filters=query.filters)
        return await csv_download(request, session, "loans", LOANS, pages)
    found = await loans.list_loans(session, filters=query.filters, page=query.page)
    return loan_page(found, query.page)


@router.get(
    "/loans/{loan_id}",
    response_model=LoanRead,
    operation_id="admin_get_loan",
    summary="One loan",
    description="The `ETag` header is the loan's `version`: send it as `If-Match` with a change to "
    "get a 412 if the loan changed meanwhile. Servicing fields are null until disbursement; `dpd`, "
    "`arrears` and `bucket` are as of the loan's last change or close of business (the statement "
    "gives any date).",
    responses=problem_responses(404),
)
async def get_loan(loan_id: LoanId, admin: AdminUser, session: ReadSessionDep) -> Response:
    return loan_response(await loans.get_loan(session, loan_id))


@router.get(
    "/loans/{loan_id}/history",
    response_model=LoanHistory,
    operation_id="admin_loan_history",
    summary="Every change of a loan, oldest first",
    description="The whole history in one response, not paged. Each event gives the loan's "
    "`version` after it, the `action`, who acted (`actor_id`, `actor_username`, `actor_role`), "
    "`changes` (each changed field's `from` and `to`) and a `snapshot`; `reason` is set on "
    "rejections, reversals and write-offs, `restored_version` on rollbacks.",
    responses=problem_responses(404),
)
async def loan_history(loan_id: LoanId, admin: AdminUser, session: ReadSessionDep) -> LoanHistory:
    return history_response(await loans.history(session, loan_id))


@router.post(
    "/loans/{loan_id}/approve",
    response_model=LoanRead,
    operation_id="admin_approve_loan",
    summary="Approve a requested loan (final)",
    description="Only a `requested` loan (409 otherwise); its terms and rate do not change, and "
    "disbursement is its only next step. Send the loan's `ETag` as `If-Match` to get a 412 instead "
    "if it changed since you read it. Writes an `approved` event to the loan's history and a "
    "`loan.approved` integration event.",
    responses=problem_responses(404, 409, 412),
)
async def approve_loan(
    loan_id: LoanId,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await loans.decide(
        session,
        loan_id=loan_id,
        actor=admin,
        action=Action.approve,
        expected_version=expected_version,
    )
    return loan_response(loan)


@router.post(
    "/loans/{loan_id}/reject",
    response_model=LoanRead,
    operation_id="admin_reject_loan",
    summary="Reject a new or requested loan",
    description="Allowed while the loan is `new` or `requested` (409 otherwise). The optional "
    "`reason` is kept as the loan's `rejection_reason` and on the `rejected` history event; an "
    "agent's edit returns the loan to `new` and clears it. `If-Match` with the loan's `ETag` gives "
    "a 412 on a stale version; a `loan.rejected` integration event is written.",
    responses=problem_responses(404, 409, 412),
)
async def reject_loan(
    loan_id: LoanId,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
    data: LoanReject | None = None,
) -> Response:
    loan = await loans.decide(
        session,
        loan_id=loan_id,
        actor=admin,
        action=Action.reject,
        expected_version=expected_version,
        reason=data.reason if data else None,
    )
    return loan_response(loan)


@router.put(
    "/loan-products/{loan_type}",
    response_model=LoanProductRead,
    operation_id="admin_update_loan_product",
    summary="Set a product's rate and bounds; applies to loans priced afterwards",
    description="`late_fee` and `grace_days` stay as they are when left out; a `loan_type` in the "
    "body must equal the path's, and no minimum may exceed its maximum (422). Loans already priced "
    "keep their rate, and disbursed loans their fee and grace days; the new bounds apply to "
    "applications and edits from now on.",
)
async def update_product(
    loan_type: Annotated[LoanType, Path(description="The product to change")],
    data: LoanProductUpdate,
    admin: AdminUser,
    session: WriteSessionDep,
) -> LoanProductRead:
    product = await loans.update_product(session, loan_type=loan_type, data=data)
    return LoanProductRead.model_validate(product)


@router.post(
    "/loans/{loan_id}/disburse",
    response_model=LoanRead,
    operation_id="admin_disburse_loan",
    summary="Pay out an approved loan: it becomes active and its installments fall due",
    description="Installment k is due k months after `disbursed_on`, or, when `first_due_on` "
    "is given, k - 1 months after it (a day missing in a month is its last day). The loan "
    "keeps its product's late fee and grace days as they are now. Back-dated disbursement "
    "(a book being migrated) is allowed.",
    responses=problem_responses(
        404,
        409,
        412,
        422,
        notes={
            409: "The loan is not approved",
            422: "disbursed_on after today or before 2000-01-01; first_due_on not after "
            "disbursed_on or more than two months after it",
        },
    )
    | LOAN_EXAMPLE,
)
async def disburse_loan(
    loan_id: LoanId,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
    data: Disbursement | None = None,
) -> Response:
    loan = await servicing.disburse(
        session,
        loan_id=loan_id,
        actor=admin,
        data=data or Disbursement(),
        expected_version=expected_version,
    )
    return loan_response(loan)


@router.post("/loans/{loan_id}/repayments", operation_id="admin_repay_loan", **REPAY)
async def repay_loan(
    loan_id: LoanId,
    data: RepaymentCreate,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    repayment = await servicing.repay(
        session, loan_id=loan_id, actor=admin, data=data, expected_version=expected_version
    )
    where = f"{V1}/admin/loans/{loan_id}/repayments/{repayment.id}"
    return repayment_response(repayment, 201, location=where)


@router.get(
    "/loans/{loan_id}/repayments/{repayment_id}",
    operation_id="admin_get_repayment",
    **REPAYMENT,
)
async def get_repayment(
    loan_id: LoanId, repayment_id: RepaymentId, admin: AdminUser, session: ReadSessionDep
) -> Response:
    found = await servicing.get_repayment(session, loan_id=loan_id, repayment_id=repayment_id)
    return repayment_response(found)


@router.post(
    "/loans/{loan_id}/repayments/{repayment_id}/reverse",
    response_model=RepaymentRead,
    operation_id="admin_reverse_repayment",
    summary="Reverse a repayment (a bounced payment, a posting error); nothing is deleted",
    description="The loan is replayed without it; a closed loan that no longer closes becomes "
    "active again (events `repayment_reversed`, then `reopened`). The repayment keeps the "
    "allocation it had.",
    responses=problem_responses(
        404,
        409,
        412,
        notes={
            404: "No such loan, or no such repayment of it",
            409: "Already reversed, or the loan is written off",
        },
    ),
)
async def reverse_repayment(
    loan_id: LoanId,
    repayment_id: RepaymentId,
    data: Reason,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    repayment = await servicing.reverse(
        session,
        loan_id=loan_id,
        repayment_id=repayment_id,
        actor=admin,
        reason=data.reason,
        expected_version=expected_version,
    )
    return repayment_response(repayment)


@router.post(
    "/loans/{loan_id}/write-off",
    response_model=LoanRead,
    operation_id="admin_write_off_loan",
    summary="Write an active loan off, keeping what was outstanding",
    description="Sets `written_off_on` to today (UTC) and keeps the principal, interest and "
    "penalty outstanding then as `written_off_principal`, `written_off_interest` and "
    "`written_off_penalty`; the `reason` goes on the `written_off` history event. The loan then "
    "takes no repayment or reversal (409). `If-Match` with the loan's `ETag` gives a 412 on a "
    "stale version; a `loan.written_off` integration event is written.",
    responses=problem_responses(404, 409, 412, notes={409: "The loan is not active"}),
)
async def write_off_loan(
    loan_id: LoanId,
    data: Reason,
    admin: AdminUser,
    session: WriteSessionDep,
    expected_version: IfMatch,
) -> Response:
    loan = await servicing.write_off(
        session,
        loan_id=loan_id,
        actor=admin,
        reason=data.reason,
        expected_version=expected_version,
    )
    return loan_response(loan)


@router.get("/loans/{loan_id}/payoff", operation_id="admin_loan_payoff", **PAYOFF)
async def loan_payoff(
    loan_id: LoanId, admin: AdminUser, session: ReadSessionDep, on: OnDate = None
) -> PayoffRead:
    return payoff_response(await servicing.payoff(session, loan_id=loan_id, on=on))


@router.get("/loans/{loan_id}/statement", operation_id="admin_loan_statement", **STATEMENT)
async def loan_statement(
    loan_id: LoanId, admin: AdminUser, session: ReadSessionDep, on: OnDate = None
) -> Response:
    return statement_response(await servicing.statement(session, loan_id=loan_id, on=on))


@router.get(
    "/repayments",
    response_model=Page[RepaymentRead],
    operation_id="admin_list_repayments",
    summary="Repayments across loans, newest first, for reconciliation",
    description="Filters combine with AND: `loan_id`, `paid_from`/`paid_to` (on `paid_on`, "
    "inclusive) and `reversed`. Ordered by when each was recorded, not by `paid_on`; paged with "
    "`limit` and `cursor`, and `format=csv` downloads every match. Each shows its allocation in "
    "the loan's current replay (a reversed one: the allocation it had).",
    **csv_route(
        problem_responses(notes={422: "A filter is invalid, or paid_to is before paid_from"})
    ),
)
async def list_repayments(
    request: Request,
    admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    loan_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Of this loan")] = None,
    paid_from: Annotated[IsoDate | None, Query(description="paid_on on or after")] = None,
    paid_to: Annotated[IsoDate | None, Query(description="paid_on on or before")] = None,
    reversed: Annotated[
        bool | None, Query(description="`true`: only reversed ones; `false`: only standing ones")
    ] = None,
) -> Response:
    if paid_from and paid_to and paid_to < paid_from:
        raise Unprocessable.field(
            ("query", "paid_to"), "must not be before paid_from", "value_error"
        )
    filters = servicing.RepaymentFilters(
        loan_id=loan_id, paid_from=paid_from, paid_to=paid_to, reversed=reversed
    )
    if wants_csv(request):
        pages = partial(servicing.list_repayments, filters=filters)
        return await csv_download(request, session, "repayments", REPAYMENTS, pages)
    return repayment_page(
        await servicing.list_repayments(session, filters=filters, page=page), page
    )
