"""The pin orchestrator: drains the durable pin outbox into the pinner, once per appliance (the supervisor process).

A job is leased (state/pin_store.py), pinned with its bucket's policy, then verified until the pinner reports
`replication_min` peers pinned; failures are retried with exponential backoff and jitter and recorded as the CID's
pin status (`error`, with the per-peer map). Pins are idempotent, so a job re-run after a crash is harmless, and a
job is finished (removed, `completions + 1`) exactly once. The orchestrator never dies of a job's error.

Also here: `PinAcknowledger`, which a PUT in a bucket with `ack: cluster` uses to wait, with a timeout, until the
cluster reports the object's CID pinned on `replication_min` peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Histogram

from appliance.components import MetadataStore, Pinner
from appliance.errors import BackendUnavailable, NoSuchBucket, S3IpfsError
from appliance.model import PinJob, PinRecord, PinReport, ReplicationPolicy
from appliance.service.periodic import every
from appliance.service.pin_policy import PolicyBook

__all__ = ["PIN_METADATA", "OrchestratorSettings", "PinAcknowledger", "PinOrchestrator", "pin_duration_histogram"]

log = logging.getLogger(__name__)

#: Metadata on every cluster pin the gateway makes: reconcile recognises its own pins by it.
PIN_METADATA = {"s3ipfs": "1"}
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


def pin_duration_histogram(registry: CollectorRegistry | None) -> Histogram:
    """`ipfs_pin_duration_seconds`: from a pin's first request to the pinner until its policy was met."""
    return Histogram(
        "ipfs_pin_duration_seconds",
        "Seconds from asking for a pin until replication_min peers reported it pinned.",
        ["pinner"],
        buckets=_BUCKETS,
        registry=registry,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class OrchestratorSettings:
    """Timings of the outbox (config: pinning.*)."""

    interval: float = 1.0  # seconds between passes when the outbox is idle
    concurrency: int = 16
    batch: int = 500
    lease: float = 300.0  # an in-flight job older than this is claimable again
    retry_base: float = 1.0
    retry_max: float = 300.0
    poll: float = 2.0  # seconds between status checks of a pin in progress
    pin_timeout: float = 600.0  # a pin still not at its policy after this is an error (and recovered)
    extra_limit: int = 0  # the dynamic policy never raises replication above this (0: no limit)


def _record(
    job: PinJob, state: str, *, policy: ReplicationPolicy, now: float, report: PinReport | None, error: str
) -> PinRecord:
    return PinRecord(
        cid=job.cid,
        state=state,
        name=job.name,
        peers=report.peers if report is not None else (),
        error=error,
        updated=now,
        attempts=job.attempts,
        replication_min=policy.replication_min,
        replication_max=policy.replication_max,
        extra=job.extra,
    )


class PinOrchestrator:
    """Drains the outbox with bounded concurrency."""

    def __init__(
        self,
        store: MetadataStore,
        pinner: Pinner,
        policies: PolicyBook,
        settings: OrchestratorSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._store = store
        self._pinner = pinner
        self._policies = policies
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self.duration = pin_duration_histogram(registry)
        self.duration.labels(pinner.kind)  # exported (empty) before the first pin completes: dashboards and alerts
        self.completed_total = 0
        self.errors_total = 0
        self.attempts_total = 0
        self.replication_changes_total = 0
        self._wake = asyncio.Event()

    def now(self) -> float:
        """The orchestrator's clock (wall time)."""
        return self._clock()

    def wake(self) -> None:
        """Start the next pass now (new jobs were queued)."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Delay before retry number `attempts` (1, 2, ...): exponential, capped, with ±50 % jitter."""
        base = min(self._settings.retry_max, self._settings.retry_base * float(2 ** min(attempts - 1, 30)))
        return base * (0.5 + float(self._rng.random()))

    async def recover_claims(self) -> int:
        """At start: jobs a previous (killed) orchestrator had claimed are due again now."""
        return await asyncio.to_thread(self._store.requeue_inflight_pins, self._clock())

    async def run_once(self) -> int:
        """One pass: every due job (up to a batch) processed; returns how many jobs were processed."""
        jobs = await asyncio.to_thread(
            self._store.claim_pin_jobs, self._clock(), self._settings.batch, lease=self._settings.lease
        )
        if not jobs:
            return 0
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def one(job: PinJob) -> None:
            async with gate:
                try:
                    await self._process(job)
                except Exception:  # never lose the orchestrator to one job; the lease brings the job back
                    self.errors_total += 1
                    log.exception("pin job for %s failed unexpectedly; it is retried after its lease", job.cid)

        await asyncio.gather(*(one(job) for job in jobs))
        return len(jobs)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """A pass every interval (or at once when woken) until `stop`; a full batch goes straight on to the next."""
        try:
            await self.recover_claims()
        except Exception:  # the claims' leases bring the jobs back anyway
            log.exception("could not requeue the pin jobs claimed before the restart")
        batch = self._settings.batch
        await every(
            self._settings.interval,
            self.run_once,
            stop,
            name="pin outbox pass",
            wake=self._wake,
            again=lambda done: done >= batch,
        )

    async def _process(self, job: PinJob) -> None:
        now = self._clock()
        try:
            policy = (await self._policies.get(job.bucket)).with_extra(job.extra, self._settings.extra_limit)
        except NoSuchBucket:
            # The bucket is gone (its objects with it): the job is cancelled with the last reference.
            policy = self._policies.defaults.with_extra(job.extra, self._settings.extra_limit)
        except S3IpfsError as exc:
            # A policy that cannot be read (corrupt, metadata error): an error status, retried with backoff.
            await self._failed(job, self._policies.defaults, None, f"replication policy: {exc.message}")
            return
        if job.phase == "pin":
            job = dataclasses.replace(job, started=job.started or now)
            self.attempts_total += 1
            try:
                await self._pinner.pin(job.cid, name=job.name, policy=policy, metadata=PIN_METADATA)
            except S3IpfsError as exc:
                await self._failed(job, policy, None, f"pin request failed: {exc.message}")
                return
            job = dataclasses.replace(job, phase="verify")
        await self._verify(job, policy)

    async def _verify(self, job: PinJob, policy: ReplicationPolicy) -> None:
        try:
            report = await self._pinner.status(job.cid)
        except S3IpfsError as exc:
            await self._failed(job, policy, None, f"status request failed: {exc.message}")
            return
        now = self._clock()
        if report.satisfies(policy.replication_min):
            if await asyncio.to_thread(
                self._store.finish_pin_job, job, _record(job, "pinned", policy=policy, now=now, report=report, error="")
            ):
                self.completed_total += 1
                self.duration.labels(self._pinner.kind).observe(max(0.0, now - (job.started or job.created)))
            return
        if not report.in_pinset:
            # The pinner lost the pin (removed by hand, or its state was reset): ask again.
            await self._failed(dataclasses.replace(job, phase="pin"), policy, report, "the pin is not in the pinset")
            return
        errors = report.errors
        overdue = now - (job.started or now) > self._settings.pin_timeout
        if errors or overdue:
            what = "; ".join(f"{peer}: {status} {error}".strip() for peer, status, error in errors[:5])
            message = what or f"not pinned on {policy.replication_min} peers after {self._settings.pin_timeout:.0f} s"
            with contextlib.suppress(S3IpfsError):
                report = await self._pinner.recover(job.cid)
            await self._failed(job, policy, report, message)
            return
        pending = dataclasses.replace(job, due=now + self._settings.poll)
        await asyncio.to_thread(
            self._store.reschedule_pin_job,
            pending,
            _record(job, "pinning", policy=policy, now=now, report=report, error=""),
        )

    async def _failed(self, job: PinJob, policy: ReplicationPolicy, report: PinReport | None, message: str) -> None:
        self.errors_total += 1
        attempts = job.attempts + 1
        delay = self.backoff(attempts)
        log.warning("pin of %s (%s): %s; retry %d in %.1f s", job.cid, job.name, message, attempts, delay)
        now = self._clock()
        retry = dataclasses.replace(job, attempts=attempts, due=now + delay)
        await asyncio.to_thread(
            self._store.reschedule_pin_job,
            retry,
            _record(retry, "error", policy=policy, now=now, report=report, error=message),
        )


class PinAcknowledger:
    """For buckets with `ack: cluster`: pin a new object's CID and wait until `replication_min` peers have it."""

    def __init__(
        self,
        pinner: Pinner,
        policies: PolicyBook,
        *,
        timeout: float,
        poll: float = 0.05,  # a waiting client notices the pin within this (bench: the backoff added ~100 ms)
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pinner = pinner
        self._policies = policies
        self._timeout = timeout
        self._poll = poll
        self._clock = clock

    async def policy_for(self, bucket: str) -> ReplicationPolicy | None:
        """The bucket's policy when its PUTs wait for the cluster, else None."""
        policy = await self._policies.get(bucket)
        return policy if policy.ack == "cluster" else None

    async def pin_and_wait(self, cid: str, name: str, policy: ReplicationPolicy) -> PinReport:
        """Pin and poll (from 10 ms, doubling up to `poll`) until the policy's minimum is met. ServiceUnavailable
        if the cluster cannot be asked or does not confirm within the timeout."""
        deadline = self._clock() + self._timeout
        delay = 0.01
        try:
            await asyncio.wait_for(
                self._pinner.pin(cid, name=name, policy=policy, metadata=PIN_METADATA), timeout=self._timeout
            )
            while True:
                report = await asyncio.wait_for(self._pinner.status(cid), timeout=max(0.1, deadline - self._clock()))
                if report.satisfies(policy.replication_min):
                    return report
                if self._clock() + delay > deadline:
                    break
                await asyncio.sleep(delay)
                delay = min(self._poll, delay * 2)
        except TimeoutError:
            pass
        except S3IpfsError as exc:
            raise BackendUnavailable(
                f"The IPFS cluster could not pin the object ({exc.message}); it was not stored. Retry later."
            ) from exc
        raise BackendUnavailable(
            f"The IPFS cluster did not confirm {policy.replication_min} pinned copies within {self._timeout:.0f} s; "
            "the object was not stored. Retry later."
        )
