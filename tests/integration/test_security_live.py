"""`s3ipfs serve` with 2 workers on a real IPFS node: allow lists and trusted proxies, rate limits shared by the
workers (boto3 sees 503 SlowDown), TLS minimum version on both listeners, certificate reload on SIGHUP under load."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509

from appliance.ipfsconn.devnode import LocalNode, jsipfs_path, kubo_path
from tests.support import raw
from tests.support.gateway import Gateway, gateway_command, running_gateway
from tests.support.nodes import start_local_node, stop_nodes
from tests.support.tls import self_signed

pytestmark = [
    pytest.mark.skipif(
        kubo_path() is None and not jsipfs_path().exists(), reason="no IPFS node installed: run scripts/setup.sh"
    ),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

_NO_RETRIES = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    started = start_local_node(tmp_path_factory.mktemp("security-node"))
    try:
        yield started
    finally:
        stop_nodes([started])


def _s3(gw: Gateway, **kwargs: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=gw.secret_key,
        region_name="us-east-1",
        config=_NO_RETRIES,
        **kwargs,
    )


def _signed_get(gw: Gateway, *, headers: dict[str, str] | None = None, key: str = "", verify: bool = True) -> Any:
    """A signed GET / on a fresh connection (so that both workers get some)."""
    signed = raw.signed_headers(
        "GET",
        f"{gw.endpoint}/",
        access_key=key or gw.access_key,
        secret_key=gw.secret_key if not key else "not-the-secret",
        headers=dict(headers or {}),
    )
    with httpx.Client(timeout=30.0, verify=verify) as client:
        return client.get(f"{gw.endpoint}/", headers=signed)


# ---- allow/deny and trusted proxies ---------------------------------------------------------------------------


def test_allow_list_refuses_loopback_and_trusted_proxy_forwarding(tmp_path: Path, node: LocalNode) -> None:
    extra = {"s3": {"allow_cidrs": ["10.0.0.0/8"], "trusted_proxies": ["127.0.0.1/32"]}}
    with running_gateway(tmp_path, node, workers=2, extra_config=extra) as gw:
        s3 = _s3(gw)
        with pytest.raises(ClientError) as refused:
            s3.list_buckets()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        # 127.0.0.1 is a trusted proxy: the address it forwards is the client's.
        assert _signed_get(gw, headers={"X-Forwarded-For": "10.20.30.40"}).status_code == 200
        assert _signed_get(gw, headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 403
        assert _signed_get(gw, headers={"X-Forwarded-For": "10.9.9.9, 192.0.2.1"}).status_code == 403  # rightmost
        assert _signed_get(gw, headers={"X-Forwarded-For": "garbage"}).status_code == 403  # the proxy itself
        s3.close()


# ---- rate limits ------------------------------------------------------------------------------------------------

_LIMITS = {
    "ratelimit": {"enabled": True, "per_key_rps": 2.0, "per_key_burst": 6, "per_ip_rps": 0.5, "per_ip_burst": 3},
    "s3": {"trusted_proxies": ["127.0.0.1/32"]},
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, node: LocalNode) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("limited"), node, workers=2, extra_config=_LIMITS) as gw:
        yield gw


def _metric(gw: Gateway, bucket: str) -> float:
    text = httpx.get(f"{gw.admin_url}/metrics", headers=gw.admin_headers).text
    found = re.search(rf's3ipfs_ratelimit_throttled_total\{{bucket="{bucket}"\}} ([0-9.e+]+)', text)
    assert found, text[-2000:]
    return float(found.group(1))


def test_a_hammering_client_does_not_slow_down_another(limited: Gateway) -> None:
    """Forged signatures from one address (its own bucket) hammer away until slowed down several times, while the
    root key's requests, at a pace within its rate, all pass."""
    hammering = threading.Event()
    hammering.set()
    hammer_codes: list[int] = []

    def hammer() -> None:
        deadline = time.monotonic() + 120
        try:
            while hammer_codes.count(503) < 5 and time.monotonic() < deadline:
                response = _signed_get(limited, key="AKIDFORGEDFORGED", headers={"X-Forwarded-For": "198.51.100.7"})
                hammer_codes.append(response.status_code)
        finally:
            hammering.clear()

    thread = threading.Thread(target=hammer)
    thread.start()
    good: list[int] = []
    s3 = _s3(limited)
    try:
        while hammering.is_set() or len(good) < 3:
            good.append(s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"])
            time.sleep(0.6)  # under the key's 2 requests/s
    finally:
        s3.close()
        thread.join(130)
    assert hammer_codes.count(503) == 5, hammer_codes  # refused for its signature, then slowed down
    assert 403 in hammer_codes
    assert good == [200] * len(good)
    assert _metric(limited, "ip") >= 5


def test_boto3_gets_slow_down_and_both_workers_share_the_budget(limited: Gateway) -> None:
    """Several threads on fresh connections (spread over both workers) spend the root key's one budget."""
    codes: list[int] = []
    retry_after: list[str] = []
    lock = threading.Lock()

    deadline = time.monotonic() + 90

    def burst() -> None:
        s3 = _s3(limited)
        while codes.count(503) < 4 and time.monotonic() < deadline:  # a slow machine needs more tries
            try:
                s3.list_buckets()
                code = 200
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "SlowDown"
                code = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                with lock:
                    retry_after.append(exc.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after", ""))
            with lock:
                codes.append(code)
        s3.close()

    before = _metric(limited, "key")
    started = time.monotonic()
    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(100)
    elapsed = time.monotonic() - started
    admitted = codes.count(200)
    assert set(codes) <= {200, 503}
    assert codes.count(503) >= 4 and all(value.isdigit() and int(value) >= 1 for value in retry_after)
    # One budget for both workers: never more than the burst plus what refilled meanwhile (+1 for rounding).
    assert admitted <= 6 + 2.0 * elapsed + 1
    assert _metric(limited, "key") - before == codes.count(503)


# ---- TLS --------------------------------------------------------------------------------------------------------


def _serial_served(port: int, *, max_version: ssl.TLSVersion | None = None) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        ctx.maximum_version = max_version
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, ctx.wrap_socket(sock) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory, node: LocalNode) -> Iterator[tuple[Gateway, Path, Path]]:
    directory = tmp_path_factory.mktemp("tls-gw")
    cert, key = self_signed(directory / "s3-tls")
    admin_cert, admin_key = self_signed(directory / "admin-tls")
    extra = {
        "s3": {"tls_certfile": str(cert), "tls_keyfile": str(key), "tls_min_version": "1.3"},
        "admin": {"tls_certfile": str(admin_cert), "tls_keyfile": str(admin_key), "tls_min_version": "1.3"},
    }
    with running_gateway(directory, node, workers=2, extra_config=extra) as gw:
        yield gw, cert, key


def test_tls_12_is_refused_when_the_minimum_is_13(tls_gateway: tuple[Gateway, Path, Path]) -> None:
    gw, cert, _key = tls_gateway
    assert gw.endpoint.startswith("https://") and gw.admin_url.startswith("https://")
    for url in (gw.endpoint, gw.admin_url):
        with pytest.raises(ssl.SSLError):
            _serial_served(_port(url), max_version=ssl.TLSVersion.TLSv1_2)
    assert _serial_served(_port(gw.endpoint)) == _serial(cert)
    assert httpx.get(f"{gw.admin_url}/health", verify=False).json() == {"status": "ok"}
    # The CLI finds the admin API over HTTPS from the same config, trusting the listener's own certificate.
    cli = subprocess.run(
        gateway_command(gw.config_path, "pins summary --json"), capture_output=True, text=True, timeout=60, check=False
    )
    assert cli.returncode == 0, cli.stderr


def _wait_for_serial(port: int, serial: int, *, within: float = 30.0, in_a_row: int = 6) -> None:
    """Until `in_a_row` fresh connections in a row (landing on either worker) present `serial`."""
    deadline = time.monotonic() + within
    streak = 0
    while streak < in_a_row:
        streak = streak + 1 if _serial_served(port) == serial else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"serial {serial:x} not served on port {port} within {within:.0f} s")
        if not streak:
            time.sleep(0.1)


