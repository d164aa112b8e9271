"""`s3ipfs node init` as pure planning: from the operator's choices and the config, the files to write."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import AppConfig
from appliance.nodesetup.cluster_dir import ClusterSettings, dumps, identity_json, peerstore_text, service_json
from appliance.nodesetup.files import PlannedFile
from appliance.nodesetup.identity import Identity, generate_identity, identity_from_private_key
from appliance.nodesetup.kubo_repo import (
    KUBO_REPO_VERSION,
    KuboSettings,
    datastore_spec,
    kubo_config,
    validate_storage_max,
)
from appliance.nodesetup.multiaddr import Multiaddr, parse_multiaddr, parse_peer_addr
from appliance.nodesetup.secrets import format_swarm_key, generate_secret, parse_cluster_secret, parse_swarm_key

__all__ = ["InitChoices", "InitError", "InitPlan", "plan_init"]


class InitError(ValueError):
    """An input of `node init` is malformed; the message names it and the fix."""


@dataclass(frozen=True)
class InitChoices:
    """The operator's choices (the command-line flags of `s3ipfs node init`)."""

    peers: Sequence[str] = ()
    cluster_peers: Sequence[str] = ()
    swarm_key_file: Path | None = None
    cluster_secret_file: Path | None = None
    storage_max: str = "10GB"
    replication_min: int | None = None
    replication_max: int | None = None
    peername: str = ""
    swarm_listen: Sequence[str] = ()
    cluster_listen: Sequence[str] = ()
    announce: Sequence[str] = ()
    mdns: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    cluster_name: str = "s3ipfs"
    api_user: str = "s3ipfs"
    no_cluster: bool = False
    trust_all: bool = False


@dataclass(frozen=True)
class InitPlan:
    """The files to write and what the operator must be told once (generated secrets, peer IDs)."""

    files: list[PlannedFile]
    kubo_peer_id: str
    cluster_peer_id: str | None
    generated_swarm_key: str | None
    generated_cluster_secret: str | None
    api_user: str
    api_password: str | None  # None: none generated (kept from the existing service.json, or no cluster)

    def __repr__(self) -> str:
        return f"InitPlan(kubo_peer_id={self.kubo_peer_id!r}, cluster_peer_id={self.cluster_peer_id!r})"


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InitError(f"{what} {path}: cannot read it ({reason})") from exc


def _addresses(values: Sequence[str], what: str, *, peers: bool) -> list[Multiaddr]:
    out = []
    for value in values:
        try:
            out.append(parse_peer_addr(value, what=what) if peers else parse_multiaddr(value))
        except ValueError as exc:
            raise InitError(str(exc) if peers else f"{what}: {exc}") from None
    return out


def _kept_identity(path: Path, read: str) -> Identity | None:
    """The identity of an existing Kubo config / cluster identity.json, so a forced re-init keeps the peer ID."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        key = data["Identity"]["PrivKey"] if read == "kubo" else data["private_key"]
        return identity_from_private_key(str(key))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _kept_swarm_key(path: Path) -> str | None:
    try:
        return parse_swarm_key(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _kept_service(path: Path, user: str) -> tuple[str | None, str | None]:
    """The cluster secret and `user`'s REST API password of an existing service.json, if any."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        secret = parse_cluster_secret(str(data["cluster"]["secret"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    try:
        password = data["api"]["restapi"]["basic_auth_credentials"][user]
    except (KeyError, TypeError):
        return secret, None
    return secret, password if isinstance(password, str) and password else None


def _replication(choices: InitChoices, config: AppConfig) -> tuple[int, int]:
    low = config.pinning.replication_min if choices.replication_min is None else choices.replication_min
    high = config.pinning.replication_max if choices.replication_max is None else choices.replication_max
    # 0 in s3ipfs means "the cluster's default"; in service.json the default is -1 (every peer).
    low, high = (low or -1), (high or -1)
    if low < -1 or high < -1:
        raise InitError("--replication-min/--replication-max must be -1 (every peer) or a peer count >= 1")
    if (low == -1) != (high == -1):
        raise InitError("replication -1 (every peer) must be given for both --replication-min and --replication-max")
    if low > high:
        raise InitError(f"--replication-min {low} is larger than --replication-max {high}")
    return low, high


