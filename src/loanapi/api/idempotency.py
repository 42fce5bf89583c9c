"""Idempotency-Key on every POST of a router, recorded by the route itself.

`IdempotentRoute` adds the header's dependency to each POST and wraps its endpoint, so the
response a handler returns is stored with the key in the request's transaction: no handler has
to remember to record it. The key is claimed by the wrapper, after every dependency (the role
gate included: a refused caller learns nothing about keys) and before the handler. A replay
repeats the first response's status, body and headers (`ETag`, `Location`), marked
`Idempotent-Replayed: true`.
"""

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from loanapi.api.deps import CurrentUser, WriteSessionDep
from loanapi.db import WriteSession
from loanapi.idempotency import IdempotencyKey, Replay, claim, fingerprint

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass
class _Claim:
    """A request's key, waiting for its endpoint to run."""

    session: WriteSession
    user_id: int
    key: str
    print_: bytes
    row: IdempotencyKey | None = None


# The claim of the request being handled, if it sent a key (set by the dependency, used by the
# endpoint's wrapper: both run in the request's task).
_PENDING: ContextVar[_Claim | None] = ContextVar("idempotency_pending", default=None)


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
    pending = _Claim(session, user.id, key, print_)
    token = _PENDING.set(pending)
    try:
        yield
    finally:
        _PENDING.reset(token)
    if pending.row is not None and pending.row.status_code is None:
        raise RuntimeError("the idempotent response was not recorded")


Endpoint = Callable[..., Coroutine[Any, Any, Any]]


def _recording(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def recorded(*args: Any, **kwargs: Any) -> Any:
        pending = _PENDING.get()
        if pending is not None:  # a repeat is answered here (Replay) or refused (409)
            pending.row = await claim(
                pending.session, user_id=pending.user_id, key=pending.key, print_=pending.print_
            )
        response = await endpoint(*args, **kwargs)
        if pending is not None and pending.row is not None:
            if not isinstance(response, Response):
                raise TypeError("an idempotent endpoint must return a Response")
            pending.row.record(response.status_code, bytes(response.body), dict(response.headers))
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
