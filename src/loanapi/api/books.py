"""The admin's view of the whole book: close of business and the portfolio."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from loanapi import jobs
from loanapi.api.common import model_response
from loanapi.api.deps import V1, AdminUser, ReadSessionDep, WriteSessionDep
from loanapi.api.idempotency import IdempotentRoute
from loanapi.clock import utcnow
from loanapi.errors import Unprocessable, problem_responses
from loanapi.loans import close_of_business
from loanapi.loans import portfolio as portfolios
from loanapi.loans.close_of_business import Result
from loanapi.loans.schemas import InputModel, IsoDate, MoneyOut
from loanapi.loans.servicing import EARLIEST

router = APIRouter(
    route_class=IdempotentRoute,
    prefix=f"{V1}/admin",
    tags=["admin"],
    responses=problem_responses(401, 403, 422),
)


class CloseOfBusiness(InputModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"date": "2025-04-01"}]}
    )

    date: IsoDate | None = Field(default=None, description="Default: yesterday (UTC)")


class CloseOfBusinessRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "date": "2025-04-01",
                    "loans": 300000,
                    "penalties_charged": 2950,
                    "bucket_changes": 4120,
                    "seconds": 21.7,
                }
            ]
        },
    )

    date: dt.date
    loans: int = Field(description="Loans closed for the date by this run (0 when done before)")
    penalties_charged: int = Field(description="Late fees recorded (penalty_charged events)")
    bucket_changes: int = Field(description="Loans whose delinquency bucket changed")
    seconds: float


@router.post(
    "/close-of-business",
    response_model=CloseOfBusinessRead,
    operation_id="admin_close_of_business",
    responses=problem_responses(
        409, notes={409: "This Idempotency-Key was used for another request"}
    ),
    summary="Close a day: record late fees, store every active loan's lateness",
    description="For every active loan disbursed by `date` and not yet closed for it: records "
    "the late fees dated by then (one `penalty_charged` event per loan that had any) and stores "
    "`dpd`, `arrears`, `bucket`, `next_due_on`, `next_due_amount` and `cob_date`. Running it "
    "again for the same date changes nothing; two runs at once do the work once. The worker "
    "(or, on SQLite, the server itself) runs it every day at LOANAPI_COB_TIME for the day before.",
)
async def close_day(
    request: Request,
    admin: AdminUser,
    session: WriteSessionDep,
    data: CloseOfBusiness | None = None,
) -> Response:
    day = close_of_business.day_to_close(data.date if data else None)
    # On SQLite this request's transaction may hold the one write lock (its Idempotency-Key):
    # the run goes in it. On PostgreSQL it runs in batches of its own, as the worker's does.
    sqlite = request.app.state.settings.is_sqlite
    result: Result = await jobs.close_books(
        request.app.state.sessions, day, actor_id=admin.id, within=session if sqlite else None
    )
    return model_response(CloseOfBusinessRead.model_validate(result))


class StockRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    loans: int
    principal_outstanding: MoneyOut


class FlowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    count: int
    amount: MoneyOut


class PortfolioRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "month": "2025-04",
                    "as_of": "2025-04-30",
                    "active_loans": 3,
                    "principal_outstanding": "30129.66",
                    "arrears": "1084.18",
                    "par30": "0.3240",
                    "par90": "0.0000",
                    "by_bucket": {
                        "current": {"loans": 1, "principal_outstanding": "9762.66"},
                        "1-30": {"loans": 1, "principal_outstanding": "10607.00"},
                        "31-60": {"loans": 1, "principal_outstanding": "9760.00"},
                        "61-90": {"loans": 0, "principal_outstanding": "0.00"},
                        "91+": {"loans": 0, "principal_outstanding": "0.00"},
                    },
                    "disbursed": {"count": 1, "amount": "12000.00"},
                    "repaid": {"count": 4, "amount": "4118.36"},
                }
            ]
        },
    )

    month: str
    as_of: dt.date | None = Field(description="The latest close of business; null before any")
    active_loans: int
    principal_outstanding: MoneyOut
    arrears: MoneyOut
    par30: Annotated[Decimal, PlainSerializer(str, return_type=str, when_used="json")] = Field(
        description="Principal outstanding of active loans more than 30 days past due, over all "
        "of it, half-up to four places"
    )
    par90: Annotated[Decimal, PlainSerializer(str, return_type=str, when_used="json")]
    by_bucket: dict[str, StockRead] = Field(description="Every bucket, always present")
    disbursed: FlowRead = Field(description="Loans disbursed in the month (by disbursed_on)")
    repaid: FlowRead = Field(description="Repayments of the month (by paid_on), not reversed")


Month = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="YYYY-MM (default: this month, UTC)",
        examples=["2025-04"],
    ),
]


def month_window(month: str | None) -> tuple[str, dt.date, dt.date]:
    """The month as text and its first day and the first day of the next."""
    today = utcnow().date()
    start = dt.date.fromisoformat(f"{month}-01") if month else today.replace(day=1)
    this_month = today.replace(day=1)
    if not EARLIEST <= start <= this_month:
        raise Unprocessable.field(
            ("query", "month"),
            f"must be between {EARLIEST:%Y-%m} and this month ({this_month:%Y-%m})",
            "value_error",
        )
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return f"{start:%Y-%m}", start, end


@router.get(
    "/portfolio",
    response_model=PortfolioRead,
    operation_id="admin_portfolio",
    summary="The book: active loans by bucket, arrears, PAR30/PAR90, a month's flows",
    description="Stock figures come from the loans' stored fields (as of the last close of "
    "business, `as_of`); `disbursed` and `repaid` are the month's flows.",
)
async def portfolio(admin: AdminUser, session: ReadSessionDep, month: Month = None) -> Response:
    name, start, end = month_window(month)
    book = await portfolios.portfolio(session, month=name, start=start, end=end)
    return model_response(PortfolioRead.model_validate(book))
