from collections.abc import Sequence

from fastapi import Response

from loanapi.loans.models import Loan, LoanEvent
from loanapi.loans.schemas import LoanHistory, LoanRead


def loan_response(loan: Loan, response: Response) -> LoanRead:
    """The Loan body, with its version as the ETag for a later If-Match."""
    read = LoanRead.model_validate(loan)
    response.headers["ETag"] = f'"{read.version}"'
    return read


def history_response(events: Sequence[LoanEvent]) -> LoanHistory:
    """The whole history of a loan, oldest first, in one response."""
    return LoanHistory.model_validate({"items": events}, from_attributes=True)
