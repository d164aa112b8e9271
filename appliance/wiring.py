"""The pieces of the composition root that build components from config: the IPFS client, the metadata store,
the pinner, policies and orchestrator settings, and the pin jobs over many CIDs with their periodic tasks (the main
process runs them once per appliance; daemon.py owns processes, sockets and lifetimes)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.api.access import ListenerAccess
from appliance.api.admin.auth import AdminAuth, allowed_hosts
from appliance.api.s3.context import S3Services
from appliance.components import ContentStore, MetadataStore, Pinner, PolicySource
from appliance.config import AppConfig
from appliance.errors import ConfigError
from appliance.ipfsconn.dagcheck import LocalDagChecker
from appliance.ipfsconn.kubo import KuboClient
from appliance.model import Principal, ReplicationPolicy
from appliance.pinning.cluster import ClusterClient
from appliance.pinning.replicated import ClusterPinner
from appliance.service.admin_tokens import TokenStore
from appliance.service.audit import Auditor
from appliance.service.audit_log import AuditLog, AuditSettings
from appliance.service.buckets import BucketService
from appliance.service.iam import IamService, IamSettings
from appliance.service.iam_authorize import simulate
from appliance.service.iam_builtin import BUILTIN
from appliance.service.iam_policy import Policy, RequestFacts, parse_policy
from appliance.service.iam_secrets import SecretBox, load_or_create_key
from appliance.service.identity import Credentials, Identity
from appliance.service.journal import JOURNAL_SOCKET, JournalSink, under_systemd
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.service.periodic import every, sleep_or_stop
from appliance.service.pin_batch import BatchRunner
from appliance.service.pin_dynamic import AccessRecorder, DynamicSettings, HotColdPolicy
from appliance.service.pin_orchestrator import OrchestratorSettings, PinAcknowledger, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.pin_rebalance import Rebalancer, RebalanceSettings
from appliance.service.pin_reconcile import Reconciler
from appliance.service.ratelimit import RateLimiter
from appliance.service.scrub import Scrubber
from appliance.state.lmdb_store import LmdbMetadataStore

__all__ = [
    "DomainServices",
    "admin_auth",
    "auditor",
    "write_local_admin_token",
    "PinJobs",
    "cluster_pinner",
    "iam_service",
    "kubo_client",
    "metadata_store",
    "orchestrator_settings",
    "policy_book",
    "read_counter",
    "s3_services",
    "scrub_service",
    "scrub_tasks",
    "simulate_identity",
]


def kubo_client(config: AppConfig) -> KuboClient:
    ipfs = config.ipfs
    return KuboClient(
        ipfs.api_url,
        chunk_size=ipfs.chunk_size,
        timeout=ipfs.timeout,
        connect_timeout=ipfs.connect_timeout,
        auth_header=ipfs.auth_header,
    )


def metadata_store(config: AppConfig) -> LmdbMetadataStore:
    return LmdbMetadataStore(
        config.meta_path, map_size=config.metadata.map_size, pin_outbox=bool(config.cluster.endpoints)
    )


def cluster_pinner(config: AppConfig) -> ClusterPinner | None:
    """The cluster pinner when `cluster.endpoints` is set, else None (pins stay on the local node)."""
    cluster = config.cluster
    if not cluster.endpoints:
        return None
    client = ClusterClient(
        cluster.endpoints,
        basic_auth=(cluster.username, cluster.password) if cluster.username else None,
        jwt=cluster.jwt or None,
        timeout=cluster.timeout,
        connect_timeout=cluster.connect_timeout,
    )
    return ClusterPinner(client)


def policy_book(config: AppConfig, store: LmdbMetadataStore) -> PolicyBook:
    pinning = config.pinning
    return PolicyBook(store, ReplicationPolicy(pinning.replication_min, pinning.replication_max, pinning.ack))


def orchestrator_settings(config: AppConfig) -> OrchestratorSettings:
    pinning = config.pinning
    return OrchestratorSettings(
        interval=pinning.outbox_interval_seconds,
        concurrency=pinning.outbox_concurrency,
        batch=pinning.outbox_batch,
        retry_base=pinning.retry_base_seconds,
        retry_max=pinning.retry_max_seconds,
        poll=pinning.status_poll_seconds,
        pin_timeout=pinning.pin_timeout_seconds,
        extra_limit=pinning.max_replication,
    )


@dataclass(frozen=True, slots=True)
class DomainServices:
    """The object, multipart and bucket services of one process, over its store and content store. Built here
    only: the S3 workers serve them, the main process's admin API and upload sweep use them."""

    objects: ObjectService
    multipart: MultipartService
    buckets: BucketService

    @classmethod
    def build(
        cls,
        config: AppConfig,
        store: MetadataStore,
        content: ContentStore,
        *,
        acknowledger: PinAcknowledger | None = None,
        on_read: Callable[[str], None] | None = None,
    ) -> DomainServices:
        grace = config.objects.unpin_grace_seconds
        objects = ObjectService(store, content, unpin_grace=grace, acknowledger=acknowledger, on_read=on_read)
        return cls(
            objects=objects,
            multipart=MultipartService(
                store,
                content,
                unpin_grace=grace,
                confirm=objects.confirm_replication,
                completed_retention=config.objects.completed_upload_seconds,
            ),
            buckets=BucketService(store, default_region=config.s3.region),
        )


