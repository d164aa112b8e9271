"""ReloadableTls: the minimum version is enforced, a reload swaps the pair for new handshakes, a bad pair stays out."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from appliance.api.tls import ReloadableTls, TlsHypercornConfig
from tests.support.tls import self_signed


def _served_serial(tls: ReloadableTls, *, max_version: ssl.TLSVersion | None = None) -> int:
    """Handshake over a socket pair against tls.context; the serial of the certificate the server sent."""
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        client_ctx.maximum_version = max_version
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)

    def serve() -> None:
        try:
            with tls.context.wrap_socket(a, server_side=True) as s:
                s.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b) as c:
            der = c.getpeercert(binary_form=True)
            c.sendall(b"x")
    finally:
        thread.join(10)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_min_version_13_refuses_a_12_client(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ReloadableTls("s3", str(cert), str(key), "1.3")
    with pytest.raises(ssl.SSLError):
        _served_serial(tls, max_version=ssl.TLSVersion.TLSv1_2)
    assert _served_serial(tls) == _serial(cert)
    tls12 = ReloadableTls("s3", str(cert), str(key), "1.2")
    assert _served_serial(tls12, max_version=ssl.TLSVersion.TLSv1_2) == _serial(cert)


def test_reload_serves_the_new_pair_and_keeps_the_old_on_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = self_signed(tmp_path / "live")
    tls = ReloadableTls("s3", str(cert), str(key), "1.2")
    old = _serial(cert)
    new_cert, new_key = self_signed(tmp_path / "next")
    cert.write_bytes(new_cert.read_bytes())
    key.write_bytes(new_key.read_bytes())
    assert tls.reload() is True
    assert _served_serial(tls) == _serial(new_cert) != old

    good = _serial(new_cert)
    other_cert, _other_key = self_signed(tmp_path / "other")
    cert.write_bytes(other_cert.read_bytes())  # a certificate whose key is not in key.pem
    with caplog.at_level(logging.ERROR, logger="appliance.tls"):
        assert tls.reload() is False
    assert "keeping the old one" in caplog.text
    assert _served_serial(tls) == good
    cert.write_text("not a certificate")
    assert tls.reload() is False
    key.unlink()
    assert tls.reload() is False
    assert _served_serial(tls) == good


def test_hypercorn_config_serves_our_context(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ReloadableTls("admin", str(cert), str(key), "1.3")
    hc = TlsHypercornConfig(tls)
    assert hc.ssl_enabled and hc.create_ssl_context() is tls.context
    assert TlsHypercornConfig().create_ssl_context() is None
