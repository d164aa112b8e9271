"""Load the YAML config, apply `S3IPFS_<SECTION>__<KEY>` overrides, validate each section."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from appliance.errors import ConfigError

__all__ = [
    "AdminConfig",
    "AppConfig",
    "AuditConfig",
    "AuthConfig",
    "CacheConfig",
    "ClusterConfig",
    "IamConfig",
    "IpfsConfig",
    "MetadataConfig",
    "NodeConfig",
    "ObjectsConfig",
    "PinningConfig",
    "RateLimitConfig",
    "RateLimitOverride",
    "S3Config",
    "ScrubConfig",
    "is_loopback_host",
    "load_config",
    "redacted",
]

ENV_PREFIX = "S3IPFS_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _cidrs(values: tuple[str, ...]) -> tuple[str, ...]:
    """CIDR lists (allow/deny/trusted proxies): each entry a network or a single address, host bits clear."""
    for value in values:
        try:
            ipaddress.ip_network(value.strip(), strict=True)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a CIDR such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32 ({exc})"
            ) from None
    return tuple(value.strip() for value in values)


TLS_VERSIONS = ("1.2", "1.3")


class _Listener(_Section):
    """What both listeners (S3, admin) share: where, who may connect, whose forwarded addresses to believe, TLS."""

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65535)
    # Proxies whose X-Forwarded-For/Forwarded header names the real client (docs/security.md); empty: none.
    trusted_proxies: tuple[str, ...] = ()
    # Applied to the resolved client address before authentication; empty allow = everyone; deny wins.
    allow_cidrs: tuple[str, ...] = ()
    deny_cidrs: tuple[str, ...] = ()
    # HTTPS: both files (PEM) or neither. Reloaded on SIGHUP (`systemctl reload s3ipfs`).
    tls_certfile: str = ""
    tls_keyfile: str = ""
    tls_min_version: str = Field(default="1.2", description="oldest TLS version accepted")

    _check_cidrs = field_validator("trusted_proxies", "allow_cidrs", "deny_cidrs")(_cidrs)

    @field_validator("tls_min_version", mode="before")
    @classmethod
    def _tls_version(cls, v: object) -> str:
        text = f"{v:.1f}" if isinstance(v, float) else str(v)  # YAML reads an unquoted 1.3 as a number
        if text not in TLS_VERSIONS:
            raise ValueError(f'{v!r} is not supported; use "1.2" (the default) or "1.3"')
        return text

    @model_validator(mode="after")
    def _tls_pair(self) -> _Listener:
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("tls_certfile and tls_keyfile must be set together (or both left empty for HTTP)")
        for name in ("tls_certfile", "tls_keyfile"):
            path = getattr(self, name)
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{name} {path!r} is not a readable file")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_certfile else "http"


class S3Config(_Listener):
    """The S3 front end."""

    workers: int = Field(default=0, ge=0, le=256, description="0 = one per core")
    region: str = "us-east-1"
    # Virtual-hosted-style requests: Host `<bucket>.<domain>` for each domain listed.
    domains: tuple[str, ...] = ("localhost",)
    max_single_put_bytes: int = Field(default=5 * 1024**3, ge=1)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    body_read_timeout: float = Field(default=60.0, gt=0)
    graceful_timeout: float = Field(default=30.0, ge=0)
    max_xml_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)


class AdminConfig(_Listener):
    """The admin API (health, readiness, lookups). Loopback only by default."""

    port: int = Field(default=9001, ge=1, le=65535)
    # Bearer tokens (docs/admin-api.md): the session timeout, and the longest a caller may ask for.
    token_ttl_seconds: int = Field(default=3600, ge=60)
    token_max_ttl_seconds: int = Field(default=30 * 86400, ge=60)
    # Host header names besides host:port (and loopback names when bound to loopback), e.g. "admin.example.net:9001".
    server_names: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ttls(self) -> AdminConfig:
        if self.token_ttl_seconds > self.token_max_ttl_seconds:
            raise ValueError("token_ttl_seconds is larger than token_max_ttl_seconds")
        return self


class IpfsConfig(_Section):
    """The local IPFS node (Kubo RPC API)."""

    api_url: str = "http://127.0.0.1:5001"
    chunk_size: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024)
    timeout: float = Field(default=30.0, gt=0, description="seconds for one RPC call that may wait")
    connect_timeout: float = Field(default=2.0, gt=0)
    # Extra Authorization header value for Kubo API.Authorizations (e.g. "Basic ..."). Never logged.
    auth_header: str = ""

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:5001")
        return v.rstrip("/")


class MetadataConfig(_Section):
    """The embedded LMDB metadata store."""

    path: str = ""  # default: <state_dir>/meta
    map_size: int = Field(default=64 * 1024**3, ge=16 * 1024**2)


class ObjectsConfig(_Section):
    """Object lifecycle."""

    unpin_grace_seconds: float = Field(default=300.0, ge=0)
    unpin_interval_seconds: float = Field(default=5.0, gt=0)
    # Multipart uploads neither completed nor aborted within this time are aborted and their parts released.
    abandoned_upload_seconds: float = Field(default=7 * 86400.0, gt=0)
    abandoned_check_interval_seconds: float = Field(default=3600.0, gt=0)
    # A retried CompleteMultipartUpload gets its first answer for this long (the record goes at the next sweep).
    completed_upload_seconds: float = Field(default=86400.0, ge=0)


class CacheConfig(_Section):
    """L1 memory cache of small objects, per worker process (content is immutable: never stale)."""

    memory_bytes: int = Field(default=64 * 1024**2, ge=0, description="0 disables the cache")
    max_object_bytes: int = Field(default=1024**2, ge=0)


class AuthConfig(_Section):
    """Request authentication."""

    # Where the root key pair lives; generated on first start. Default: <state_dir>/keys/root.json
    root_credentials_file: str = ""
    max_skew_seconds: int = Field(default=900, ge=1)
    max_presign_expiry_seconds: int = Field(default=604800, ge=1)


class ClusterConfig(_Section):
    """The IPFS-Cluster REST API (port 9094). No endpoints: pins stay on the local IPFS node only."""

    endpoints: tuple[str, ...] = ()  # e.g. ["http://127.0.0.1:9094"]; tried in order with failover
    username: str = ""  # basic auth (restapi.basic_auth_credentials); never logged
    password: str = ""
    jwt: str = ""  # a bearer token instead of basic auth (POST /token); never logged
    timeout: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=2.0, gt=0)

    @field_validator("endpoints")
    @classmethod
    def _http_urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} must start with http:// or https://, e.g. http://127.0.0.1:9094")
        return tuple(url.rstrip("/") for url in v)

    @model_validator(mode="after")
    def _one_auth(self) -> ClusterConfig:
        if self.jwt and (self.username or self.password):
            raise ValueError("give username/password or jwt, not both")
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password must be set together")
        return self


class PinningConfig(_Section):
    """Pins: the durable outbox, replication defaults, acknowledgement, reconcile, the dynamic policy."""

    # Defaults for buckets without their own policy; -1/-1 = on every peer, 0/0 = the cluster's own default.
    replication_min: int = Field(default=0, ge=-1)
    replication_max: int = Field(default=0, ge=-1)
    ack: str = Field(default="local", pattern="^(local|cluster)$", description="default acknowledgement mode")
    ack_timeout_seconds: float = Field(default=30.0, gt=0)
    outbox_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_concurrency: int = Field(default=16, ge=1, le=256)
    outbox_batch: int = Field(default=500, ge=1, le=10000)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    status_poll_seconds: float = Field(default=2.0, gt=0)
    pin_timeout_seconds: float = Field(default=600.0, gt=0, description="pinning longer than this is an error")
    reconcile_interval_seconds: float = Field(default=3600.0, gt=0)
    orphan_grace_seconds: float = Field(default=86400.0, ge=0)
    # The dynamic policy: CIDs read often get extra replicas, which go again when they cool down.
    dynamic_enabled: bool = False
    dynamic_interval_seconds: float = Field(default=60.0, gt=0)
    access_flush_seconds: float = Field(default=5.0, gt=0, description="how often workers write access counts")
    half_life_seconds: float = Field(default=3600.0, gt=0, description="access scores halve in this time")
    hot_threshold: float = Field(default=100.0, gt=0, description="a decayed access score at which a CID is hot")
    cold_threshold: float = Field(default=10.0, ge=0, description="below this score a hot CID cools (hysteresis)")
    hot_extra_replicas: int = Field(default=1, ge=1, le=100)
    max_replication: int = Field(default=0, ge=0, description="the dynamic policy never goes above this; 0 = no cap")
    min_dwell_seconds: float = Field(default=600.0, ge=0, description="a change is not undone sooner than this")
    max_changes_per_pass: int = Field(default=100, ge=1)
    # Rebalancing: move allocations off peers low on free space or holding far more pins than the others.
    rebalance_enabled: bool = False
    rebalance_interval_seconds: float = Field(default=600.0, gt=0)
    rebalance_min_free_bytes: int = Field(default=10 * 1024**3, ge=0)
    rebalance_overload_factor: float = Field(default=1.5, gt=1.0, description="pins per peer above the mean times this")
    rebalance_max_moves: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> PinningConfig:
        if self.replication_min > 0 and self.replication_max > 0 and self.replication_min > self.replication_max:
            raise ValueError("replication_min is larger than replication_max")
        if (self.replication_min == -1) != (self.replication_max == -1):
            raise ValueError("replication -1 (every peer) must be given for both replication_min and replication_max")
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError("retry_base_seconds is larger than retry_max_seconds")
        if self.cold_threshold >= self.hot_threshold:
            raise ValueError("cold_threshold must be below hot_threshold (the gap keeps a CID from flapping)")
        return self


class ScrubConfig(_Section):
    """Scrub: checks every object's blocks on the local node and its pins (s3ipfs scrub; docs/scrub.md)."""

    interval_seconds: float = Field(default=0.0, ge=0, description="seconds between periodic scrub runs; 0 = off")
    rate: float = Field(default=20.0, gt=0, le=10000, description="objects per second a run checks by default")
    check_timeout_seconds: float = Field(
        default=5.0, gt=0, description="seconds to read one block from the local node before it counts as missing"
    )
    fetch_timeout_seconds: float = Field(
        default=120.0, gt=0, description="seconds a repair waits for a good copy of a block from the peers"
    )
    resume_delay_seconds: float = Field(
        default=10.0, ge=0, description="seconds after start before a run the daemon stopped during is taken up again"
    )


