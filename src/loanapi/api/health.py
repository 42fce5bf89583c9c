from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse

from loanapi.errors import problem_response, problem_responses

router = APIRouter(tags=["service"])


@router.get(
    "/healthz",
    operation_id="service_health",
    summary="The process is up (no database)",
    description='Needs no token. Always `{"status": "ok"}` while the process serves '
    "requests, whatever the state of the database: a liveness check.",
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="service_ready",
    summary="The database answers",
    description='Needs no token. Runs `SELECT 1`: 200 `{"status": "ready"}`, or 503 '
    "(problem details) when the database cannot be reached: a readiness check.",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means not ready
        return problem_response(503, "The database is not reachable")  # type: ignore[return-value]
    return JSONResponse({"status": "ready"})
