from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse

from loanapi.errors import problem_response, problem_responses

router = APIRouter(tags=["service"])


@router.get("/healthz", operation_id="service_health", summary="The process is up (no database)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="service_ready",
    summary="The database answers",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means not ready
        return problem_response(503, "The database is not reachable")  # type: ignore[return-value]
    return JSONResponse({"status": "ready"})
