import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loanapi.clock import utcnow
from loanapi.loans.ledger import Bucket
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
    active = "active"  # disbursed: repayments are taken
    closed = "closed"  # fully repaid
    written_off = "written_off"


class EventAction(enum.StrEnum):
    created = "created"
    edited = "edited"
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    rolled_back = "rolled_back"
    disbursed = "disbursed"
    repaid = "repaid"
    repayment_reversed = "repayment_reversed"
    closed = "closed"
    reopened = "reopened"
    written_off = "written_off"
    penalty_charged = "penalty_charged"


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
    # A loan copies both when it is disbursed: a later change never rewrites its history.
    late_fee: Mapped[Decimal] = mapped_column(MONEY, server_default=text("'0.00'"))
    grace_days: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


ACTIVE = text("status = 'active'")


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

    # Servicing (SERVICING.md), null before disbursement. The delinquency fields are stored as
    # of the loan's last change or close of business, so lists filter on them by index.
    disbursed_on: Mapped[date | None] = mapped_column(Date)
    first_due_on: Mapped[date | None] = mapped_column(Date)
    # Whether first_due_on was given: then installment k is due k - 1 months after it, else k
    # months after disbursed_on (the two differ for a loan disbursed at a month's end).
    first_due_given: Mapped[bool | None] = mapped_column(Boolean)
    closed_on: Mapped[date | None] = mapped_column(Date)
    late_fee: Mapped[Decimal | None] = mapped_column(MONEY)
    grace_days: Mapped[int | None] = mapped_column(Integer)
    principal_outstanding: Mapped[Decimal | None] = mapped_column(MONEY)
    interest_outstanding: Mapped[Decimal | None] = mapped_column(TOTAL)
    penalty_outstanding: Mapped[Decimal | None] = mapped_column(TOTAL)
    arrears: Mapped[Decimal | None] = mapped_column(TOTAL)
    dpd: Mapped[int | None] = mapped_column(Integer)
    bucket: Mapped[Bucket | None] = mapped_column(checked_enum(Bucket, "loan_bucket"))
    cob_date: Mapped[date | None] = mapped_column(Date)
    next_due_on: Mapped[date | None] = mapped_column(Date)
    next_due_amount: Mapped[Decimal | None] = mapped_column(TOTAL)
    written_off_on: Mapped[date | None] = mapped_column(Date)
    written_off_principal: Mapped[Decimal | None] = mapped_column(MONEY)
    written_off_interest: Mapped[Decimal | None] = mapped_column(TOTAL)
    written_off_penalty: Mapped[Decimal | None] = mapped_column(TOTAL)
    # What close of business builds on (loans/close_of_business.py): the date the derived fields
    # above are as of, the late fees charged in them, and how many of those have their
    # `penalty_charged` event.
    serviced_on: Mapped[date | None] = mapped_column(Date)
    fees_charged: Mapped[int | None] = mapped_column(Integer)
    fees_recorded: Mapped[int | None] = mapped_column(Integer)
    # Why the admin rejected it (while it is rejected; an edit back to `new` clears it).
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    # Beside the ids, for people: usernames never change, so they are kept with the loan.
    customer_username: Mapped[str | None] = mapped_column(String(64))
    agent_username: Mapped[str | None] = mapped_column(String(64))

    # Every list is newest first, (created_at desc, id desc); each filter has an index that
    # starts with the filtered column and then gives that order, so no list sorts the table.
    __table_args__ = (
        Index("ix_loans_created", "created_at", "id"),
        Index("ix_loans_status_created", "status", "created_at", "id"),
        Index("ix_loans_type_created", "loan_type", "created_at", "id"),
        Index("ix_loans_customer_created", "customer_id", "created_at", "id"),
        Index("ix_loans_agent_created", "agent_id", "created_at", "id"),
        Index("ix_loans_updated", "updated_at", "id"),
        Index("ix_loans_bucket_created", "bucket", "created_at", "id"),
        Index("ix_loans_dpd", "dpd"),
        # Close of business walks the active loans in id order, in batches.
        Index("ix_loans_active", "id", postgresql_where=ACTIVE, sqlite_where=ACTIVE),
        # The portfolio's stock and flows, read from the indexes alone (index-only scans).
        Index(
            "ix_loans_book",
            "bucket",
            "dpd",
            "principal_outstanding",
            "arrears",
            "cob_date",
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),
        Index("ix_loans_disbursed", "disbursed_on", "principal"),
    )


class LoanEvent(Base):
    """One row per change of a loan, written in the same transaction; never updated."""

    __tablename__ = "loan_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[EventAction] = mapped_column(
        checked_enum(EventAction, "event_action", length=24)
    )
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[Role] = mapped_column(checked_enum(Role, "user_role"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(500))
    # A rollback's: the version whose terms it restored.
    restored_version: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("uq_loan_events_loan_version", "loan_id", "version", unique=True),)


NOT_REVERSED = text("NOT reversed")


class Repayment(Base):
    """Money received for a loan. Never deleted: a reversal marks it and keeps its allocation.

    `principal`, `interest` and `penalty` are its allocation in the loan's current replay
    (loans/ledger.py), rewritten when a back-dated repayment or a reversal moves it."""

    __tablename__ = "repayments"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    amount: Mapped[Decimal] = mapped_column(TOTAL)
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(64))
    principal: Mapped[Decimal] = mapped_column(MONEY)
    interest: Mapped[Decimal] = mapped_column(TOTAL)
    penalty: Mapped[Decimal] = mapped_column(TOTAL)
    reversed: Mapped[bool] = mapped_column(Boolean, default=False)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(500))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        # The replay reads a loan's repayments in (paid_on, id) order straight from this index.
        Index("ix_repayments_loan_paid", "loan_id", "paid_on", "id"),
        Index("ix_repayments_created", "created_at", "id"),
        Index("ix_repayments_paid", "paid_on", "id"),
        # The portfolio's repaid flow of a month, from the index alone.
        Index(
            "ix_repayments_flows",
            "paid_on",
            "amount",
            postgresql_where=NOT_REVERSED,
            sqlite_where=NOT_REVERSED,
        ),
    )
