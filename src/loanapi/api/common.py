from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from loanapi.loans.models import LoanEvent
from loanapi.loans.schemas import LoanHistory, LoanRead
from loanapi.users.models import User
from loanapi.users.schemas import UserRead


def model_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The model as JSON, serialized once: FastAPI would validate a returned model again
    against the route's response_model (which documents it)."""
    return Response(model.model_dump_json(), status_code, headers, "application/json")


def loan_response(loan: Mapping[str, Any], status_code: int = 200) -> Response:
    """A Loan body from a loans row, with its version as the ETag for a later If-Match."""
    read = LoanRead.model_validate(loan)
    return model_response(read, status_code, {"ETag": f'"{read.version}"'})


def user_response(user: User) -> Response:
    return model_response(UserRead.model_validate(user))


def history_response(events: Sequence[LoanEvent]) -> LoanHistory:
    """The whole history of a loan, oldest first, in one response."""
    return LoanHistory.model_validate({"items": events}, from_attributes=True)