def _identity_policy(text: str) -> Policy:
    return parse_policy(text, kind="identity")


def simulate_identity(
    principal: Principal, policies: list[Any], action: str, resource: str, source_ip: str
) -> dict[str, Any]:
    """The simulator core (iam_authorize.simulate) for `s3ipfs iam simulate`: identity policies only (no bucket policy
    or ACL is known to the simulator), over plain HTTP, now."""
    facts = RequestFacts(
        action=action,
        resource=resource,
        principal=principal,
        source_ip=source_ip,
        secure_transport=False,
        current_time=time.time(),
        context={},
    )
    decision = simulate(facts, policies, None, None)
    return {"allowed": decision.allowed, "explicit_deny": decision.explicit_deny, "reason": decision.reason}


def iam_service(config: AppConfig, store: LmdbMetadataStore) -> IamService:
    """The IAM service of one process over its store (the S3 workers use its policy source, the admin API all of
    it)."""
    iam = config.iam
    return IamService(
        store,
        SecretBox(load_or_create_key(config.iam_key_path)),
        parse=_identity_policy,
        builtin=BUILTIN,
        root_file=config.credentials_path,
        decide=simulate_identity,
        settings=IamSettings(
            max_keys_per_user=iam.max_keys_per_user,
            max_attached=iam.max_attached_policies,
            max_grace=iam.max_rotation_grace_seconds,
        ),
    )


def s3_services(
    config: AppConfig,
    services: DomainServices,
    iam: IamService,
    audit: Auditor | None = None,
    *,
    limiter: RateLimiter | None = None,
) -> S3Services:
    """What the S3 app of one worker receives: the root keys come from their file (re-read after a rotation, so a
    rotated-out root key stops working in every worker), the IAM users' keys and policies from `iam`; `limiter`
    spends from the rate-limit table the main process made (None: rate limiting off)."""
    source: PolicySource = iam.source
    return S3Services(
        auditor=audit or Auditor(None),
        objects=services.objects,
        multipart=services.multipart,
        buckets=services.buckets,
        identity=Identity([], root_file=config.credentials_path, users=source),
        s3=config.s3,
        auth=config.auth,
        policies=source,
        access=ListenerAccess.from_config(config.s3),
        limiter=limiter,
    )


def read_counter(recorder: AccessRecorder) -> Callable[[str], None]:
    """The GET hook of the dynamic policy: counts in memory; flushes early when many CIDs are pending."""
    early: set[asyncio.Task[int]] = set()

    def on_read(cid: str) -> None:
        if recorder.note(cid) and not early:
            task = asyncio.get_running_loop().create_task(recorder.flush())
            early.add(task)
            task.add_done_callback(early.discard)

    return on_read


