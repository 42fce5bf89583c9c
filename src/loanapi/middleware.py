"""Pure ASGI middleware: request ids, body size limit, security headers, access log, last 500."""

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loanapi.db import saturation
from loanapi.observability import observe

log = logging.getLogger("loanapi")

MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = f"The request body is larger than {MAX_BODY_BYTES} bytes."
REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_SLASHES = re.compile(r"/{2,}")


def _problem(status: int, title: str, detail: str) -> bytes:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode()


_INTERNAL_ERROR = _problem(
    500, "Internal Server Error", "An unexpected error occurred; it has been logged."
)
_TOO_LARGE = _problem(413, "Content Too Large", TOO_LARGE)
# The documentation pages load everything from this server: the browser refuses anything else
# (ReDoc's bundle would fetch its maker's logo from a CDN), and inline scripts are the pages'.
DOCS_PAGES = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
DOCS_POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    b"frame-ancestors 'none'"
)
RETRY_AFTER_SECONDS = 5
_UNAVAILABLE = _problem(
    503,
    "Service Unavailable",
    f"The database is overloaded; nothing was changed. Try again in {RETRY_AFTER_SECONDS} s.",
)


class RequestContextMiddleware:
    """Outermost layer: every response, errors included, carries X-Request-ID and nosniff.

    The caller's id is kept when it is a sane token, else a new one is made. Request bodies over
    1 MiB are refused with 413, counted while they stream (a Content-Length is not trusted).
    An exception that nothing else handled becomes a problem+json 500 without a traceback.
    """

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = self._request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                if scope.get("path") in DOCS_PAGES:
                    headers.append((b"content-security-policy", DOCS_POLICY))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._handle(scope, receive, send_with_headers)
        finally:
            observe(scope, status, time.perf_counter() - began, request_id)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._declared_length(scope) > self.max_body:
            await self._send(send, 413, _TOO_LARGE)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # The app renders it as problem+json, like any HTTP error.
                    raise HTTPException(413, TOO_LARGE)
            return message

        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except Exception as exc:
            if (cause := saturation(exc)) is not None:
                # Logged once, without a traceback: an overloaded database is not a bug.
                request_id = scope["state"]["request_id"]
                log.warning(
                    "database saturated (%s) on %s %s, request %s: answered 503",
                    cause,
                    scope.get("method"),
                    scope.get("path"),
                    request_id,
                )
                if started:
                    raise
                await self._send(send, 503, _UNAVAILABLE, retry_after=RETRY_AFTER_SECONDS)
                return
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await self._send(send, 500, _INTERNAL_ERROR)

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, retry_after: int | None = None) -> None:
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _request_id(scope: Scope) -> str:
        for key, value in scope.get("headers", []):
            if key == REQUEST_ID_HEADER:
                candidate = str(value.decode("latin-1"))
                if _VALID_REQUEST_ID.match(candidate):
                    return candidate
        return uuid.uuid4().hex

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0


class NormalizedPaths:
    """Routes `//login` as `/login` and `/ALL_users` as `/all_users`, before anything matches.

    The original system's clients join a base URL ending in `/` with paths that start with one
    (`///approve_agent/4`), and spell its paths in several cases; it answered them all. Repeated
    slashes collapse on every path; the case of a path's first segment is folded only for the
    heads given (the legacy endpoints').
    """

    def __init__(self, app: ASGIApp, *, heads: Mapping[str, str]) -> None:
        self.app = app
        self.heads = heads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if "//" in path:
                path = _SLASHES.sub("/", path)
            head, slash, rest = path[1:].partition("/")
            canonical = self.heads.get(head.lower(), head)
            if canonical != head:
                path = f"/{canonical}{slash}{rest}"
            if path is not scope["path"]:
                # In place, so the outer middleware sees the matched route for its access log.
                scope["path"] = path
                scope["raw_path"] = path.encode()
        await self.app(scope, receive, send)