class IamConfig(_Section):
    """IAM users, groups, access keys and policies (s3ipfs iam; docs/iam.md)."""

    # The 256-bit key sealing access-key secrets in the metadata store; created 0600 on first start.
    key_file: str = ""  # default: <state_dir>/keys/iam.key
    usage_flush_seconds: float = Field(
        default=60.0, gt=0, description="how often each process writes access keys' last-used times"
    )
    max_keys_per_user: int = Field(default=2, ge=1, le=100, description="access keys per user (rotation adds one)")
    max_attached_policies: int = Field(default=20, ge=1, le=1000, description="managed policies per user or group")
    max_rotation_grace_seconds: float = Field(
        default=90 * 86400.0, ge=0, description="the longest grace a key rotation may give the old key"
    )


class RateLimitOverride(_Section):
    """One access key's own rate (ratelimit.overrides)."""

    rps: float = Field(gt=0, description="requests per second")
    burst: int = Field(ge=1, description="requests allowed at once after idling")


class RateLimitConfig(_Section):
    """Token buckets per access key and per client address, one budget shared by every worker process."""

    enabled: bool = False
    per_key_rps: float = Field(default=200.0, gt=0, description="requests per second per access key")
    per_key_burst: int = Field(default=400, ge=1, description="requests an access key may make at once")
    per_ip_rps: float = Field(default=100.0, gt=0, description="requests per second per client address")
    per_ip_burst: int = Field(default=200, ge=1, description="requests a client address may make at once")
    exempt_keys: tuple[str, ...] = ()
    exempt_cidrs: tuple[str, ...] = ()
    overrides: dict[str, RateLimitOverride] = Field(default_factory=dict)
    table_slots: int = Field(default=16384, ge=64, le=1 << 22, description="clients tracked at once")

    _check_cidrs = field_validator("exempt_cidrs")(_cidrs)


