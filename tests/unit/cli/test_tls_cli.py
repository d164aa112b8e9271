"""`s3ipfs tls issue`: SANs, self-signed and CA-signed certificates that verify, file modes, refusals."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.cli.main import main


def _make_ca(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _handshake(cert: Path, key: Path, cafile: Path, server_hostname: str) -> None:
    """A real TLS handshake over a socket pair: the server serves cert/key, the client trusts only `cafile`."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cafile))
    a, b = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                s.recv(1)
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=server_hostname) as c:
            c.sendall(b"x")
    finally:
        thread.join(10)


def _sans(cert_path: Path) -> tuple[list[str], list[str]]:
    cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def test_self_signed_has_every_name_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tls"
    code = main(
        ["tls", "issue", "--domain", "s3.example.org", "--domain", "localhost", "--ip", "127.0.0.1", "--ip", "::1",
         "--out-dir", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert f'tls_certfile: "{out / "cert.pem"}"' in printed and "tls_min_version" in printed
    dns, ips = _sans(out / "cert.pem")
    assert dns == ["s3.example.org", "*.s3.example.org", "localhost", "*.localhost"]
    assert ips == ["127.0.0.1", "::1"]
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
    assert (out / "cert.pem").stat().st_mode & 0o777 == 0o644
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    _handshake(out / "cert.pem", out / "key.pem", out / "cert.pem", "localhost")
    _handshake(out / "cert.pem", out / "key.pem", out / "cert.pem", "bucket.s3.example.org")  # virtual host
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(out / "cert.pem", out / "key.pem", out / "cert.pem", "other.example.org")


def test_signed_by_a_ca_verifies_with_the_ca_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_cert, ca_key = _make_ca(tmp_path / "ca")
    out = tmp_path / "tls"
    args = ["tls", "issue", "--domain", "localhost", "--ca-cert", str(ca_cert), "--ca-key", str(ca_key)]
    assert main([*args, "--out-dir", str(out), "--days", "30", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    chain = x509.load_pem_x509_certificates((out / "cert.pem").read_bytes())
    assert len(chain) == 2  # leaf then the CA: the chain a server sends
    leaf, ca = chain
    assert leaf.issuer == ca.subject and int(result["serial"], 16) == leaf.serial_number
    leaf.verify_directly_issued_by(ca)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in {30, 29}
    _handshake(out / "cert.pem", out / "key.pem", ca_cert, "localhost")


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "tls")
    assert main(["tls", "issue", "--out-dir", out]) == 2  # no name at all
    assert main(["tls", "issue", "--ip", "1.2.3", "--out-dir", out]) == 2
    assert main(["tls", "issue", "--domain", "a b", "--out-dir", out]) == 2
    assert main(["tls", "issue", "--domain", "x", "--ca-cert", out, "--out-dir", out]) == 2
    assert main(["tls", "issue", "--domain", "x", "--days", "0", "--out-dir", out]) == 2
    assert main(["tls", "issue", "--domain", "x", "--out-dir", out]) == 0
    assert main(["tls", "issue", "--domain", "x", "--out-dir", out]) == 1  # exists
    assert main(["tls", "issue", "--domain", "x", "--out-dir", out, "--force"]) == 0
    other_ca, _ = _make_ca(tmp_path / "ca1")
    _, wrong_key = _make_ca(tmp_path / "ca2")
    code = main(["tls", "issue", "--domain", "x", "--ca-cert", str(other_ca), "--ca-key", str(wrong_key),
                 "--out-dir", str(tmp_path / "o2")])  # fmt: skip
    assert code == 2
    assert "does not belong" in capsys.readouterr().err
