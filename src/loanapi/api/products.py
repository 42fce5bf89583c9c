from fastapi import APIRouter

from loanapi.api.deps import V1, ReadSessionDep
from loanapi.loans import service as loans
from loanapi.loans.schemas import LoanProductRead

router = APIRouter(prefix=V1, tags=["products"])


@router.get(
    "/loan-products",
    response_model=list[LoanProductRead],
    operation_id="list_loan_products",
    summary="Loan products: current rates and the principal and tenure each allows",
    description="Needs no token; a plain array, one entry per `loan_type`. A loan keeps the "
    "rate it was priced at, so a rate change applies only to loans priced afterwards (new "
    "applications, edits that change `loan_type`). A loan keeps the `late_fee` and "
    "`grace_days` its product had when it was disbursed.",
)
async def list_products(session: ReadSessionDep) -> list[LoanProductRead]:
    return [LoanProductRead.model_validate(p) for p in await loans.list_products(session)]
