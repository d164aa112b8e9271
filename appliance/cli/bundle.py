"""`s3ipfs doctor --bundle FILE`: a support tarball (system info, redacted config, node status, recent journal, a
metrics snapshot, the doctor's results) with every secret redacted from every member.

Redaction has two layers: the secret values the appliance knows (the root secret key, cluster password and JWT, the
Kubo auth header, the swarm key, the cluster secret) are replaced wherever they occur, and patterns catch what it
cannot know (bearer tokens, `secret=`/`password:`-style pairs, 40-character AWS-style secret keys, 64-hex keys).
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from appliance.api.admin.client import AdminClient
from appliance.config import AppConfig, redacted
from appliance.errors import S3IpfsError

__all__ = ["Redactor", "write_bundle"]

REDACTED = "[REDACTED]"
_PACKAGES = ("s3ipfs", "quart", "hypercorn", "lmdb", "httpx", "pydantic", "prometheus-client", "cryptography", "boto3")
_PATTERNS = [
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # a JWT
    re.compile(
        r"(?i)((?:secret|password|passwd|token|jwt|credential|auth_header|api_key|private_key)[\w-]*"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"
    ),
    re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),  # an AWS-style secret access key
    re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])"),  # swarm keys, cluster secrets
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
]
_COMMAND_TIMEOUT = 60.0


class Redactor:
    """Removes known secret values and secret-looking text from strings."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._known:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(_keep_prefix, text)
        return text


def _keep_prefix(match: re.Match[str]) -> str:
    # Keep a "password: " prefix (group 1) so the reader sees which setting was there.
    prefix = match.group(1) if match.re.groups and match.group(1) and match.group(1)[-1] in ":= \"'" else ""
    return f"{prefix}{REDACTED}"


def known_secrets(config: AppConfig) -> list[str]:
    """Every secret value the config points at (read from the files it names, where readable)."""
    found = [config.cluster.password, config.cluster.jwt, config.ipfs.auth_header]
    if config.ipfs.auth_header.count(" ") == 1:
        found.append(config.ipfs.auth_header.split(" ", 1)[1])
    with_files: list[tuple[Path, str]] = [
        (config.credentials_path, "json"),
        (config.kubo_repo_path / "swarm.key", "lines"),
        (config.cluster_dir_path / "service.json", "json"),
        (config.cluster_dir_path / "identity.json", "json"),
    ]
    for path, kind in with_files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if kind == "lines":
            found += [line.strip() for line in text.splitlines() if len(line.strip()) >= 16]
        else:
            found += list(_secret_values(_loads(text)))
    return [s for s in found if s]


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _secret_values(data: Any) -> Iterable[str]:
    """String values under secret-like keys anywhere in a JSON document."""
    if isinstance(data, dict):
        for key, value in data.items():
            secret_like = re.search(r"(?i)secret|password|key|token|jwt|priv", str(key))
            if isinstance(value, str) and secret_like and not re.search(r"(?i)access|public|_id$", str(key)):
                yield value
            else:
                yield from _secret_values(value)
    elif isinstance(data, list):
        for item in data:
            yield from _secret_values(item)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"$ {' '.join(argv)}\n(could not run: {exc})\n"
    return f"$ {' '.join(argv)}\n(exit {done.returncode})\n{done.stdout}{done.stderr}"


def _system_info() -> str:
    lines = [f"generated: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}", f"uname: {' '.join(platform.uname())}"]
    lines.append(f"python: {sys.version.split()[0]} ({sys.executable})")
    try:
        lines += ["", "os-release:", Path("/etc/os-release").read_text()]
    except OSError:
        lines.append("os-release: (not readable)")
    lines.append("packages:")
    for name in _PACKAGES:
        try:
            lines.append(f"  {name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"  {name} (not installed)")
    return "\n".join(lines) + "\n"


def _journal() -> str:
    if shutil.which("journalctl") is None:
        return "journalctl is not available on this host\n"
    return _run(["journalctl", "-u", "s3ipfs*", "-n", "2000", "--no-pager", "-o", "short-iso"])


def _metrics(config: AppConfig) -> str:
    try:
        return AdminClient.from_config(config).text("/metrics")
    except S3IpfsError as exc:
        return f"/metrics: {exc.message}\n"


def write_bundle(path: Path, config: AppConfig, config_path: str, doctor_json: str) -> list[str]:
    """Write the tarball at `path` (gzip; mode 0600); returns its member names."""
    redact = Redactor(known_secrets(config))
    node_status = _run([sys.executable, "-m", "appliance.cli", "node", "status", "--config", config_path])
    members = {
        "system.txt": _system_info(),
        "config.yaml": yaml.safe_dump(redacted(config), sort_keys=False),
        "node-status.txt": node_status,
        "journal.txt": _journal(),
        "metrics.txt": _metrics(config),
        "doctor.json": doctor_json,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in members.items():
            data = redact(text).encode("utf-8")
            info = tarfile.TarInfo(f"s3ipfs-support/{name}")
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return list(members)
