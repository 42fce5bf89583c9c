from fastapi import APIRouter

from loanapi.api.deps import SessionDep
from loanapi.loans import service as loans
from loanapi.loans.schemas import LoanProductRead

router = APIRouter(tags=["products"])


@router.get(
    "/loan-products",
    response_model=list[LoanProductRead],
    operation_id="list_loan_products",
    summary="Loan products: current rates and the principal and tenure each allows",
)
async def list_products(session: SessionDep) -> list[LoanProductRead]:
    return [LoanProductRead.model_validate(p) for p in await loans.list_products(session)]