class AuditConfig(_Section):
    """The hash-chained audit log (docs/audit.md)."""

    enabled: bool = True
    dir: str = ""  # default: <state_dir>/audit
    max_file_bytes: int = Field(default=64 * 1024**2, ge=4096, description="a file rotates past this size")
    rotate_seconds: float = Field(default=86400.0, ge=0, description="a file rotates at this age; 0 = by size only")
    retention: int = Field(default=90, ge=0, description="files kept (the current one included); 0 = all")
    journal: str = Field(default="auto", pattern="^(auto|on|off)$", description="auto: when run by systemd")


class NodeConfig(_Section):
    """The local IPFS and IPFS-Cluster daemons (s3ipfs node init/status/start/stop)."""

    kubo_binary: str = ""  # default: `ipfs` on PATH
    cluster_binary: str = ""  # default: `ipfs-cluster-service` on PATH
    kubo_repo: str = ""  # default: <state_dir>/ipfs
    cluster_dir: str = ""  # default: <state_dir>/cluster


class AppConfig(_Section):
    """The whole config file."""

    state_dir: str = "/var/lib/s3ipfs"
    s3: S3Config = S3Config()
    admin: AdminConfig = AdminConfig()
    ipfs: IpfsConfig = IpfsConfig()
    metadata: MetadataConfig = MetadataConfig()
    objects: ObjectsConfig = ObjectsConfig()
    auth: AuthConfig = AuthConfig()
    cache: CacheConfig = CacheConfig()
    cluster: ClusterConfig = ClusterConfig()
    pinning: PinningConfig = PinningConfig()
    scrub: ScrubConfig = ScrubConfig()
    iam: IamConfig = IamConfig()
    ratelimit: RateLimitConfig = RateLimitConfig()
    node: NodeConfig = NodeConfig()
    audit: AuditConfig = AuditConfig()

    @model_validator(mode="after")
    def _admin_off_loopback_needs_tls(self) -> AppConfig:
        # The admin API carries bearer tokens and root's secret (POST /auth/token): never in clear text off the box.
        if not is_loopback_host(self.admin.host) and not getattr(self.admin, "tls_certfile", ""):
            raise ValueError(
                f"admin.host {self.admin.host!r} is not a loopback address and the admin API has no TLS: set "
                "admin.tls_certfile and admin.tls_keyfile (s3ipfs tls issue), or bind admin.host to 127.0.0.1"
            )
        return self

    @property
    def audit_path(self) -> Path:
        return Path(self.audit.dir or os.path.join(self.state_dir, "audit"))

    @property
    def admin_token_path(self) -> Path:
        """The local root token the daemon writes at start for the CLI/TUI on the box."""
        return Path(os.path.dirname(self.credentials_path)) / "admin.token"

    @property
    def meta_path(self) -> Path:
        return Path(self.metadata.path or os.path.join(self.state_dir, "meta"))

    @property
    def credentials_path(self) -> Path:
        return Path(self.auth.root_credentials_file or os.path.join(self.state_dir, "keys", "root.json"))

    @property
    def iam_key_path(self) -> Path:
        return Path(self.iam.key_file or os.path.join(self.state_dir, "keys", "iam.key"))

    @property
    def kubo_repo_path(self) -> Path:
        return Path(self.node.kubo_repo or os.path.join(self.state_dir, "ipfs"))

    @property
    def cluster_dir_path(self) -> Path:
        return Path(self.node.cluster_dir or os.path.join(self.state_dir, "cluster"))

    @property
    def worker_count(self) -> int:
        return self.s3.workers or (os.cpu_count() or 1)


