"""TLS and AUTH for the SMTP tests: a self-signed certificate for 127.0.0.1 and an
aiosmtpd authenticator that knows one login."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed(tmp_path) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for 127.0.0.1 in tmp_path: a server's SSL context and the
    certificate's path (for a client to trust it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            # Valid whenever the suite runs: OpenSSL checks it by the system's clock.
            .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2099, 12, 31, tzinfo=UTC))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def check_login(server, session, envelope, mechanism, auth_data):
    """aiosmtpd authenticator: only mailer / s3cret/pass logs in."""
    ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret/pass"
    return AuthResult(success=ok, handled=False)
