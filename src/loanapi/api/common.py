"""Response bodies, built from what the services return (their records)."""

from collections.abc import Sequence
from datetime import date

from fastapi import Response
from pydantic import BaseModel, TypeAdapter

from loanapi.loans.ledger import InstallmentState, Payoff
from loanapi.loans.records import LoanEventRecord, LoanRecord, RepaymentRecord
from loanapi.loans.schemas import LoanHistory, PayoffRead
from loanapi.loans.servicing import Statement
from loanapi.pagination import PageParams, make_page, page_json
from loanapi.users.records import UserRecord
from loanapi.users.schemas import UserRead


def model_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The model as JSON, serialized once: FastAPI would validate a returned model again
    against the route's response_model (which documents it)."""
    return Response(model.model_dump_json(), status_code, headers, "application/json")


# A loan record serializes as the LoanRead body (tests/api/test_loan_lists.py checks they agree).
LOAN_JSON = TypeAdapter(LoanRecord)
LOANS_JSON = TypeAdapter(list[LoanRecord])


def loan_response(
    loan: LoanRecord, status_code: int = 200, *, location: str | None = None
) -> Response:
    """A Loan body, with its version as the ETag for a later If-Match (and where a created
    loan is read: `location`)."""
    headers = {"ETag": f'"{loan.version}"'}
    if location is not None:
        headers["Location"] = location
    return Response(LOAN_JSON.dump_json(loan), status_code, headers, "application/json")


def loan_page(loans: Sequence[LoanRecord], page: PageParams) -> Response:
    """A page of loans (its route's response_model, Page[LoanRead], documents it)."""
    return Response(page_json(LOANS_JSON, loans, page), media_type="application/json")


def user_response(
    user: UserRecord, status_code: int = 200, *, location: str | None = None
) -> Response:
    headers = {"Location": location} if location is not None else None
    return model_response(UserRead.model_validate(user), status_code, headers)


def user_page(users: Sequence[UserRecord], page: PageParams) -> Response:
    return model_response(make_page(users, page, UserRead))


def history_response(events: Sequence[LoanEventRecord]) -> LoanHistory:
    """The whole history of a loan, oldest first, in one response."""
    return LoanHistory.model_validate({"items": events}, from_attributes=True)


REPAYMENT_JSON = TypeAdapter(RepaymentRecord)
REPAYMENTS_JSON = TypeAdapter(list[RepaymentRecord])


def repayment_response(
    repayment: RepaymentRecord, status_code: int = 200, *, location: str | None = None
) -> Response:
    """A Repayment body (RepaymentRead documents it)."""
    body = REPAYMENT_JSON.dump_json(repayment)
    headers = {"Location": location} if location is not None else None
    return Response(body, status_code, headers, media_type="application/json")


def repayment_page(repayments: Sequence[RepaymentRecord], page: PageParams) -> Response:
    return Response(page_json(REPAYMENTS_JSON, repayments, page), media_type="application/json")


def payoff_response(quote: Payoff) -> PayoffRead:
    return PayoffRead.model_validate(quote, from_attributes=True)


def installments_json(states: Sequence[InstallmentState]) -> bytes:
    """A statement's installments as JSON (InstallmentRead documents them).

    Written out directly: every value is an integer, a date, a money amount or a status word
    (nothing to escape), and a 360-month loan has 3,600 of them, which pydantic serialized
    slower than the replay computed them. tests/api/test_servicing.py checks the body against
    the documented model."""
    # The ledger's amounts all have exactly two places (cents in, sums and differences of
    # cents out), so str() is their "0.00" form, and three times faster than formatting.
    rows = [
        f'{{"installment":{k},"due_on":"{due}","principal":"{p!s}","interest":"{i!s}",'
        f'"penalty":"{fee!s}","paid_principal":"{pp!s}","paid_interest":"{pi!s}",'
        f'"paid_penalty":"{pf!s}","waived_interest":"{w!s}","status":"{status.value}"}}'
        for k, due, p, i, fee, pp, pi, pf, w, status in states
    ]
    return ("[" + ",".join(rows) + "]").encode()


DATE_JSON = TypeAdapter(date)


def statement_response(statement: Statement) -> Response:
    """The loan as of the statement's date, its installments and repayments: the StatementRead
    body, put together from the parts' own serializers (a 360-month loan's statement validated
    through the model cost more than the replay that computed it)."""
    body = b"".join(
        (
            LOAN_JSON.dump_json(statement.loan)[:-1],
            b',"as_of":',
            DATE_JSON.dump_json(statement.as_of),
            b',"installments":',
            installments_json(statement.installments),
            b',"repayments":',
            REPAYMENTS_JSON.dump_json(list(statement.repayments)),
            b"}",
        )
    )
    return Response(body, media_type="application/json")
