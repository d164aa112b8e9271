"""The checks of `s3ipfs doctor`: each returns Check rows (OK/WARN/FAIL, what was found, how to fix it)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from appliance.config import AppConfig
from appliance.state.lmdb_store import LmdbMetadataStore
from appliance.wiring import cluster_pinner, kubo_client

__all__ = ["FAIL", "OK", "WARN", "Check", "run_checks"]

OK, WARN, FAIL = "OK", "WARN", "FAIL"
_SKEW_WARN = 30.0  # seconds; SigV4 allows auth.max_skew_seconds, but certificates and logs suffer earlier
_DISK_WARN, _DISK_FAIL = 0.10, 0.02  # free fraction
_MAP_WARN, _MAP_FAIL = 0.85, 0.95
_CERT_WARN_DAYS = 14


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return asdict(self)


async def run_checks(config: AppConfig, wait: float = 5.0) -> list[Check]:
    """Every check but the config's own (the caller loaded it), in a fixed order."""
    checks: list[Check] = []
    checks += _state_dir(config)
    checks += await asyncio.to_thread(_ports, config)
    checks += _disk(config)
    checks += _lmdb(config)
    checks += await _node(config, wait)
    checks += await _cluster(config, wait)
    checks += await _clock(config, wait)
    checks += _tls(config)
    return checks


# ---- files -----------------------------------------------------------------------------------------------------


def _state_dir(config: AppConfig) -> list[Check]:
    path = Path(config.state_dir)
    if not path.exists():
        return [Check("state dir", WARN, f"{path} does not exist yet", "it is created at the first start")]
    info = path.stat()
    out: list[Check] = []
    owner = _user(info.st_uid)
    if info.st_uid != os.geteuid():
        out.append(Check("state dir", WARN, f"{path} is owned by {owner}, not by the user running doctor",
                         "run doctor as the service user: sudo -u s3ipfs s3ipfs doctor"))  # fmt: skip
    if info.st_mode & stat.S_IWOTH:
        out.append(Check("state dir", FAIL, f"{path} is writable by everyone", f"chmod o-w {path}"))
    elif not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        out.append(Check("state dir", FAIL, f"{path} is not readable and writable by this user",
                         f"chown -R s3ipfs:s3ipfs {path}"))  # fmt: skip
    creds = config.credentials_path
    if creds.exists() and creds.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        out.append(Check("state dir", FAIL, f"the root key file {creds} is readable by others", f"chmod 600 {creds}"))
    if not out:
        out.append(Check("state dir", OK, f"{path} (owner {owner}, mode {stat.S_IMODE(info.st_mode):o})"))
    return out


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _disk(config: AppConfig) -> list[Check]:
    out: list[Check] = []
    for what, path in (("state dir", Path(config.state_dir)), ("IPFS repo", config.kubo_repo_path)):
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is None:
            continue
        vfs = os.statvfs(existing)
        free = vfs.f_bavail * vfs.f_frsize
        fraction = free / (vfs.f_blocks * vfs.f_frsize) if vfs.f_blocks else 0.0
        detail = f"{what} {path}: {free / 1024**3:.1f} GiB free ({fraction:.0%})"
        if fraction < _DISK_FAIL:
            out.append(Check("disk", FAIL, detail, "free space or grow the file system now"))
        elif fraction < _DISK_WARN:
            out.append(Check("disk", WARN, detail, "free space or grow the file system"))
        else:
            out.append(Check("disk", OK, detail))
    return out


def _lmdb(config: AppConfig) -> list[Check]:
    path = config.meta_path
    if not (path / "data.mdb").exists():
        return [Check("metadata", WARN, f"no metadata store at {path} yet", "it is created at the first start")]
    try:
        store = LmdbMetadataStore(path, map_size=config.metadata.map_size, readonly=True)
    except Exception as exc:
        return [Check("metadata", FAIL, f"cannot open {path} read-only: {exc}",
                      "check metadata.path and its permissions; see docs/operations.md")]  # fmt: skip
    try:
        stats = store.stats()
        version = store.schema_version()
    finally:
        store.close()
    used = stats["map_used_bytes"] / stats["map_size_bytes"]
    detail = (f"schema {version}, {stats['objects']} objects, map {used:.0%} of {stats['map_size_bytes'] / 1024**3:.1f}"
              f" GiB used, {stats.get('readers', 0)} readers")  # fmt: skip
    if used >= _MAP_FAIL:
        return [Check("metadata", FAIL, detail, "raise metadata.map_size and restart s3ipfs")]
    if used >= _MAP_WARN:
        return [Check("metadata", WARN, detail, "raise metadata.map_size before it fills up")]
    return [Check("metadata", OK, detail)]


def _tls(config: AppConfig) -> list[Check]:
    if not config.s3.tls_certfile:
        return [Check("tls", OK, "S3 is served over plain HTTP (no s3.tls_certfile)")]
    try:
        cert = x509.load_pem_x509_certificate(Path(config.s3.tls_certfile).read_bytes())
        key = serialization.load_pem_private_key(Path(config.s3.tls_keyfile).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        return [Check("tls", FAIL, f"cannot read the S3 certificate or key: {exc}",
                      "check s3.tls_certfile/s3.tls_keyfile (PEM, unencrypted key, readable by s3ipfs)")]  # fmt: skip
    out: list[Check] = []
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, pub) != key.public_key().public_bytes(der, pub):
        out.append(Check("tls", FAIL, "s3.tls_keyfile does not belong to s3.tls_certfile",
                         "configure the key the certificate was issued for"))  # fmt: skip
    days = (cert.not_valid_after_utc.timestamp() - time.time()) / 86400
    when = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    if days <= 0:
        out.append(Check("tls", FAIL, f"the S3 certificate expired on {when}", "renew it and restart s3ipfs"))
    elif days < _CERT_WARN_DAYS:
        out.append(Check("tls", WARN, f"the S3 certificate expires on {when} ({days:.0f} days)", "renew it soon"))
    else:
        out.append(Check("tls", OK, f"the S3 certificate expires on {when}; the key matches"))
    return out


