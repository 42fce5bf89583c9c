"""What the loan services return: one frozen, typed record per aggregate.

A field name that does not exist is a mypy error here, not a KeyError at run time. Pages and
response bodies are built from these in `loanapi.api`; a loan's money fields carry the API's
two-place format, so a record is serialized as the `LoanRead` body without validating it again.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

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


@dataclass(frozen=True, slots=True)
class ProductRecord(Record):
    loan_type: LoanType
    annual_rate: Decimal
    min_principal: Decimal
    max_principal: Decimal
    min_tenure_months: int
    max_tenure_months: int
    updated_at: datetime
