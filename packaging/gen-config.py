"""Write the packaged /etc/s3ipfs/s3ipfs.yaml from the config model, so it never drifts from appliance/config.py.

Every key of `AppConfig` appears commented out with its default (from the model), its limits (from the model) and
its meaning (the field's description, else the table below). A key with no meaning fails the build: document it here
or give it `Field(description=...)`. Removing the `#` in front of every `#key:` line gives valid YAML for the defaults.

Usage: python packaging/gen-config.py > s3ipfs.yaml   (run with an interpreter that can import `appliance`)
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

import annotated_types
from pydantic import BaseModel

from appliance.config import AppConfig

MEANINGS: dict[str, str] = {
    "state_dir": "Directory for all gateway state: LMDB metadata (meta/), disk cache (cache/), keyring (keys/). "
    "The systemd unit lets the gateway write only under /var/lib/s3ipfs; add ReadWritePaths= with "
    "`systemctl edit s3ipfs` if you move it.",
    "s3": "The S3 front end (the port S3 clients talk to).",
    "s3.host": "Address the S3 port listens on. 127.0.0.1 serves this host only; use a LAN address or 0.0.0.0 "
    "to serve clients on the network.",
    "s3.port": "TCP port of the S3 API. A port below 1024 needs CAP_NET_BIND_SERVICE (see the unit header).",
    "s3.workers": "Number of S3 worker processes; 0 starts one per CPU core.",
    "s3.region": "Region name the gateway reports and expects in SigV4 credential scopes.",
    "s3.domains": "Domains for virtual-hosted-style requests: Host `<bucket>.<domain>` addresses the bucket.",
    "s3.max_single_put_bytes": "Largest object accepted by one PUT (S3's limit is 5 GiB); larger needs multipart.",
    "s3.max_header_bytes": "Largest request header block accepted, in bytes.",
    "s3.body_read_timeout": "Seconds to wait for the next piece of a request body before giving up on the client.",
    "s3.graceful_timeout": "Seconds to let in-flight requests finish on stop (the unit's TimeoutStopSec is above it).",
    "s3.max_xml_body_bytes": "Largest XML request body (e.g. DeleteObjects, CompleteMultipartUpload), in bytes.",
    "s3.tls_certfile": "PEM certificate for HTTPS on the S3 port; set together with tls_keyfile, or leave both "
    "empty for plain HTTP. Must be readable by the s3ipfs user.",
    "s3.tls_keyfile": "PEM private key for HTTPS on the S3 port; set together with tls_certfile.",
    "s3.tls_min_version": "Oldest TLS version the S3 port accepts: \"1.2\" (the model's default) or \"1.3\". "
    "This packaged file sets 1.3; lower it only for clients that cannot do TLS 1.3.",
    "s3.trusted_proxies": "CIDRs of reverse proxies / load balancers whose X-Forwarded-For (or Forwarded) header "
    "names the real client; from anyone else the header is ignored. The resolved address is what the allow/deny "
    "lists, rate limits, policies (aws:SourceIp) and logs see. Empty: the TCP peer is the client.",
    "s3.allow_cidrs": "CIDRs (or single addresses) that may use the S3 port; checked on the resolved client "
    "address before authentication. Empty allows everyone.",
    "s3.deny_cidrs": "CIDRs refused on the S3 port (403 AccessDenied) even when allow_cidrs lists them: deny wins.",
    "admin": "The admin API: /health, /ready, /metrics and lookups used by the CLI and the TUI.",
    "admin.host": "Address the admin API listens on. Keep it on loopback; any other address needs admin TLS "
    "(the daemon refuses to start otherwise). Every route but /health needs a bearer token (docs/admin-api.md).",
    "admin.port": "TCP port of the admin API.",
    "admin.trusted_proxies": "CIDRs of proxies whose X-Forwarded-For header names the real admin client "
    "(see s3.trusted_proxies). Empty: the TCP peer is the client.",
    "admin.allow_cidrs": "CIDRs that may call the admin API (403 for the rest), before authentication. "
    "Empty allows everyone who can reach admin.host.",
    "admin.deny_cidrs": "CIDRs refused by the admin API even when allow_cidrs lists them.",
    "admin.tls_certfile": "PEM certificate for HTTPS on the admin port; set together with tls_keyfile. Reloaded "
    "with `systemctl reload s3ipfs`.",
    "admin.tls_keyfile": "PEM private key for HTTPS on the admin port; set together with tls_certfile.",
    "admin.tls_min_version": "Oldest TLS version the admin port accepts: \"1.2\" or \"1.3\" (set here).",
    "admin.token_ttl_seconds": "Lifetime of an admin token when the caller asks for none (the session timeout).",
    "admin.token_max_ttl_seconds": "The longest lifetime a caller may ask for (s3ipfs admin token --ttl).",
    "admin.server_names": "Host header values the admin API answers besides host:port (and the loopback names when "
    "bound to loopback), e.g. 'admin.example.net:9001'. Other Host values get 421 (DNS rebinding).",
    "audit": "The hash-chained audit log of state-changing and denied requests (docs/audit.md).",
    "audit.enabled": "Write the audit log.",
    "audit.dir": "Directory of the audit files. Default: <state_dir>/audit.",
    "ipfs": "The local IPFS node (Kubo RPC API), run by s3ipfs-ipfs.service.",
    "ipfs.api_url": "URL of the Kubo RPC API. Keep Kubo's API on loopback.",
    "ipfs.chunk_size": "UnixFS chunk size in bytes for new objects. Changing it changes the CIDs of new uploads.",
    "ipfs.timeout": "Seconds one Kubo RPC call that may wait on the network is allowed to take.",
    "ipfs.connect_timeout": "Seconds to wait for a TCP connection to the Kubo API.",
    "ipfs.auth_header": "Authorization header value sent to Kubo (API.Authorizations), e.g. 'Basic ...'. "
    "A secret: never logged.",
    "metadata": "The embedded LMDB metadata store.",
    "metadata.path": "LMDB directory; empty means <state_dir>/meta.",
    "metadata.map_size": "LMDB map size in bytes: the most the metadata may ever grow to (sparse, not allocated).",
    "objects": "Object lifecycle.",
    "objects.unpin_grace_seconds": "Seconds an unreferenced CID stays pinned after its last object is deleted.",
    "objects.unpin_interval_seconds": "Seconds between runs of the job that unpins CIDs whose grace has passed.",
    "objects.abandoned_upload_seconds": "Multipart uploads neither completed nor aborted within this many seconds "
    "are aborted and their parts released.",
    "objects.abandoned_check_interval_seconds": "Seconds between checks for abandoned multipart uploads.",
    "objects.completed_upload_seconds": "Seconds a retried CompleteMultipartUpload still gets the answer of the one "
    "that succeeded (the record goes at the next abandoned-upload check).",
    "auth": "Request authentication (SigV4).",
    "auth.root_credentials_file": "Root key pair file, generated on first start; empty means "
    "<state_dir>/keys/root.json. Show it with `s3ipfs credentials`.",
    "auth.max_skew_seconds": "Largest clock difference accepted between a signed request and this host.",
    "auth.max_presign_expiry_seconds": "Longest validity accepted for a presigned URL (S3 allows 7 days).",
    "cache": "L1 memory cache of small objects, per worker process (content is immutable, so never stale).",
    "cache.memory_bytes": "Memory per worker process for cached objects, in bytes; 0 disables the cache.",
    "cache.max_object_bytes": "Objects larger than this are never cached in memory.",
    "cluster": "The IPFS-Cluster REST API. With no endpoints, objects are pinned on the local IPFS node only.",
    "cluster.endpoints": "Cluster REST API URLs (port 9094), e.g. [http://127.0.0.1:9094]; tried in order, the "
    "next one on a connection error or a 5xx.",
    "cluster.username": "Basic-auth user of the cluster REST API (restapi.basic_auth_credentials); set with password.",
    "cluster.password": "Basic-auth password of the cluster REST API. A secret: never logged.",
    "cluster.jwt": "A bearer token for the cluster REST API instead of basic auth. A secret: never logged.",
    "cluster.timeout": "Seconds one cluster REST call is allowed to take.",
    "cluster.connect_timeout": "Seconds to wait for a TCP connection to a cluster endpoint before trying the next.",
    "pinning": "Pins: the durable pin outbox, replication defaults, acknowledgement, reconcile, dynamic "
    "replication and rebalancing. See docs/pinning.md in the source tree.",
    "pinning.replication_min": "Default replication-min for buckets without their own policy; 0 means the "
    "cluster's default, -1 (with replication_max -1) pins on every peer.",
    "pinning.replication_max": "Default replication-max for buckets without their own policy (0 = cluster default).",
    "pinning.ack": "Default acknowledgement of a PUT: 'local' (stored on the local node, pinned across the cluster "
    "in the background) or 'cluster' (the PUT waits until replication_min peers report pinned).",
    "pinning.ack_timeout_seconds": "In 'cluster' acknowledgement, seconds a PUT waits before failing with 503 "
    "(the object stays stored and its pin job stays queued).",
    "pinning.outbox_interval_seconds": "Seconds between passes of the pin outbox when it has nothing due.",
    "pinning.outbox_concurrency": "Pin jobs sent to the cluster at the same time.",
    "pinning.outbox_batch": "Pin jobs claimed from the outbox per pass.",
    "pinning.retry_base_seconds": "First retry delay of a failed pin job; doubles per attempt, with jitter.",
    "pinning.retry_max_seconds": "Longest retry delay of a failed pin job.",
    "pinning.status_poll_seconds": "Seconds between status checks of a pin the cluster is still pinning.",
    "pinning.pin_timeout_seconds": "A pin still not done after this many seconds is marked 'error' and retried.",
    "pinning.reconcile_interval_seconds": "Seconds between reconcile runs (metadata CIDs against the cluster pinset).",
    "pinning.orphan_grace_seconds": "Seconds a pin made by this gateway but no longer referenced stays before "
    "reconcile unpins it.",
    "pinning.dynamic_enabled": "Raise replication of CIDs read often and lower it again when they cool.",
    "pinning.dynamic_interval_seconds": "Seconds between passes of the dynamic replication policy.",
    "pinning.access_flush_seconds": "Seconds between writes of each worker's batched access counts.",
    "pinning.half_life_seconds": "Access scores halve in this many seconds (decayed counters).",
    "pinning.hot_threshold": "A decayed access score at or above this makes a CID hot (extra replicas).",
    "pinning.cold_threshold": "A hot CID whose score falls below this cools again; must be below hot_threshold.",
    "pinning.hot_extra_replicas": "Replicas added to the bucket's policy for a hot CID.",
    "pinning.max_replication": "The dynamic policy never asks for more replicas than this; 0 means no cap.",
    "pinning.min_dwell_seconds": "A hot/cold change is not undone sooner than this many seconds.",
    "pinning.max_changes_per_pass": "Most replication changes one dynamic policy pass makes.",
    "pinning.rebalance_enabled": "Move allocations off peers low on free space or holding far more pins than the rest.",
    "pinning.rebalance_interval_seconds": "Seconds between rebalancing passes.",
    "pinning.rebalance_min_free_bytes": "A peer with less free space than this (cluster freespace metric) is drained.",
    "pinning.rebalance_overload_factor": "A peer holding more than this times the mean number of pins is drained.",
    "pinning.rebalance_max_moves": "Most allocation moves one rebalancing pass makes.",
    "scrub": "Scrub: checks that every block of every object is on the local IPFS node with the right hash and "
    "that its pin is where its policy says; repairs from the peers on demand. See docs/scrub.md in the source tree.",
    "scrub.interval_seconds": "Seconds between periodic scrub runs (report only, no repair); 0 turns them off. "
    "Runs on demand with `s3ipfs scrub` either way.",
    "scrub.rate": "Objects per second a run checks unless `--rate` says otherwise; keeps scrub from starving S3 "
    "traffic.",
    "scrub.check_timeout_seconds": "Seconds one block may take to read from the local node before it counts as "
    "missing.",
    "scrub.fetch_timeout_seconds": "Seconds a repair waits for a good copy of a block (or a re-pin) from the peers.",
    "scrub.resume_delay_seconds": "Seconds after the daemon starts before a run it stopped during is taken up again "
    "after its last finished object.",
    "iam": "IAM users, groups, access keys and policies, managed with `s3ipfs iam`. See docs/iam.md in the source "
    "tree.",
    "iam.key_file": "The 256-bit key that seals access-key secrets in the metadata store (AES-256-GCM); created "
    "mode 0600 on first start. Empty means <state_dir>/keys/iam.key. Back it up with the metadata: without it the "
    "IAM users' secrets cannot be read.",
    "iam.usage_flush_seconds": "How often each process writes access keys' last-used times (at most one write per "
    "key per interval).",
    "iam.max_keys_per_user": "Access keys a user may hold; a rotation may add one while the old key's grace runs.",
    "iam.max_attached_policies": "Managed or built-in policies attached to one user or group.",
    "iam.max_rotation_grace_seconds": "The longest grace a key rotation (`s3ipfs iam key rotate --grace`) may give "
    "the old key.",
    "ratelimit": "Rate limits: token buckets per access key and per client address, shared by every worker "
    "process. A request over its rate gets 503 SlowDown with Retry-After. See docs/security.md in the source tree.",
    "ratelimit.enabled": "Turn rate limiting on.",
    "ratelimit.per_key_rps": "Requests per second each access key may make (after its signature verified).",
    "ratelimit.per_key_burst": "Requests an access key may make at once after being idle (the bucket size).",
    "ratelimit.per_ip_rps": "Requests per second per client address for anonymous requests and requests whose "
    "signature failed.",
    "ratelimit.per_ip_burst": "Bucket size per client address.",
    "ratelimit.exempt_keys": "Access keys never limited (e.g. a backup job's key).",
    "ratelimit.exempt_cidrs": "Client addresses never limited (e.g. monitoring).",
    "ratelimit.overrides": "Per-access-key rates: {AKIA...: {rps: 50, burst: 100}}; they replace per_key_rps/burst "
    "for that key.",
    "ratelimit.table_slots": "Buckets the shared table holds (40 bytes each); more clients active at once than "
    "this are limited less exactly.",
    "node": "The local IPFS (Kubo) and IPFS-Cluster daemons managed by `s3ipfs node`.",
    "node.kubo_binary": "Path of the Kubo `ipfs` binary; empty means `ipfs` on PATH.",
    "node.cluster_binary": "Path of `ipfs-cluster-service`; empty means the one on PATH.",
    "node.kubo_repo": "Kubo repository directory; empty means <state_dir>/ipfs.",
    "node.cluster_dir": "IPFS-Cluster configuration directory; empty means <state_dir>/cluster.",
}

# Keys this packaged file sets (uncommented, with their section line) to a value other than the model's default.
PACKAGED: dict[str, Any] = {"s3.tls_min_version": "1.3", "admin.tls_min_version": "1.3"}

HEADER = """\
# /etc/s3ipfs/s3ipfs.yaml: configuration of the s3ipfs gateway.
#
# Every key is listed below, commented out, with its default: the gateway runs with these values until you
# uncomment a key (remove the single '#' on the key line and on its section line) and change it.
# Lines starting with '##' explain the key below them; key lines are '#key: default' with no space after '#'.
# Any key can also be set in the environment as S3IPFS_<SECTION>__<KEY> (e.g. S3IPFS_S3__PORT=9000), for example
# in a drop-in made with `systemctl edit s3ipfs`.
# After editing, check the file with `s3ipfs config check`, then `systemctl restart s3ipfs`.
# A broken file makes the service fail at once (exit status 2) with the reason in `journalctl -u s3ipfs`.
# This file was generated from the config model of s3ipfs {version}; your edits are kept on upgrade.
"""


def _limits(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None and isinstance(item, annotated_types.BaseMetadata):
                parts.append(f"{sign} {value}")
    return f" ({', '.join(parts)})" if parts else ""


def _meaning(dotted: str, description: str | None) -> str:
    text = MEANINGS.get(dotted) or description
    if not text:
        raise SystemExit(f"gen-config: config key {dotted!r} has no meaning; add it to MEANINGS in {__file__}")
    return text


def _doc(indent: str, text: str) -> list[str]:
    return [f"{indent}## {line}" for line in textwrap.wrap(text, width=116 - len(indent))]


def _emit(model: type[BaseModel], defaults: BaseModel, prefix: str, indent: str, out: list[str]) -> None:
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        value = getattr(defaults, name)
        if isinstance(value, BaseModel):
            out.append("")
            out.extend(_doc(indent, _meaning(dotted, type(value).__doc__)))
            sets = any(key.startswith(f"{dotted}.") for key in PACKAGED)
            out.append(f"{indent}{'' if sets else '#'}{name}:")
            _emit(type(value), value, f"{dotted}.", indent + "  ", out)
            continue
        out.extend(_doc(indent, _meaning(dotted, field.description) + _limits(field.metadata)))
        if dotted in PACKAGED:
            out.append(f"{indent}{name}: {json.dumps(PACKAGED[dotted])}")
            continue
        rendered = json.dumps(list(value) if isinstance(value, tuple) else value)
        out.append(f"{indent}#{name}: {rendered}")


def render(version: str) -> str:
    out: list[str] = [HEADER.format(version=version)]
    _emit(AppConfig, AppConfig(), "", "", out)
    unused = set(MEANINGS) - {line for line in _all_keys(AppConfig, "")}
    if unused:
        raise SystemExit(f"gen-config: MEANINGS documents keys the model no longer has: {sorted(unused)}")
    return "\n".join(out) + "\n"


def _all_keys(model: type[BaseModel], prefix: str) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(f"{prefix}{name}")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_all_keys(annotation, f"{prefix}{name}."))
    return keys


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else "(development tree)"))
