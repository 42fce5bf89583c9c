from fastapi import Response

from loanapi.loans.models import Loan
from loanapi.loans.schemas import LoanRead


def loan_response(loan: Loan, response: Response) -> LoanRead:
    """The Loan body, with its version as the ETag for a later If-Match."""
    read = LoanRead.model_validate(loan)
    response.headers["ETag"] = f'"{read.version}"'
    return read
