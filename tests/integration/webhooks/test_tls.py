"""Over TLS the sender connects to the checked address yet presents the URL's host: in SNI, in
`Host`, and as the name the certificate must be valid for."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhooks.addresses import AddressGuard
from webhooks.sender import Sender

HOST = "hooks.test"


def certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsReceiver:
    """An https receiver on 127.0.0.1 that records the SNI names and Host headers it sees."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = self._saw
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        self.port = 0

    def _saw(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TlsReceiver]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            self.hosts += [
                ln[5:].strip() for ln in head.split("\r\n") if ln.lower().startswith("host:")
            ]
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
        writer.close()


def sender_trusting(cert: Path) -> Sender:
    async def resolve(host: str, port: int) -> list[str]:
        assert host == HOST
        return ["127.0.0.1"]

    trust = ssl.create_default_context(cafile=str(cert))
    transport = httpx.AsyncHTTPTransport(
        verify=trust, limits=httpx.Limits(max_keepalive_connections=0)
    )
    guard = AddressGuard(allow_http=False, allow_hosts=[HOST], resolver=resolve)
    return Sender(guard, transport)


async def test_sni_host_and_certificate_name_the_urls_host(tmp_path: Path) -> None:
    """The receiver sees SNI and Host `hooks.test` although the connection went to 127.0.0.1."""
    cert, key = certificate(tmp_path, HOST)
    async with TlsReceiver(cert, key).running() as receiver:
        sender = sender_trusting(cert)
        outcome = await sender.send(f"https://{HOST}:{receiver.port}/hook", {}, b"{}")
        await sender.aclose()
    assert outcome.delivered, outcome.error
    assert receiver.sni == [HOST]
    assert receiver.hosts == [f"{HOST}:{receiver.port}"]


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    """Connecting by address does not relax verification: a certificate for another host
    fails the attempt."""
    cert, key = certificate(tmp_path, "other.test")
    async with TlsReceiver(cert, key).running() as receiver:
        sender = sender_trusting(cert)
        outcome = await sender.send(f"https://{HOST}:{receiver.port}/hook", {}, b"{}")
        await sender.aclose()
    assert not outcome.delivered
    assert outcome.error is not None
    assert "certificate" in outcome.error.lower() or "hostname" in outcome.error.lower()
    assert receiver.hosts == []
    assert not outcome.permanent  # a certificate can be fixed: retried
