import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.clock import utcnow
from loanapi.orm import Base, Money, UTCDateTime, checked_enum
from loanapi.users.models import Role


class LoanType(enum.StrEnum):
    home_loan = "home_loan"
    personal_loan = "personal_loan"
    car_loan = "car_loan"
    education_loan = "education_loan"


class LoanStatus(enum.StrEnum):
    new = "new"
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class EventAction(enum.StrEnum):
    created = "created"
    edited = "edited"
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    rolled_back = "rolled_back"


# Inputs allow a principal below 10^12, a rate up to 100 % and 1200 months; within those bounds
# an installment stays below 1.1 * 10^12 and a total below 1.1 * 10^14.
MONEY = Money(14)
INSTALLMENT = Money(16)
TOTAL = Money(20)
RATE = Money(5)


class LoanProduct(Base):
    __tablename__ = "loan_products"

    loan_type: Mapped[LoanType] = mapped_column(
        checked_enum(LoanType, "loan_type"), primary_key=True
    )
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    min_principal: Mapped[Decimal] = mapped_column(MONEY)
    max_principal: Mapped[Decimal] = mapped_column(MONEY)
    min_tenure_months: Mapped[int] = mapped_column(Integer)
    max_tenure_months: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    loan_type: Mapped[LoanType] = mapped_column(checked_enum(LoanType, "loan_type"))
    principal: Mapped[Decimal] = mapped_column(MONEY)
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    tenure_months: Mapped[int] = mapped_column(Integer)
    emi: Mapped[Decimal] = mapped_column(INSTALLMENT)
    total_payable: Mapped[Decimal] = mapped_column(TOTAL)
    total_interest: Mapped[Decimal] = mapped_column(TOTAL)
    status: Mapped[LoanStatus] = mapped_column(checked_enum(LoanStatus, "loan_status"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Every list is newest first, (created_at desc, id desc); each filter has an index that
    # starts with the filtered column and then gives that order, so no list sorts the table.
    __table_args__ = (
        Index("ix_loans_created", "created_at", "id"),
        Index("ix_loans_status_created", "status", "created_at", "id"),
        Index("ix_loans_type_created", "loan_type", "created_at", "id"),
        Index("ix_loans_customer_created", "customer_id", "created_at", "id"),
        Index("ix_loans_agent_created", "agent_id", "created_at", "id"),
        Index("ix_loans_updated", "updated_at", "id"),
    )


class LoanEvent(Base):
    """One row per change of a loan, written in the same transaction; never updated."""

    __tablename__ = "loan_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[EventAction] = mapped_column(checked_enum(EventAction, "event_action"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[Role] = mapped_column(checked_enum(Role, "user_role"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("uq_loan_events_loan_version", "loan_id", "version", unique=True),)
