"""Idempotency-Key on every POST of a router, recorded by the route itself.

`IdempotentRoute` adds the header's dependency to each POST and wraps its endpoint, so the
response a handler returns is stored with the key in the request's transaction: no handler has
to remember to record it. A replay repeats the first response's status, body and headers
(`ETag`, `Location`), marked `Idempotent-Replayed: true`.
"""

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from loanapi.api.deps import CurrentUser, WriteSessionDep
from loanapi.idempotency import IdempotencyKey, Replay, claim, fingerprint

REPLAYED_HEADER = "Idempotent-Replayed"

# The key row of the request being handled, if it sent a key (set by the dependency, read by
# the endpoint's wrapper: both run in the request's task).
_PENDING: ContextVar[IdempotencyKey | None] = ContextVar("idempotency_pending", default=None)


async def replay_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    headers = {**exc.headers, REPLAYED_HEADER: "true"}
    return Response(exc.body, exc.status_code, headers, media_type="application/json")


async def idempotency(
    request: Request,
    session: WriteSessionDep,
    user: CurrentUser,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a POST safely: the same key and body returns the first response",
        ),
    ] = None,
) -> AsyncIterator[None]:
    if key is None:
        yield
        return
    print_ = fingerprint(request.method, request.url.path, await request.body())
    row = await claim(session, user_id=user.id, key=key, print_=print_)
    token = _PENDING.set(row)
    try:
        yield
    finally:
        _PENDING.reset(token)
    if row.status_code is None:
        raise RuntimeError("the idempotent response was not recorded")


Endpoint = Callable[..., Coroutine[Any, Any, Any]]


def _recording(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def recorded(*args: Any, **kwargs: Any) -> Any:
        response = await endpoint(*args, **kwargs)
        if (row := _PENDING.get()) is not None:
            if not isinstance(response, Response):
                raise TypeError("an idempotent endpoint must return a Response")
            row.record(response.status_code, bytes(response.body), dict(response.headers))
        return response

    return recorded


class IdempotentRoute(APIRoute):
    """A route whose POSTs honour Idempotency-Key (API.md: every POST that changes something)."""

    def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
        if "POST" in (kwargs.get("methods") or ()):
            endpoint = _recording(endpoint)
            extra = Depends(idempotency, scope="function")
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), extra]
        super().__init__(path, endpoint, **kwargs)
