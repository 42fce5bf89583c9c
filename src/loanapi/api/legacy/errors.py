"""The original's answers: its JSON (keys sorted, as Flask sent them), its refusals, its words."""

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from loanapi.api.legacy.fields import STATUS_WORDS
from loanapi.errors import ApiError, TooManyRequests
from loanapi.loans.workflow import Action, LoanStateConflict
from loanapi.users.service import InvalidTokenError

IMMUTABLE = "This Loan has already been approved by the admin!! It is immutable now."
# Flask's make_response(text, 401, ...) of /login: HTML content type, Basic challenge.
LOGIN_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Login Required!"'}
HTML = "text/html; charset=utf-8"


class LegacyJSON(Response):
    """JSON with sorted keys, as Flask's jsonify sent it."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


class LegacyError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        key: str = "Message",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.body, self.headers = status, {key: message}, headers

    def response(self) -> Response:
        return LegacyJSON(self.body, status_code=self.status, headers=self.headers)


def login_refusal(text: str) -> Response:
    """/login's plain-text 401 (`Could not verify`, or an agent not yet approved)."""
    return Response(text, status_code=401, headers=LOGIN_CHALLENGE, media_type=HTML)


def translate(exc: ApiError) -> LegacyError:
    """A service error in the original's words; status codes follow /api/v1."""
    if isinstance(exc, InvalidTokenError):
        return LegacyError(401, "Token is invalid!", key="message")
    if isinstance(exc, LoanStateConflict):
        approved = STATUS_WORDS[exc.loan_status] == "Approved"
        if approved and exc.action in (Action.edit, Action.rollback):
            return LegacyError(409, IMMUTABLE)
        if exc.action is Action.approve:
            return LegacyError(
                409,
                f"This Loan cannot be approved: it is {exc.loan_status.value}. "
                "Only a loan requested by an agent can be approved.",
            )
    if isinstance(exc, TooManyRequests):
        return LegacyError(429, exc.detail or "Too many attempts", headers=exc.headers)
    status = 401 if exc.status == 403 else exc.status  # the original refused with 401
    return LegacyError(status, exc.detail or exc.title, headers=exc.headers)


def first_problem(errors: Sequence[Any]) -> str:
    """The first validation error in the original's one-line style (`field: message`)."""
    if not errors:
        return "Invalid request"
    where = ".".join(str(part) for part in errors[0].get("loc", ()) if part != "body")
    return f"{where}: {errors[0].get('msg', 'invalid')}" if where else str(errors[0].get("msg"))


class LegacyRoute(APIRoute):
    """Renders every failure of a legacy endpoint in the original's `{"Message": ...}` shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def legacy_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LegacyError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return LegacyError(422, first_problem(exc.errors())).response()
            except HTTPException as exc:  # unparsable body, malformed Basic header, 413
                if exc.status_code == 401:
                    return login_refusal("Could not verify")
                if exc.status_code == 400:  # a body FastAPI could not decode: bad input, as 422
                    return LegacyError(422, "The request body could not be parsed").response()
                return LegacyError(exc.status_code, str(exc.detail)).response()
            except ApiError as exc:
                return translate(exc).response()

        return legacy_handler