def plan_init(choices: InitChoices, config: AppConfig) -> InitPlan:
    """Validate every input and build the files; raises InitError before anything is written."""
    peers = _addresses(choices.peers, "--peer", peers=True)
    cluster_peers = _addresses(choices.cluster_peers, "--cluster-peer", peers=True)
    swarm_listen = [a.text for a in _addresses(choices.swarm_listen, "--swarm-listen", peers=False)]
    cluster_listen = [a.text for a in _addresses(choices.cluster_listen, "--cluster-listen", peers=False)]
    announce = [a.text for a in _addresses(choices.announce, "--announce", peers=False)]
    try:
        storage_max = validate_storage_max(choices.storage_max)
    except ValueError as exc:
        raise InitError(f"--storage-max: {exc}") from None
    generated_swarm_key = None
    if choices.swarm_key_file is not None:
        try:
            swarm_key = parse_swarm_key(_read(choices.swarm_key_file, "--swarm-key"))
        except ValueError as exc:
            raise InitError(f"--swarm-key {choices.swarm_key_file}: {exc}") from None
    else:
        swarm_key = _kept_swarm_key(config.kubo_repo_path / "swarm.key") or ""
        if not swarm_key:
            swarm_key = generated_swarm_key = generate_secret()

    repo = config.kubo_repo_path
    kubo_identity = _kept_identity(repo / "config", "kubo") or generate_identity()
    kubo = KuboSettings(
        identity=kubo_identity,
        peers=peers,
        swarm_listen=swarm_listen or KuboSettings.swarm_listen,
        announce=announce,
        storage_max=storage_max,
        mdns=choices.mdns,
    )
    files = [
        PlannedFile(repo / "config", dumps(kubo_config(kubo))),
        PlannedFile(repo / "swarm.key", format_swarm_key(swarm_key)),
        PlannedFile(repo / "datastore_spec", datastore_spec() + "\n", keep=True),
        PlannedFile(repo / "version", f"{KUBO_REPO_VERSION}\n", keep=True),
    ]
    if choices.no_cluster:
        return InitPlan(files, kubo_identity.peer_id, None, generated_swarm_key, None, choices.api_user, None)

    low, high = _replication(choices, config)
    if not choices.api_user or ":" in choices.api_user:
        raise InitError("--api-user must be a non-empty name without ':'")
    cluster_dir = config.cluster_dir_path
    kept_secret, kept_password = _kept_service(cluster_dir / "service.json", choices.api_user)
    generated_secret = None
    if choices.cluster_secret_file is not None:
        try:
            secret = parse_cluster_secret(_read(choices.cluster_secret_file, "--cluster-secret"))
        except ValueError as exc:
            raise InitError(f"--cluster-secret {choices.cluster_secret_file}: {exc}") from None
    elif kept_secret is not None:
        secret = kept_secret
    else:
        secret = generated_secret = generate_secret()
    password = kept_password or secrets.token_urlsafe(24)
    cluster_identity = _kept_identity(cluster_dir / "identity.json", "cluster") or generate_identity()
    cluster = ClusterSettings(
        identity=cluster_identity,
        secret=secret,
        peername=choices.peername or socket.gethostname(),
        peers=cluster_peers,
        api_username=choices.api_user,
        api_password=password,
        cluster_name=choices.cluster_name,
        listen=cluster_listen or ClusterSettings.listen,
        replication_min=low,
        replication_max=high,
        tags={"group": "default", **choices.tags},
        trust_all=choices.trust_all,
    )
    files += [
        PlannedFile(cluster_dir / "service.json", dumps(service_json(cluster))),
        PlannedFile(cluster_dir / "identity.json", dumps(identity_json(cluster_identity))),
        PlannedFile(cluster_dir / "peerstore", peerstore_text(cluster_peers)),
    ]
    return InitPlan(
        files,
        kubo_identity.peer_id,
        cluster_identity.peer_id,
        generated_swarm_key,
        generated_secret,
        choices.api_user,
        None if kept_password else password,
    )