@dataclass
class PinJobs:
    """The pin jobs over many CIDs, run once per appliance in the main process (and on demand by the admin API)."""

    reconciler: Reconciler
    dynamic: HotColdPolicy
    batches: BatchRunner
    rebalancer: Rebalancer | None  # a cluster only

    @classmethod
    def build(
        cls,
        config: AppConfig,
        store: LmdbMetadataStore,
        pinner: Pinner,
        policies: PolicyBook,
        orchestrator: PinOrchestrator,
    ) -> PinJobs:
        pinning = config.pinning

        def changed(count: int) -> None:
            orchestrator.replication_changes_total += count
            orchestrator.wake()

        dynamic = HotColdPolicy(
            store,
            DynamicSettings(
                half_life=pinning.half_life_seconds,
                hot_threshold=pinning.hot_threshold,
                cold_threshold=pinning.cold_threshold,
                hot_extra=pinning.hot_extra_replicas,
                min_dwell=pinning.min_dwell_seconds,
                max_changes=pinning.max_changes_per_pass,
            ),
            on_change=changed,
        )
        rebalancer = None
        if pinner.kind == "cluster":
            rebalancer = Rebalancer(
                pinner,
                RebalanceSettings(
                    min_free=pinning.rebalance_min_free_bytes,
                    overload_factor=pinning.rebalance_overload_factor,
                    max_moves=pinning.rebalance_max_moves,
                    move_timeout=pinning.pin_timeout_seconds,
                    poll=pinning.status_poll_seconds,
                ),
                on_change=changed,
            )
        return cls(
            reconciler=Reconciler(
                store, pinner, orphan_grace=pinning.orphan_grace_seconds, on_queued=orchestrator.wake
            ),
            dynamic=dynamic,
            batches=BatchRunner(store, pinner, policies, on_queued=changed),
            rebalancer=rebalancer,
        )

    def periodic(self, config: AppConfig, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """The tasks that run the jobs on their intervals: reconcile always, the others when enabled."""
        pinning = config.pinning
        # The first reconcile runs a minute after start (not at once: a restart should not hit the cluster with a
        # full pinset listing while it is itself still starting), then every interval.
        out = [
            asyncio.create_task(
                every(
                    pinning.reconcile_interval_seconds,
                    self.reconciler.run,
                    stop,
                    name="reconcile pass",
                    first_delay=min(60.0, pinning.reconcile_interval_seconds),
                ),
                name="reconcile",
            )
        ]
        if pinning.dynamic_enabled:
            out.append(
                asyncio.create_task(
                    every(
                        pinning.dynamic_interval_seconds,
                        self.dynamic.run_once,
                        stop,
                        name="dynamic replication pass",
                        first_delay=5.0,
                    ),
                    name="dynamic-replication",
                )
            )
        rebalancer = self.rebalancer
        if pinning.rebalance_enabled and rebalancer is not None:
            out.append(
                asyncio.create_task(
                    every(
                        pinning.rebalance_interval_seconds,
                        rebalancer.run,
                        stop,
                        name="rebalance pass",
                        first_delay=pinning.rebalance_interval_seconds,
                    ),
                    name="rebalance",
                )
            )
        return out


def scrub_service(
    config: AppConfig,
    *,
    store: LmdbMetadataStore,
    kubo: KuboClient,
    pinner: Pinner,
    policies: PolicyBook,
    orchestrator: PinOrchestrator,
) -> Scrubber:
    """The scrub service of the main process (one run at a time per appliance)."""
    scrub = config.scrub
    checker = LocalDagChecker(
        kubo, check_deadline=scrub.check_timeout_seconds, fetch_deadline=scrub.fetch_timeout_seconds
    )
    return Scrubber(store, checker, pinner, policies, on_queued=orchestrator.wake, default_rate=scrub.rate)


def scrub_tasks(scrubber: Scrubber, config: AppConfig, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """One task until `stop`: take up a run the daemon stopped during (after `resume_delay_seconds`), then run
    periodically when `scrub.interval_seconds` is set."""

    async def forever() -> None:
        scrub = config.scrub
        if not await sleep_or_stop(stop, scrub.resume_delay_seconds):
            try:
                await scrubber.resume()
            except Exception:
                logging.getLogger(__name__).exception("could not resume the interrupted scrub run")
        if scrub.interval_seconds > 0:
            await every(
                scrub.interval_seconds, scrubber.run_periodic, stop, name="scrub", first_delay=scrub.interval_seconds
            )
        await stop.wait()

    return [asyncio.create_task(forever(), name="scrub")]


def auditor(config: AppConfig) -> tuple[Auditor, AuditLog | None]:
    """This process's auditor over the shared audit directory (each process opens its own AuditLog: the file lock
    and O_APPEND make them safe together), and the log to close at the end (None when audit is off)."""
    audit = config.audit
    if not audit.enabled:
        return Auditor(None), None
    journal = audit.journal == "on" or (audit.journal == "auto" and under_systemd() and os.path.exists(JOURNAL_SOCKET))
    settings = AuditSettings(
        directory=config.audit_path,
        max_file_bytes=audit.max_file_bytes,
        rotate_seconds=audit.rotate_seconds,
        retention=audit.retention,
    )
    try:
        writer = AuditLog(settings, sink=JournalSink() if journal else None)
    except OSError as exc:
        raise ConfigError(f"audit.dir {settings.directory}: cannot use it ({exc.strerror}); check permissions") from exc
    return Auditor(writer.append), writer


def admin_auth(config: AppConfig, creds: Credentials, audit: Auditor) -> AdminAuth:
    """The admin API's authentication: tokens in <state_dir>/keys/admin-tokens.json, the root key, the Host check.
    (The IAM work connects `verify_key` and `authorize` for IAM users with admin rights.)"""
    admin = config.admin
    return AdminAuth(
        tokens=TokenStore(config.admin_token_path.with_name("admin-tokens.json")),
        root=creds,
        hosts=allowed_hosts(admin.host, admin.port, admin.server_names),
        default_ttl=admin.token_ttl_seconds,
        max_ttl=admin.token_max_ttl_seconds,
        auditor=audit,
    )


def write_local_admin_token(auth: AdminAuth, path: os.PathLike[str] | str) -> None:
    """Issue the local root token (replacing the previous start's) and write it 0600 for the CLI/TUI on the box."""
    try:
        token, _record = auth.tokens.issue(user="root", access_key=auth.root.access_key, ttl=None, local=True)
        tmp = f"{os.fspath(path)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the local admin token ({exc.strerror}); check permissions") from exc