def is_loopback_host(host: str) -> bool:
    """Whether a listener bound to `host` is reachable from this machine only."""
    if host in ("localhost", "localhost.") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) == 1:
            data[parts[0]] = yaml.safe_load(value) if value else value
            continue
        if len(parts) != 2:
            raise ConfigError(f"{name}: expected S3IPFS_<SECTION>__<KEY>, e.g. S3IPFS_S3__PORT=9000")
        section, key = parts
        current = data.get(section)
        if current is None:
            current = {}
        if not isinstance(current, dict):
            raise ConfigError(f"{section}: must be a mapping (set by {name})")
        current[key] = yaml.safe_load(value) if value else value
        data[section] = current
    return data


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling (see README 'Configuration')"
        lines.append(f"{key}: {msg}")
    return "; ".join(lines)


def load_config(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Read the YAML file (None: defaults only), apply env overrides, validate. Raises ConfigError."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read ({exc.strerror}); pass --config FILE") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
        data = loaded
    data = _apply_env(data, os.environ if env is None else env)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from exc


def redacted(config: AppConfig) -> dict[str, Any]:
    """The config as a dict, with secrets replaced, for display."""
    dump = config.model_dump(mode="json")
    if dump["ipfs"]["auth_header"]:
        dump["ipfs"]["auth_header"] = "***"
    for secret in ("password", "jwt"):
        if dump["cluster"][secret]:
            dump["cluster"][secret] = "***"
    return dump
