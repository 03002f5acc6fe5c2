"""STARTTLS and implicit TLS against aiosmtpd with a certificate made for the test: the server's
certificate is verified (a CA file from settings), an untrusted one is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.errors import TransportError
from syndicate.models import DeliveryState
from syndicate.settings import Smtp
from tests.conftest import RecordingHandler, free_port
from tests.support.delivery import note


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _message() -> OutboundMessage:
    return note("ann@example.org", text="private", subject="tls")


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate(certificate, security: str) -> None:
    handler = RecordingHandler()
    context = _server_context(certificate)
    options = (
        {"tls_context": context, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": context}
    )
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        config = Smtp(
            host="127.0.0.1",
            port=controller.port,
            security=security,
            ca_file=str(certificate[0]),
            connections=1,
        )
        transport = SmtpTransport(config)
        with transport:
            [result] = transport.send_messages([_message()])
        assert result.state is DeliveryState.SENT
        assert len(handler.messages) == 1

        untrusting = SmtpTransport(config.model_copy(update={"ca_file": ""}))
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.open()
    finally:
        controller.stop()