def _log_count(gw: Gateway, text: str) -> int:
    return gw.log_tail(10**7).count(text)


def test_reload_under_load_then_a_bad_certificate_keeps_the_old(
    tls_gateway: tuple[Gateway, Path, Path], tmp_path: Path
) -> None:
    gw, cert, key = tls_gateway
    stop = threading.Event()
    failures: list[str] = []
    done = [0]

    def keep_alive_client() -> None:  # one boto3 client: its pooled connection stays open across the reload
        s3 = _s3(gw, verify=False)
        while not stop.is_set():
            try:
                s3.list_buckets()
                done[0] += 1
            except Exception as exc:
                failures.append(f"keep-alive: {exc!r}")
        s3.close()

    def fresh_connections() -> None:  # a new TLS handshake per request
        while not stop.is_set():
            try:
                response = _signed_get(gw, verify=False)
                if response.status_code != 200:
                    failures.append(f"fresh: {response.status_code}")
                done[0] += 1
            except Exception as exc:
                failures.append(f"fresh: {exc!r}")

    threads = [threading.Thread(target=keep_alive_client), threading.Thread(target=fresh_connections)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        new_cert, new_key = self_signed(tmp_path / "next")
        key.write_bytes(new_key.read_bytes())
        cert.write_bytes(new_cert.read_bytes())
        os.kill(gw.process.pid, signal.SIGHUP)  # what `systemctl reload s3ipfs` sends
        _wait_for_serial(_port(gw.endpoint), _serial(new_cert))

        reloaded = _log_count(gw, "keeping the old one")
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        os.kill(gw.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while _log_count(gw, "keeping the old one") < reloaded + 2:  # one line per worker
            assert time.monotonic() < deadline, gw.log_tail()
            time.sleep(0.2)
        for _ in range(6):
            assert _serial_served(_port(gw.endpoint)) == _serial(new_cert)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert done[0] > 10
    assert gw.process.poll() is None  # SIGHUP neither stopped the main process nor a worker
    assert "died" not in gw.log_tail(10**7)
