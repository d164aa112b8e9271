"""`s3ipfs doctor` checks that need no running daemon, the exit codes and the bundle's redaction."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.cli import doctor_checks
from appliance.cli.bundle import REDACTED, Redactor
from appliance.cli.doctor import EXIT_FAIL, EXIT_OK, EXIT_WARN, exit_code
from appliance.cli.doctor_checks import FAIL, OK, WARN, Check
from appliance.cli.main import main
from appliance.config import load_config
from appliance.state.lmdb_store import LmdbMetadataStore


def _config(tmp_path: Path, **extra: object) -> Path:
    data = {"state_dir": str(tmp_path / "state"), "ipfs": {"api_url": "http://127.0.0.1:9"}, **extra}
    path = tmp_path / "s3ipfs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cert(directory: Path, days: float) -> tuple[Path, Path, Path]:
    """cert.pem valid for `days` (negative: expired), its key.pem and an unrelated other.pem key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    private = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    (directory / "key.pem").write_bytes(key.private_bytes(pem, private, none))
    other = ec.generate_private_key(ec.SECP256R1())
    (directory / "other.pem").write_bytes(other.private_bytes(pem, private, none))
    return directory / "cert.pem", directory / "key.pem", directory / "other.pem"


def test_exit_codes() -> None:
    assert exit_code([Check("a", OK, "")]) == EXIT_OK == 0
    assert exit_code([Check("a", OK, ""), Check("b", WARN, "")]) == EXIT_WARN == 1
    assert exit_code([Check("a", WARN, ""), Check("b", FAIL, "")]) == EXIT_FAIL == 2


def test_an_invalid_config_fails_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, s3={"prot": 1})
    assert main(["doctor", "--config", str(path), "--json"]) == 2
    checks = json.loads(capsys.readouterr().out)
    assert checks[0]["name"] == "config" and checks[0]["status"] == FAIL
    assert "s3.prot" in checks[0]["detail"] and "config check" in checks[0]["fix"]


def test_unreachable_node_fails_with_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    code = main(["doctor", "--config", str(path), "--timeout", "2"])
    out = capsys.readouterr().out
    assert code == 2
    assert any(line.startswith("FAIL  ipfs") for line in out.splitlines()), out
    assert "fix: systemctl status s3ipfs-ipfs" in out


@pytest.mark.parametrize(
    ("days", "key", "status", "words"),
    [
        (365, "key.pem", OK, "the key matches"),
        (5, "key.pem", WARN, "days"),
        (-1, "key.pem", FAIL, "expired"),
        (365, "other.pem", FAIL, "does not belong"),
    ],
)
def test_tls_expiry_and_key_match(tmp_path: Path, days: float, key: str, status: str, words: str) -> None:
    cert, _key, _other = _cert(tmp_path, days)
    path = _config(tmp_path, s3={"tls_certfile": str(cert), "tls_keyfile": str(tmp_path / key)})
    checks = doctor_checks._tls(load_config(path, env={}))
    assert checks[0].status == status and words in checks[0].detail, checks


def test_state_dir_permissions(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path), env={})
    assert doctor_checks._state_dir(config)[0].status == WARN  # not created yet
    state = tmp_path / "state"
    state.mkdir()
    assert doctor_checks._state_dir(config)[0].status == OK
    os.chmod(state, 0o777)
    bad = doctor_checks._state_dir(config)
    assert bad[0].status == FAIL and bad[0].fix == f"chmod o-w {state}"
    os.chmod(state, 0o755)
    config.credentials_path.parent.mkdir(parents=True)
    config.credentials_path.write_text("{}")
    os.chmod(config.credentials_path, 0o644)
    assert any(c.status == FAIL and "root key" in c.detail for c in doctor_checks._state_dir(config))


def test_metadata_store_opened_read_only(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path), env={})
    assert doctor_checks._lmdb(config)[0].status == WARN  # no store yet
    LmdbMetadataStore(config.meta_path, map_size=config.metadata.map_size).close()
    check = doctor_checks._lmdb(config)[0]
    assert check.status == OK and "schema" in check.detail and "map" in check.detail


def test_redactor_replaces_known_values_and_patterns() -> None:
    redact = Redactor(["hunter2-long", ""])
    text = (
        "password: hunter2-long\n"
        "Authorization: Bearer abcdefghijklmnop\n"
        "token=tok_1234567890\n"
        "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here\n"
        f"psk {'ab' * 32}\n"
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl\n"
        "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
        "peer 12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh stays\n"
    )
    out = redact(text)
    for secret in (
        "hunter2-long",
        "abcdefghijklmnop",
        "tok_1234567890",
        "wJalrXUtnFEMI",
        "ab" * 32,
        "eyJhbGci",
        "MIGH",
    ):
        assert secret not in out, secret
    assert "password: " + REDACTED in out and "12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh" in out