# ---- network -----------------------------------------------------------------------------------------------------


def _ports(config: AppConfig) -> list[Check]:
    out: list[Check] = []
    for what, host, port in (("s3", config.s3.host, config.s3.port), ("admin", config.admin.host, config.admin.port)):
        probe = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        listening = False
        with contextlib.suppress(OSError), socket.create_connection((probe, port), timeout=1.0):
            listening = True
        if not listening:
            out.append(Check("ports", WARN, f"{what} port {host}:{port}: nothing listens (s3ipfs is not running)",
                             "systemctl start s3ipfs"))  # fmt: skip
            continue
        ours = _is_ours(what, probe, port, config.s3.scheme)
        if ours:
            out.append(Check("ports", OK, f"{what} port {host}:{port}: served by s3ipfs"))
        else:
            out.append(Check("ports", FAIL, f"{what} port {host}:{port}: in use by another program",
                             f"stop it (ss -ltnp 'sport = :{port}') or choose another {what}.port"))  # fmt: skip
    return out


def _is_ours(what: str, host: str, port: int, scheme: str) -> bool:
    try:
        if what == "admin":
            reply = httpx.get(f"http://{host}:{port}/health", timeout=2.0)
            return bool(reply.headers.get("content-type", "").startswith("application/json")) and bool(
                reply.json() == {"status": "ok"}
            )
        reply = httpx.get(f"{scheme}://{host}:{port}/", timeout=2.0, verify=False)  # noqa: S501 - identify only
        return "x-amz-request-id" in reply.headers
    except (httpx.HTTPError, ValueError):
        return False


async def _guard(name: str, call: Callable[[], Awaitable[list[Check]]], fix: str, wait: float) -> list[Check]:
    try:
        return await asyncio.wait_for(call(), wait)
    except TimeoutError:
        return [Check(name, FAIL, f"no answer within {wait:.0f} s", fix)]
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return [Check(name, FAIL, str(message)[:300], fix)]


async def _node(config: AppConfig, wait: float) -> list[Check]:
    async def probe() -> list[Check]:
        async with kubo_client(config) as kubo:
            version = await kubo.ping()
            repo = await kubo.repo_stat()
        detail = f"{config.ipfs.api_url}: version {version}, repo {repo.repo_size / 1024**3:.2f} GiB, " + (
            f"{repo.repo_size / repo.storage_max:.0%} of StorageMax" if repo.storage_max else "no StorageMax"
        )
        if repo.storage_max and repo.repo_size / repo.storage_max > 0.9:
            return [Check("ipfs", WARN, detail, "raise Datastore.StorageMax or add disk")]
        return [Check("ipfs", OK, detail)]

    return await _guard("ipfs", probe, "systemctl status s3ipfs-ipfs; check ipfs.api_url", wait)


async def _cluster(config: AppConfig, wait: float) -> list[Check]:
    if not config.cluster.endpoints:
        return [Check("cluster", OK, "no cluster configured: pins stay on the local node")]

    async def probe() -> list[Check]:
        pinner = cluster_pinner(config)
        assert pinner is not None
        try:
            peers = await pinner.peers()
        finally:
            await pinner.aclose()
        bad = [p.name or p.peer_id for p in peers if p.error]
        if bad:
            return [Check("cluster", WARN, f"{len(peers)} peers, in error: {', '.join(bad)}",
                          "s3ipfs pins peers shows their errors; check those hosts")]  # fmt: skip
        return [Check("cluster", OK, f"{len(peers)} peers, all healthy")]

    return await _guard("cluster", probe, "systemctl status s3ipfs-cluster; check cluster.endpoints", wait)


async def _clock(config: AppConfig, wait: float) -> list[Check]:
    """Compare the local clock with the HTTP Date header of the IPFS node (or the cluster)."""
    targets = [("POST", f"{config.ipfs.api_url}/api/v0/version")]
    targets += [("GET", f"{endpoint.rstrip('/')}/id") for endpoint in config.cluster.endpoints]
    async with httpx.AsyncClient(timeout=wait, trust_env=False) as client:
        for method, url in targets:
            with contextlib.suppress(httpx.HTTPError):
                before = time.time()
                reply = await client.request(method, url)
                now = (before + time.time()) / 2
                date = reply.headers.get("date")
                if not date:
                    continue
                skew = now - email.utils.parsedate_to_datetime(date).timestamp()
                detail = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} {url.split('/api/')[0]}"
                limit = config.auth.max_skew_seconds
                if abs(skew) >= limit:
                    return [Check("clock", FAIL, detail + f" (S3 refuses requests skewed over {limit} s)",
                                  "enable time sync: timedatectl set-ntp true")]  # fmt: skip
                if abs(skew) >= _SKEW_WARN:
                    return [Check("clock", WARN, detail, "enable time sync: timedatectl set-ntp true")]
                return [Check("clock", OK, detail.replace("0 s ahead of", "in step with"))]
    return [Check("clock", WARN, "no peer answered with a Date header: skew not measured", "start the IPFS node")]


def as_rows(checks: list[Check]) -> list[dict[str, Any]]:
    return [check.as_json() for check in checks]
