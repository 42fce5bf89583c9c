"""Which webhook URLs loanapi may call (SSRF protection, EVENTS.md "URLs").

`https` only; no loopback, private, link-local or otherwise internal address, checked when an
endpoint is saved (for a host that resolves then) and again before every connection, on the
addresses the name resolves to at that moment, which are then the ones connected to (a name
cannot resolve to a public address for the check and a private one for the connection).
`LOANAPI_WEBHOOK_ALLOW_HTTP` and `LOANAPI_WEBHOOK_ALLOW_PRIVATE` relax the first two for local
development and tests; cloud metadata addresses are refused whatever the settings.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class RefusedURL(ValueError):
    """Why a URL may not be called; the message is shown to the admin."""


@dataclass(frozen=True, slots=True)
class Policy:
    allow_http: bool = False
    allow_private: bool = False


def check_syntax(url: str, policy: Policy) -> tuple[str, str, int]:
    """The URL's scheme, host and port, or RefusedURL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedURL(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        raise RefusedURL("must be an https URL" if scheme != "https" else "not a valid URL")
    host = parts.hostname
    if not host:
        raise RefusedURL("must name a host")
    if parts.username is not None or parts.password is not None:
        raise RefusedURL("must not carry credentials (user:password@)")
    return scheme, host, port or (443 if scheme == "https" else 80)


def check_address(address: IPAddress, policy: Policy) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        raise RefusedURL(f"{address} is a cloud metadata address")
    if policy.allow_private:
        return
    internal = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
    if internal:
        raise RefusedURL(f"{address} is not a public address (loopback, private or link-local)")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


RESOLVE_SECONDS = 5.0


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """The name's addresses (OSError when it does not resolve, also within RESOLVE_SECONDS)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise OSError(f"{host} did not resolve within {RESOLVE_SECONDS:.0f} s") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_saved(url: str, policy: Policy) -> None:
    """When an endpoint is saved: the URL's form, and its addresses if its name resolves now
    (one that does not resolve yet is accepted: it is checked at every connection)."""
    host = check_literal(url, policy)
    if host is None:
        return
    try:
        await addresses(host, check_syntax(url, policy)[2], policy)
    except OSError:
        return


def check_literal(url: str, policy: Policy) -> str | None:
    """The URL's form, and its address when it names one (an IP literal is connected to as it
    is); otherwise the host name, whose addresses `addresses` checks."""
    _scheme, host, _port = check_syntax(url, policy)
    literal = _literal(host)
    if literal is None:
        return host
    check_address(literal, policy)
    return None


async def addresses(host: str, port: int, policy: Policy) -> list[IPAddress]:
    """At a connection: every address the name resolves to now, each checked (RefusedURL, or
    OSError when it does not resolve); the connection is made to these, not to whatever the
    name resolves to a moment later."""
    resolved = await _resolve(host, port)
    for address in resolved:
        check_address(address, policy)
    return resolved
