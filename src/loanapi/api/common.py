"""Response bodies, built from what the services return (their records)."""

from collections.abc import Sequence

from fastapi import Response
from pydantic import BaseModel, TypeAdapter

from loanapi.loans.ledger import Payoff
from loanapi.loans.records import LoanEventRecord, LoanRecord, RepaymentRecord
from loanapi.loans.schemas import LoanHistory, LoanRead, PayoffRead, StatementRead
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


def loan_response(loan: LoanRecord, status_code: int = 200) -> Response:
    """A Loan body, with its version as the ETag for a later If-Match."""
    headers = {"ETag": f'"{loan.version}"'}
    return Response(LOAN_JSON.dump_json(loan), status_code, headers, "application/json")


def loan_page(loans: Sequence[LoanRecord], page: PageParams) -> Response:
    """A page of loans (its route's response_model, Page[LoanRead], documents it)."""
    return Response(page_json(LOANS_JSON, loans, page), media_type="application/json")


def user_response(user: UserRecord) -> Response:
    return model_response(UserRead.model_validate(user))


def user_page(users: Sequence[UserRecord], page: PageParams) -> Response:
    return model_response(make_page(users, page, UserRead))


def history_response(events: Sequence[LoanEventRecord]) -> LoanHistory:
    """The whole history of a loan, oldest first, in one response."""
    return LoanHistory.model_validate({"items": events}, from_attributes=True)


REPAYMENT_JSON = TypeAdapter(RepaymentRecord)
REPAYMENTS_JSON = TypeAdapter(list[RepaymentRecord])


def repayment_response(repayment: RepaymentRecord, status_code: int = 200) -> Response:
    """A Repayment body (RepaymentRead documents it)."""
    body = REPAYMENT_JSON.dump_json(repayment)
    return Response(body, status_code, media_type="application/json")


def repayment_page(repayments: Sequence[RepaymentRecord], page: PageParams) -> Response:
    return Response(page_json(REPAYMENTS_JSON, repayments, page), media_type="application/json")


def payoff_response(quote: Payoff) -> PayoffRead:
    return PayoffRead.model_validate(quote, from_attributes=True)


_LOAN_FIELDS = tuple(LoanRead.model_fields)


def statement_response(statement: Statement) -> Response:
    """The loan as of the statement's date, its installments and repayments."""
    body = {name: getattr(statement.loan, name) for name in _LOAN_FIELDS}
    body |= {
        "as_of": statement.as_of,
        "installments": statement.installments,
        "repayments": statement.repayments,
    }
    return model_response(StatementRead.model_validate(body, from_attributes=True))
