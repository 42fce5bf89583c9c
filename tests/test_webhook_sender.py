"""The webhook sender (loanapi.webhooks.sender) against small servers that answer as told: kept-
alive connections reused, redirects not followed, answers whose length is the connection's,
endpoints that close, garble, or never answer, and TLS with the certificate checked."""

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loanapi.webhooks import urls
from loanapi.webhooks.sender import ClosedEarly, Sender

POLICY = urls.Policy(allow_http=True, allow_private=True)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


@dataclass
class Server:
    """Answers each request with what `answer(request)` returns (b"": closes the connection
    instead; None: never answers)."""

    answer: Callable[[bytes], bytes | None]
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                reply = self.answer(self.requests[-1])
                if reply is None:
                    await asyncio.sleep(3600)
                    break
                writer.write(reply)
                await writer.drain()
                if not reply or b"connection: close" in reply.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/hook") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Server]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Callable[[bytes], bytes | None], tls: ssl.SSLContext | None = None):
        server = Server(answer, tls)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
        server.port = listening.sockets[0].getsockname()[1]
        servers.append(listening)
        return server

    yield start  # type: ignore[misc]
    for listening in servers:
        listening.close()


async def post(sender: Sender, url: str, body: bytes = b'{"id": "evt_1"}') -> int:
    headers = {"content-type": "application/json", "webhook-id": "1"}
    return await sender.post(url, body, headers, timeout=1)


async def test_a_kept_alive_connection_carries_the_next_deliveries(serve):
    server = await serve(lambda request: NO_CONTENT)
    sender = Sender(POLICY)
    try:
        assert [await post(sender, server.url()) for _ in range(3)] == [204, 204, 204]
    finally:
        await sender.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /hook HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}\r\n".encode() in first
    assert b"webhook-id: 1\r\n" in first
    assert b"content-length: 15\r\n" in first
    assert first.endswith(b'\r\n\r\n{"id": "evt_1"}')


async def test_a_redirect_is_an_answer_not_followed(serve):
    elsewhere = await serve(lambda request: NO_CONTENT)
    moved = f"HTTP/1.1 302 Found\r\nlocation: {elsewhere.url()}\r\ncontent-length: 0\r\n\r\n"
    server = await serve(lambda request: moved.encode())
    sender = Sender(POLICY)
    try:
        assert await post(sender, server.url()) == 302
    finally:
        await sender.close()
    assert elsewhere.requests == []


async def test_an_answer_whose_body_runs_to_the_close_and_a_chunked_one(serve):
    until_close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthanks, all of it"
    chunked = b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n5\r\nthank\r\n0\r\n\r\n"
    first, second = await serve(lambda r: until_close), await serve(lambda r: chunked)
    sender = Sender(POLICY)
    try:
        assert await post(sender, first.url()) == 200
        assert [await post(sender, second.url()) for _ in range(2)] == [201, 201]
    finally:
        await sender.close()
    assert second.connections == 1  # the chunked answer ended where it said, the connection kept


async def test_endpoints_that_close_garble_or_never_answer(serve):
    closing = await serve(lambda request: b"")
    garbled = await serve(lambda request: b"SMTP ready\r\n\r\n")
    silent = await serve(lambda request: None)
    sender = Sender(POLICY)
    try:
        with pytest.raises(ClosedEarly):
            await post(sender, closing.url())
        with pytest.raises(ConnectionError, match="not an HTTP answer"):
            await post(sender, garbled.url())
        with pytest.raises(TimeoutError):
            await post(sender, silent.url())
        with pytest.raises(ConnectionRefusedError):  # nobody listening
            await post(sender, f"http://127.0.0.1:{_closed_port()}/")
    finally:
        await sender.close()
    assert not any(sender._idle.values())  # none of these connections is kept


async def test_a_refused_address_is_never_connected_to(serve):
    server = await serve(lambda request: NO_CONTENT)
    sender = Sender(urls.Policy(allow_http=True))  # loopback not allowed
    try:
        with pytest.raises(urls.RefusedURL, match="not a public address"):
            await post(sender, server.url())
    finally:
        await sender.close()
    assert server.connections == 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_checks_the_certificate(serve, tmp_path):
    cert, key = _certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = await serve(lambda request: NO_CONTENT, tls=tls)
    trusting = ssl.create_default_context(cafile=str(cert))
    sender, stranger = Sender(POLICY, trusting), Sender(POLICY)
    try:
        assert [await post(sender, server.url()) for _ in range(2)] == [204, 204]
        with pytest.raises(ssl.SSLCertVerificationError):  # not signed by a known authority
            await post(stranger, server.url())
    finally:
        await sender.close()
        await stranger.close()
    assert len(server.requests) == 2
