"""Request bodies as the original read them, and the response shapes documented in /docs."""

from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

from loanapi.api.legacy.fields import LOAN_TYPE_WORDS
from loanapi.loans.models import LoanType
from loanapi.loans.schemas import LoanUpdate, MoneyIn, Tenure
from loanapi.users.schemas import UserCreate

TYPE_CHOICES = ", ".join(LOAN_TYPE_WORDS.values())


def _loan_type(value: object) -> object:
    if isinstance(value, str):
        for loan_type, word in LOAN_TYPE_WORDS.items():
            if value.lower() in (word.lower(), loan_type.value):
                return loan_type
    raise PydanticCustomError("loan_type", f"must be one of {TYPE_CHOICES}")


LegacyLoanType = Annotated[
    LoanType,
    BeforeValidator(_loan_type),
    WithJsonSchema({"type": "string", "enum": list(LOAN_TYPE_WORDS.values())}),
]


class LegacyBody(BaseModel):
    # The original read only the keys it knew; anything else in a body is ignored.
    model_config = ConfigDict(extra="ignore")


class LegacyUserCreate(UserCreate):
    """The v1 rules for an account (a clear 422), but unknown keys ignored like the original."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "username": "Customer1",
                    "password": "Customer*1",
                    "email": "Customer1@gmail.com",
                    "phone": "Customer1",
                }
            ]
        },
    )


class LegacyLoanCreate(LegacyBody):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"loan_amount": 10000, "loan_type": "Home_loan", "duration": 12}]
        },
    )

    loan_amount: MoneyIn
    loan_type: LegacyLoanType
    duration: Tenure = Field(description="Months")


class LegacyLoanEdit(LegacyBody):
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"loan_amount": 12000, "duration": 24}]}
    )

    loan_amount: MoneyIn | None = None
    loan_type: LegacyLoanType | None = None
    duration: Tenure | None = None

    def update(self) -> LoanUpdate:
        sent = {
            "principal": self.loan_amount,
            "loan_type": self.loan_type,
            "tenure_months": self.duration,
        }
        return LoanUpdate(**{name: value for name, value in sent.items() if value is not None})


# --- documented responses ----------------------------------------------------------------------


class Message(BaseModel):
    Message: str


class Refusal(BaseModel):
    """A 401: `message` for a missing or bad token, `Message` for a role refused (the original)."""

    message: str | None = None
    Message: str | None = None


class LegacyToken(BaseModel):
    token: str


def _object(name: str, keys: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        f"field_{n}": (kind, Field(alias=key)) for n, (key, kind) in enumerate(keys.items())
    }
    return create_model(name, **fields)


LegacyLoan = _object(
    "LegacyLoan",
    {
        "Agent Id": int,
        "Created On": str,
        "Customer Id": int,
        "Duration": int,
        "EMI": float,
        "Loan Amount": float,
        "Loan Type": str,
        "Rate of interest": float,
        "Status": str,
        "Total Payable amount": float,
        "Updated On": str,
        "id": int,
    },
)
LegacyUser = _object(
    "LegacyUser",
    {
        "Created On": str,
        "email": str,
        "id": int,
        "phone": str | None,
        "public_id": str,
        "username": str,
    },
)
LegacyLoanData = _object(
    "LegacyLoanData",
    {
        "Created on ": str,
        "Duration": int,
        "EMI": float,
        "Loan Type": str,
        "Loan amount": float,
        "Rate of Interest": float,
        "Total amount to be paid": float,
    },
)
LegacyDatedLoan = _object(
    "LegacyDatedLoan",
    {
        "Created At": str,
        "Duration": int,
        "EMI": float,
        "Loan Type": str,
        "Loan amount": float,
        "Rate of Interest": float,
        "State": int,
        "Total Payable amount": float,
        "id": int,
    },
)
LegacyHistoryEntry = _object(
    "LegacyHistoryEntry",
    {
        "Created At": str,
        "Duration": int,
        "Loan Type": str,
        "Loan amount": float,
        "Origina Loan ID": int,
        "State At this point": int,
        "id": int,
    },
)


class LoanWithData(BaseModel):
    Message: str
    data: LegacyLoanData  # type: ignore[valid-type]


def list_of(key: str, model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """Documents `{key: [model]}`, or the Message the original sent for an empty list."""
    name = "Legacy" + "".join(part.title() for part in key.replace("_", " ").split())
    listed = create_model(name, **{key: (list[model], ...)})  # type: ignore[call-overload,valid-type]
    return {200: {"model": listed | Message, "description": "The list, or a Message when empty"}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documents the original's `{"Message": ...}` error bodies."""
    return {
        status: {
            "model": Refusal if status == 401 else Message,
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }
