"""One error type, one body: RFC 9457 problem details for every failure."""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

log = logging.getLogger("loanapi")

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details body."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="422 only: one per bad field")


class ApiError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.errors = errors


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "Not authenticated", *, scheme: str = "Bearer") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": scheme})


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class PreconditionFailed(ApiError):
    status, title = 412, "Precondition Failed"


class Unprocessable(ApiError):
    status, title = 422, "Unprocessable Content"

    @classmethod
    def field(cls, loc: tuple[str | int, ...], msg: str, kind: str) -> "Unprocessable":
        location = ".".join(map(str, loc))
        return cls(f"{location}: {msg}", errors=[{"loc": list(loc), "msg": msg, "type": kind}])


class TooManyRequests(ApiError):
    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_responses(
    *statuses: int, notes: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting problem bodies for the given statuses; `notes` says
    when a status happens on this route."""
    notes = notes or {}
    return {
        status: {
            "model": Problem,
            "description": notes.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in (*statuses, *(n for n in notes if n not in statuses))
    }


# What each error status looks like, for the documentation (real answers of the API; the
# OpenAPI document shows one per status: openapi.tidy).
EXAMPLE_DETAILS = {
    401: "The token has expired",
    403: "This endpoint is for the admin role",
    404: "No loan with id 42",
    409: "Only a requested loan can be approved; this one is new",
    412: "The loan is at version 4, not 3: read it again",
    413: "The request body is larger than 1048576 bytes.",
    429: "Too many failed logins for this username from this address; try again later.",
    503: "The database is overloaded; nothing was changed. Try again in 5 s.",
}


def problem_example(status: int) -> dict[str, Any]:
    title = HTTPStatus(status).phrase if status != 422 else "Unprocessable Content"
    if status == 422:
        error = {
            "loc": ["body", "principal"],
            "msg": "must be between 1000.00 and 10000000.00 for home_loan",
            "type": "out_of_range",
        }
        return {
            "type": "about:blank",
            "title": title,
            "status": 422,
            "detail": "body.principal: must be between 1000.00 and 10000000.00 for home_loan",
            "errors": [error],
        }
    detail = EXAMPLE_DETAILS.get(status, HTTPStatus(status).description)
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


# What a pattern means, for people (a regular expression in an error message helps nobody).
PATTERN_WORDS = {
    r"^[A-Za-z0-9_.\-]+$": "3 to 64 letters, digits, _ . or -",
    r"^[^\x00-\x1f\x7f]*$": "no control characters (line breaks, tabs, ...)",
}


def _message(err: dict[str, Any]) -> str:
    """The error's message for people: the meaning of a pattern rather than the pattern, where a
    body that is not JSON breaks, no "Value error," prefix."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return PATTERN_WORDS.get(str(ctx.get("pattern")), "not in the expected format")
    if kind == "json_invalid":
        position = err.get("loc", ("body", None))[-1]
        where = f" at character {position}" if isinstance(position, int) else ""
        return f"the body is not valid JSON{where}: {ctx.get('error', 'cannot be parsed')}"
    return str(err.get("msg", "")).removeprefix("Value error, ")


def _location(err: dict[str, Any]) -> list[str | int]:
    loc = [str(p) if not isinstance(p, int) else p for p in err.get("loc", ())]
    if err.get("type") == "json_invalid":
        return ["body"]  # the position is in the message
    field = (err.get("ctx") or {}).get("field")  # a model's check about one of its fields
    return [*loc, field] if isinstance(field, str) else loc


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as the API reports them (also the CLI): only location, message for
    people and type; echoing the input could reflect a password back."""
    return [
        {"loc": _location(err), "msg": _message(err), "type": str(err.get("type", ""))}
        for err in jsonable_encoder(errors)
    ]


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return field_errors(exc.errors())


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(
        exc.status, exc.detail, title=exc.title, headers=exc.headers, errors=exc.errors
    )


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI: a body it could not even decode (not UTF-8, ...)
        return problem_response(
            422,
            "body: the request body could not be parsed",
            errors=[{"loc": ["body"], "msg": "could not be parsed", "type": "body_invalid"}],
        )
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    first = errors[0] if errors else None
    detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else "Invalid request"
    return problem_response(422, detail, title="Unprocessable Content", errors=errors)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
