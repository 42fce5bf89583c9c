"""The HTTP client that sends webhook deliveries: HTTP/1.1 POSTs over kept-alive connections.

A delivery is one small POST whose answer's body is not read, so the client is small: the
request is written in one piece, the answer parsed by httptools (the C parser uvicorn uses), TLS
is asyncio's with the system's certificate store. aiohttp took about 90 us of CPU per request on
this path and this takes about 20 (bench/run.py "events" measures what it costs the API).

Connections are made only to the addresses `urls.addresses` checked when the host name was
resolved for that connection (SSRF protection, EVENTS.md "URLs"); a kept-alive connection is
reused for the same scheme, host and port. Redirects are not followed: a 3xx is an answer like
any other that is not 2xx.
"""

import asyncio
import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

from loanapi.webhooks import urls

IDLE_PER_ORIGIN = 256  # kept-alive connections kept per scheme, host and port


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's POST goes: the connection's origin and the request line's target."""

    scheme: str
    host: str
    port: int
    name: str | None  # the host name to resolve (and check) per connection; None: an address
    path: str  # path and query, percent-encoded
    host_header: str


@functools.lru_cache(maxsize=1024)
def target(url: str, policy: urls.Policy) -> Target:
    """The URL as the sender uses it, checked by `urls` (RefusedURL; a refusal is not cached,
    a check that passed depends on nothing but the URL and the policy)."""
    scheme, host, port = urls.check_syntax(url, policy)
    name = urls.check_literal(url, policy)
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    named = f"[{host}]" if ":" in host else host
    default = port == (443 if scheme == "https" else 80)
    return Target(scheme, host, port, name, path, named if default else f"{named}:{port}")


class ClosedEarly(ConnectionError):
    """The endpoint closed the connection before its answer was complete."""


class _Connection(asyncio.Protocol):
    """One connection to an endpoint's origin: one request at a time, answered in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.status = 0  # the final answer's status code, once its head has arrived
        self.reusable = False

    # asyncio's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():  # bytes nobody asked for
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"not an HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.reusable = False
        if self.status:  # answered, its body running until the close (no length given)
            self._answer(self.status)
        self._fail(ClosedEarly("the endpoint closed the connection before answering"))

    # httptools' side
    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status if status >= 200 else 0  # 1xx: an interim answer

    def on_message_complete(self) -> None:
        if self.status:
            self.reusable = self.parser.should_keep_alive()
            self._answer(self.status)

    # the client's side
    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, request: bytes) -> "asyncio.Future[int]":
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.status = 0
        self.reusable = False
        self.transport.write(request)
        return self.waiter

    def expire(self) -> None:
        self._fail(TimeoutError("no answer in time"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def _answer(self, status: int) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()


class Sender:
    """POSTs to webhook endpoints; `close()` when done."""

    def __init__(self, policy: urls.Policy, ssl_context: ssl.SSLContext | None = None) -> None:
        self.policy = policy
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """The answer's status code, within `timeout` seconds. Raises urls.RefusedURL (an
        address it may not call), OSError (no connection, or it broke) or TimeoutError."""
        where = target(url, self.policy)
        origin = (where.scheme, where.host, where.port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = self._reuse(origin)
        if connection is None:
            async with asyncio.timeout_at(deadline):
                connection = await self._connect(where)
        answer = connection.send(_request(where, body, headers))
        # a timer, not asyncio.timeout: this is every delivery's path, and it costs a tenth
        timer = loop.call_at(deadline, connection.expire)
        try:
            status = await answer
        except BaseException:  # an error, the timeout or a cancellation: not reused
            connection.close()
            raise
        finally:
            timer.cancel()
        if connection.reusable and connection.open:
            self._keep(origin, connection)
        else:
            connection.close()
        return status

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    def _reuse(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.open:
                return connection
        return None

    def _keep(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < IDLE_PER_ORIGIN:
            idle.append(connection)
        else:
            connection.close()

    async def _connect(self, where: Target) -> _Connection:
        """A new connection to the URL's address, or to one of the addresses its host name
        resolves to now, each checked."""
        if where.name is None:
            found = [where.host]
        else:
            resolved = await urls.addresses(where.name, where.port, self.policy)
            found = [str(address) for address in resolved]
        tls = self.ssl_context if where.scheme == "https" else None
        loop = asyncio.get_running_loop()
        error: OSError = OSError(f"{where.host} has no address")
        for address in found:
            try:
                _transport, connection = await loop.create_connection(
                    _Connection,
                    address,
                    where.port,
                    ssl=tls,
                    server_hostname=where.host if tls else None,
                )
            except OSError as exc:
                error = exc
                continue
            return connection
        raise error


def _request(where: Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"POST {where.path} HTTP/1.1",
        f"host: {where.host_header}",
        f"content-length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
