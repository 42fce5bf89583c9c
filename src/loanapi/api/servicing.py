"""What the servicing routes of every role share: their documentation and query types.

The examples are SERVICING.md's worked example, to the cent:

P 12000.00 personal_loan at 10.75 % over 12 months (emi 1059.18), disbursed 2025-01-15, first
due 2025-02-15, late fee 25.00 after 5 days of grace; repaid 1059.18 on 2025-02-15 and 1500.00
on 2025-04-02 (after installment 2 was charged its fee on 2025-03-21).
"""

from typing import Annotated, Any

from fastapi import Query

from loanapi.errors import problem_responses
from loanapi.loans.schemas import (
    REPAYMENT_EXAMPLE,
    IsoDate,
    PayoffRead,
    RepaymentRead,
    StatementRead,
)

LOAN = {
    "id": 42,
    "customer_id": 7,
    "agent_id": 3,
    "loan_type": "personal_loan",
    "principal": "12000.00",
    "annual_rate": "10.75",
    "tenure_months": 12,
    "emi": "1059.18",
    "total_payable": "12710.15",
    "total_interest": "710.15",
    "status": "active",
    "version": 6,
    "created_at": "2025-01-02T10:00:00Z",
    "updated_at": "2025-04-02T09:30:00Z",
    "disbursed_on": "2025-01-15",
    "first_due_on": "2025-02-15",
    "closed_on": None,
    "late_fee": "25.00",
    "grace_days": 5,
    "principal_outstanding": "9762.66",
    "interest_outstanding": "413.31",
    "penalty_outstanding": "0.00",
    "arrears": "0.00",
    "dpd": 0,
    "bucket": "current",
    "cob_date": None,
    "next_due_on": "2025-04-15",
    "next_due_amount": "643.36",
    "written_off_on": None,
    "written_off_principal": None,
    "written_off_interest": None,
    "written_off_penalty": None,
}

_REPAYMENTS = [
    REPAYMENT_EXAMPLE,
    {
        "id": 2,
        "loan_id": 42,
        "amount": "1500.00",
        "paid_on": "2025-04-02",
        "reference": "BANK-0002",
        "principal": "1285.66",
        "interest": "189.34",
        "penalty": "25.00",
        "reversed": False,
        "reversed_at": None,
        "reason": None,
        "actor_id": 3,
        "created_at": "2025-04-02T09:30:00Z",
    },
]


def _installment(
    k: int, due: str, principal: str, interest: str, paid: tuple[str, str, str], status: str
) -> dict[str, Any]:
    return {
        "installment": k,
        "due_on": due,
        "principal": principal,
        "interest": interest,
        "penalty": paid[2] if k == 2 else "0.00",
        "paid_principal": paid[0],
        "paid_interest": paid[1],
        "paid_penalty": paid[2],
        "waived_interest": "0.00",
        "status": status,
    }


STATEMENT_BODY = {
    **LOAN,
    "as_of": "2025-04-10",
    "installments": [
        _installment(1, "2025-02-15", "951.68", "107.50", ("951.68", "107.50", "0.00"), "paid"),
        _installment(2, "2025-03-15", "960.21", "98.97", ("960.21", "98.97", "25.00"), "paid"),
        _installment(3, "2025-04-15", "968.81", "90.37", ("325.45", "90.37", "0.00"), "partial"),
        "... installments 4 to 12 ...",
    ],
    "repayments": _REPAYMENTS,
}


def _example(status: int, value: Any, description: str) -> dict[int | str, Any]:
    return {
        status: {"description": description, "content": {"application/json": {"example": value}}}
    }


OnDate = Annotated[
    IsoDate | None,
    Query(
        description="The date to compute it for, YYYY-MM-DD: no later than today (UTC), not "
        "before the disbursement. Default: today.",
        examples=["2025-03-01"],
    ),
]

_NOT_SERVICED = "No such loan (a customer's: not one of theirs)"
_NOT_DISBURSED = "The loan has not been disbursed"
_BAD_DATE = "`on` is after today or before the disbursement"

REPAYMENT: dict[str, Any] = {
    "response_model": RepaymentRead,
    "summary": "One repayment of a loan, with its allocation",
    "description": "`principal`, `interest` and `penalty` are its allocation in the loan's "
    "current replay: a back-dated repayment or a reversal can move them. A reversed repayment is "
    "still returned, with `reversed_at` and `reason`, and keeps the allocation it had; 404 when "
    "the loan has no such repayment (one of another loan included).",
    "responses": problem_responses(404),
}
PAYOFF: dict[str, Any] = {
    "response_model": PayoffRead,
    "summary": "What pays the loan off on a date",
    "description": "Every unpaid fee and principal, the unpaid interest of installments due by "
    "`on` and the running installment's interest pro rata to the days elapsed (half-up). "
    "Only repayments dated on or before `on` count. Paying exactly `total` on `on` closes "
    "the loan; a loan closed by then quotes zeros.",
    "responses": problem_responses(
        404, 409, 422, notes={404: _NOT_SERVICED, 409: _NOT_DISBURSED, 422: _BAD_DATE}
    ),
}
STATEMENT: dict[str, Any] = {
    "response_model": StatementRead,
    "summary": "The loan as of a date: installments, fees, repayments and their allocation",
    "description": "Replays the repayments dated on or before `on` over the installments and "
    "late fees. The loan's fields are as of `on` (a loan closed later shows `active`). Each "
    "installment's status is the first that applies of paid, overdue, due, partial, future; "
    "repayments are in replay order (paid_on, then creation), reversed ones included and "
    "marked.",
    "responses": problem_responses(
        404, 409, 422, notes={404: _NOT_SERVICED, 409: _NOT_DISBURSED, 422: _BAD_DATE}
    )
    | _example(200, STATEMENT_BODY, "The statement on 2025-04-10"),
}
REPAY: dict[str, Any] = {
    "status_code": 201,
    "response_model": RepaymentRead,
    "summary": "Record a repayment",
    "description": "Allocated by replay: the oldest installment not fully paid first, within it "
    "penalty, interest, principal. An amount equal to the payoff on `paid_on` closes the loan "
    "(the rest of the interest is waived). A back-dated repayment is replayed in its place.",
    "responses": problem_responses(
        404,
        409,
        412,
        422,
        notes={
            404: "No such loan",
            409: "The loan is not active (closed and written-off loans take no repayment), or "
            "this back-dated repayment would make a later one exceed the payoff on its date",
            422: "amount above the payoff on paid_on (the detail states it), or paid_on after "
            "today or before the disbursement",
        },
    ),
}


LOAN_EXAMPLE = _example(200, LOAN, "The loan after the change")
