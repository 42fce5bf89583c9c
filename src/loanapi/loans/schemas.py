from datetime import datetime
from decimal import Decimal
from operator import methodcaller
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from loanapi.loans.models import EventAction, LoanStatus, LoanType
from loanapi.users.models import Role
from loanapi.users.schemas import PLAIN_TEXT

# Out: a decimal string with two places. In: a JSON number or string, at most two places.
# A C-level callable: lists and schedules format thousands of amounts per response.
MoneyOut = Annotated[
    Decimal,
    PlainSerializer(methodcaller("__format__", ".2f"), return_type=str, when_used="json"),
]
MoneyIn = Annotated[
    Decimal,
    Field(gt=0, max_digits=14, decimal_places=2, allow_inf_nan=False, examples=["10000.00"]),
]
RateIn = Annotated[
    Decimal,
    Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False, examples=["6.90"]),
]
Tenure = Annotated[int, Field(ge=1, le=1200, strict=False, examples=[12])]


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoanCreate(InputModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"loan_type": "home_loan", "principal": "10000.00", "tenure_months": 12}]
        },
    )

    loan_type: LoanType
    principal: MoneyIn
    tenure_months: Tenure


class LoanUpdate(InputModel):
    """Only the fields sent are changed; sending null for one is an error."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"principal": "12000", "tenure_months": 24}]},
    )

    principal: MoneyIn | None = None
    tenure_months: Tenure | None = None
    loan_type: LoanType | None = None

    @model_validator(mode="after")
    def no_nulls(self) -> "LoanUpdate":
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may be left out but not null")
        return self


class LoanRollback(InputModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 1}]})

    version: Annotated[int, Field(ge=1, le=2**31 - 1)]


class LoanReject(InputModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "Income not verified"}]}
    )

    reason: Annotated[str | None, Field(max_length=500, pattern=PLAIN_TEXT)] = None


class LoanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    agent_id: int | None
    loan_type: LoanType
    principal: MoneyOut
    annual_rate: MoneyOut
    tenure_months: int
    emi: MoneyOut
    total_payable: MoneyOut
    total_interest: MoneyOut
    status: LoanStatus
    version: int
    created_at: datetime
    updated_at: datetime


class LoanEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: EventAction
    actor_id: int
    actor_role: Role
    at: datetime
    changes: dict[str, dict[str, Any]] = Field(
        description='Each changed field: {"from": old, "to": new}'
    )
    snapshot: dict[str, Any] = Field(description="The loan's terms and status after the event")
    reason: str | None = Field(default=None, description="Given with a rejection")


class LoanHistory(BaseModel):
    items: list[LoanEventRead]


class ScheduleRow(BaseModel):
    installment: int
    payment: MoneyOut
    principal: MoneyOut
    interest: MoneyOut
    balance: MoneyOut


class ScheduleRead(BaseModel):
    emi: MoneyOut
    total_payable: MoneyOut
    total_interest: MoneyOut
    rows: list[ScheduleRow]


class LoanProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    loan_type: LoanType
    annual_rate: MoneyOut
    min_principal: MoneyOut
    max_principal: MoneyOut
    min_tenure_months: int
    max_tenure_months: int


class LoanProductUpdate(InputModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "annual_rate": "6.50",
                    "min_principal": "1000.00",
                    "max_principal": "10000000.00",
                    "min_tenure_months": 1,
                    "max_tenure_months": 360,
                }
            ]
        },
    )

    loan_type: LoanType | None = None
    annual_rate: RateIn
    min_principal: MoneyIn
    max_principal: MoneyIn
    min_tenure_months: Tenure
    max_tenure_months: Tenure

    @model_validator(mode="after")
    def ordered_bounds(self) -> "LoanProductUpdate":
        if self.min_principal > self.max_principal:
            raise ValueError("min_principal must not exceed max_principal")
        if self.min_tenure_months > self.max_tenure_months:
            raise ValueError("min_tenure_months must not exceed max_tenure_months")
        return self
