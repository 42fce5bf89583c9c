"""What the loan services return: one frozen, typed record per aggregate.

A field name that does not exist is a mypy error here, not a KeyError at run time. Pages and
response bodies are built from these in `loanapi.api`; a loan's money fields carry the API's
two-place format, so a record is serialized as the `LoanRead` body without validating it again.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from loanapi.loans.models import EventAction, LoanStatus, LoanType
from loanapi.loans.schemas import MoneyOut
from loanapi.users.models import Role


@dataclass(frozen=True, slots=True)
class LoanRecord:
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

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**row)


@dataclass(frozen=True, slots=True)
class LoanEventRecord:
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

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**row)


@dataclass(frozen=True, slots=True)
class ProductRecord:
    loan_type: LoanType
    annual_rate: Decimal
    min_principal: Decimal
    max_principal: Decimal
    min_tenure_months: int
    max_tenure_months: int
    updated_at: datetime

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**row)
