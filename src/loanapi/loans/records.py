"""What the loan services return: one frozen, typed record per aggregate.

A field name that does not exist is a mypy error here, not a KeyError at run time. Pages and
response bodies are built from these in `loanapi.api`; a loan's money fields carry the API's
two-place format, so a record is serialized as the `LoanRead` body without validating it again.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from loanapi.loans.ledger import Bucket
from loanapi.loans.models import EventAction, LoanStatus, LoanType
from loanapi.loans.schemas import MoneyOut
from loanapi.records import Record
from loanapi.users.models import Role


@dataclass(frozen=True, slots=True)
class LoanRecord(Record):
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
    disbursed_on: date | None = None
    first_due_on: date | None = None
    # How due dates are counted (see Loan.first_due_given): the ledger's business, not the API's.
    first_due_given: Annotated[bool | None, Field(exclude=True)] = None
    closed_on: date | None = None
    late_fee: MoneyOut | None = None
    grace_days: int | None = None
    principal_outstanding: MoneyOut | None = None
    interest_outstanding: MoneyOut | None = None
    penalty_outstanding: MoneyOut | None = None
    arrears: MoneyOut | None = None
    dpd: int | None = None
    bucket: Bucket | None = None
    cob_date: date | None = None
    next_due_on: date | None = None
    next_due_amount: MoneyOut | None = None
    written_off_on: date | None = None
    written_off_principal: MoneyOut | None = None
    written_off_interest: MoneyOut | None = None
    written_off_penalty: MoneyOut | None = None
    # Close of business's bookkeeping (Loan.serviced_on and after): not part of the API.
    serviced_on: Annotated[date | None, Field(exclude=True)] = None
    fees_charged: Annotated[int | None, Field(exclude=True)] = None
    fees_recorded: Annotated[int | None, Field(exclude=True)] = None
    rejection_reason: str | None = None
    customer_username: str | None = None
    agent_username: str | None = None


@dataclass(frozen=True, slots=True)
class RepaymentRecord(Record):
    id: int
    loan_id: int
    amount: MoneyOut
    paid_on: date
    reference: str | None
    principal: MoneyOut
    interest: MoneyOut
    penalty: MoneyOut
    reversed: bool
    reversed_at: datetime | None
    reason: str | None
    actor_id: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoanEventRecord(Record):
    id: int
    loan_id: int
    version: int
    action: EventAction
    actor_id: int
    actor_role: Role
    at: datetime
    changes: dict[str, Any]
    snapshot: dict[str, Any]
    reason: str | None
    restored_version: int | None = None
    actor_username: str | None = None


@dataclass(frozen=True, slots=True)
class ProductRecord(Record):
    loan_type: LoanType
    annual_rate: Decimal
    min_principal: Decimal
    max_principal: Decimal
    min_tenure_months: int
    max_tenure_months: int
    late_fee: Decimal
    grace_days: int
    updated_at: datetime
