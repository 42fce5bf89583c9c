import re
from datetime import date, datetime
from decimal import Decimal
from operator import methodcaller
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from loanapi.loans.ledger import MAX_GRACE_DAYS, Bucket, InstallmentStatus
from loanapi.loans.models import EventAction, LoanStatus, LoanType
from loanapi.orm import MAX_ID
from loanapi.users.models import Role
from loanapi.users.schemas import PLAIN_TEXT

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    """Only YYYY-MM-DD (or a date): pydantic would also read a number, or a numeric string, as
    a Unix time (`0.0` as 1970-01-01)."""
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD")
    if isinstance(value, int | float):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]

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


class AgentLoanCreate(LoanCreate):
    """A walk-in customer's application, opened by an agent."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "loan_type": "car_loan",
                    "principal": "20000.00",
                    "tenure_months": 24,
                }
            ]
        },
    )

    customer_id: Annotated[int, Field(ge=1, le=MAX_ID, description="The customer's user id")]


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
                # reported on the field itself (errors.py reads `field`)
                raise PydanticCustomError(
                    "null_not_allowed",
                    "may be left out, but not null",
                    {"field": name},
                )
        return self


class LoanRollback(InputModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 1}]})

    version: Annotated[int, Field(ge=1, le=2**31 - 1)]


class LoanReject(InputModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "Income not verified"}]}
    )

    reason: Annotated[str | None, Field(max_length=500, pattern=PLAIN_TEXT)] = None


# A new application: 10,000.00 at home_loan's 6.90% over 12 months (README's walk-through).
NEW_LOAN: dict[str, Any] = {
    "id": 42,
    "customer_id": 7,
    "agent_id": None,
    "loan_type": "home_loan",
    "principal": "10000.00",
    "annual_rate": "6.90",
    "tenure_months": 12,
    "emi": "864.81",
    "total_payable": "10377.67",
    "total_interest": "377.67",
    "status": "new",
    "version": 1,
    "created_at": "2026-11-30T09:15:02.481000Z",
    "updated_at": "2026-11-30T09:15:02.481000Z",
    "customer_username": "carol",
    "agent_username": None,
}


class LoanRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [cast(JsonDict, NEW_LOAN)]}
    )

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
    # Servicing (null until disbursed). The delinquency fields are as of the loan's last change
    # or close of business; a statement gives them as of any date.
    disbursed_on: date | None = None
    first_due_on: date | None = None
    closed_on: date | None = None
    late_fee: MoneyOut | None = None
    grace_days: int | None = None
    principal_outstanding: MoneyOut | None = None
    interest_outstanding: MoneyOut | None = None
    penalty_outstanding: MoneyOut | None = None
    arrears: MoneyOut | None = None
    dpd: int | None = Field(default=None, description="Days past due of the oldest overdue one")
    bucket: Bucket | None = None
    cob_date: date | None = Field(default=None, description="Last close of business run on it")
    next_due_on: date | None = None
    next_due_amount: MoneyOut | None = Field(
        default=None, description="What makes the loan current by next_due_on"
    )
    written_off_on: date | None = None
    written_off_principal: MoneyOut | None = None
    written_off_interest: MoneyOut | None = None
    written_off_penalty: MoneyOut | None = None
    rejection_reason: str | None = Field(
        default=None, description="Why the admin rejected it (only while it is rejected)"
    )
    customer_username: str | None = Field(default=None, description="The customer, by name")
    agent_username: str | None = Field(
        default=None, description="The agent who requested it, by name"
    )


class LoanEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: EventAction
    actor_id: int
    actor_username: str | None = Field(default=None, description="Who acted, by name")
    actor_role: Role
    at: datetime
    changes: dict[str, dict[str, Any]] = Field(
        description='Each changed field: {"from": old, "to": new}'
    )
    snapshot: dict[str, Any] = Field(description="The loan's terms and status after the event")
    reason: str | None = Field(
        default=None, description="Given with a rejection, a reversal or a write-off"
    )
    restored_version: int | None = Field(
        default=None, description="A rollback's: the version whose terms it restored"
    )


class LoanHistory(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "version": 1,
                            "action": "created",
                            "actor_id": 7,
                            "actor_username": "carol",
                            "actor_role": "customer",
                            "at": "2026-11-30T09:15:02.481000Z",
                            "changes": {"tenure_months": {"from": None, "to": 12}},
                            "snapshot": {
                                "loan_type": "home_loan",
                                "principal": "10000.00",
                                "tenure_months": 12,
                                "status": "new",
                            },
                            "reason": None,
                            "restored_version": None,
                        },
                        {
                            "version": 2,
                            "action": "edited",
                            "actor_id": 3,
                            "actor_username": "andy",
                            "actor_role": "agent",
                            "at": "2026-11-30T10:02:11.007000Z",
                            "changes": {
                                "tenure_months": {"from": 12, "to": 24},
                                "emi": {"from": "864.81", "to": "447.27"},
                            },
                            "snapshot": {
                                "loan_type": "home_loan",
                                "principal": "10000.00",
                                "tenure_months": 24,
                                "status": "new",
                            },
                            "reason": None,
                            "restored_version": None,
                        },
                    ]
                }
            ]
        }
    )

    items: list[LoanEventRead]


class ScheduleRow(BaseModel):
    installment: int
    payment: MoneyOut
    principal: MoneyOut
    interest: MoneyOut
    balance: MoneyOut


class ScheduleRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "emi": "864.81",
                    "total_payable": "10377.67",
                    "total_interest": "377.67",
                    "rows": [
                        {
                            "installment": 1,
                            "payment": "864.81",
                            "principal": "807.31",
                            "interest": "57.50",
                            "balance": "9192.69",
                        },
                        {
                            "installment": 2,
                            "payment": "864.81",
                            "principal": "811.95",
                            "interest": "52.86",
                            "balance": "8380.74",
                        },
                    ],
                }
            ]
        }
    )

    emi: MoneyOut
    total_payable: MoneyOut
    total_interest: MoneyOut
    rows: list[ScheduleRow]


class LoanProductRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "loan_type": "home_loan",
                    "annual_rate": "6.90",
                    "min_principal": "1000.00",
                    "max_principal": "10000000.00",
                    "min_tenure_months": 1,
                    "max_tenure_months": 360,
                    "late_fee": "50.00",
                    "grace_days": 10,
                }
            ]
        },
    )

    loan_type: LoanType
    annual_rate: MoneyOut
    min_principal: MoneyOut
    max_principal: MoneyOut
    min_tenure_months: int
    max_tenure_months: int
    late_fee: MoneyOut
    grace_days: int


LateFee = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False, examples=["25.00"]),
]
GraceDays = Annotated[int, Field(ge=0, le=MAX_GRACE_DAYS, strict=False, examples=[5])]


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
                    "late_fee": "25.00",
                    "grace_days": 5,
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
    # Left out: unchanged (clients written before servicing send neither).
    late_fee: LateFee | None = None
    grace_days: GraceDays | None = None

    @model_validator(mode="after")
    def ordered_bounds(self) -> "LoanProductUpdate":
        if self.min_principal > self.max_principal:
            raise ValueError("min_principal must not exceed max_principal")
        if self.min_tenure_months > self.max_tenure_months:
            raise ValueError("min_tenure_months must not exceed max_tenure_months")
        return self


# --- servicing --------------------------------------------------------------------------------


class Disbursement(InputModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"disbursed_on": "2025-01-15", "first_due_on": "2025-02-15"}]
        },
    )

    disbursed_on: IsoDate | None = Field(default=None, description="Default: today (UTC)")
    first_due_on: IsoDate | None = Field(
        default=None,
        description="Default: a month after disbursed_on; at most two months after it",
    )


class RepaymentCreate(InputModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"amount": "1059.18", "paid_on": "2025-02-15", "reference": "BANK-0001"}]
        },
    )

    amount: Annotated[
        Decimal,
        Field(gt=0, max_digits=18, decimal_places=2, allow_inf_nan=False, examples=["1059.18"]),
    ]
    paid_on: IsoDate | None = Field(default=None, description="Default: today (UTC)")
    reference: Annotated[str | None, Field(max_length=64, pattern=PLAIN_TEXT)] = None


class Reason(InputModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "Payment bounced"}]}
    )

    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=PLAIN_TEXT)]


# The worked example's first repayment (api/servicing.py shows it in a statement too).
REPAYMENT_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "loan_id": 42,
    "amount": "1059.18",
    "paid_on": "2025-02-15",
    "reference": "BANK-0001",
    "principal": "951.68",
    "interest": "107.50",
    "penalty": "0.00",
    "reversed": False,
    "reversed_at": None,
    "reason": None,
    "actor_id": 3,
    "created_at": "2025-02-15T09:30:00Z",
}


class RepaymentRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [REPAYMENT_EXAMPLE]}
    )

    id: int
    loan_id: int
    amount: MoneyOut
    paid_on: date
    reference: str | None
    principal: MoneyOut = Field(description="Its allocation in the loan's current replay")
    interest: MoneyOut
    penalty: MoneyOut
    reversed: bool
    reversed_at: datetime | None
    reason: str | None = Field(description="Why it was reversed")
    actor_id: int
    created_at: datetime


class PayoffRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "on": "2025-03-01",
                    "principal": "11048.32",
                    "interest": "49.49",
                    "penalty": "0.00",
                    "total": "11097.81",
                }
            ]
        },
    )

    on: date
    principal: MoneyOut
    interest: MoneyOut = Field(
        description="Unpaid interest of installments due by `on`, and the running one's pro rata"
    )
    penalty: MoneyOut
    total: MoneyOut = Field(description="Paying exactly this on `on` closes the loan")


class InstallmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    installment: int
    due_on: date
    principal: MoneyOut
    interest: MoneyOut
    penalty: MoneyOut
    paid_principal: MoneyOut
    paid_interest: MoneyOut
    paid_penalty: MoneyOut
    waived_interest: MoneyOut
    status: InstallmentStatus


class StatementRead(LoanRead):
    """The loan as of `as_of`, its installments and its repayments in replay order."""

    as_of: date
    installments: list[InstallmentRead]
    repayments: list[RepaymentRead]
