"""The composition root: builds every component from config, owns their lifetimes, serves S3 and admin, handles signals.

Process model: the main process binds the S3 listening sockets, then spawns `config.worker_count` worker processes
(multiprocessing *spawn*: LMDB environments must not cross a fork) that inherit the sockets and each serve the S3 app
with hypercorn. The main process runs, exactly once per appliance, the unpinner, the pin outbox orchestrator and the
admin API, restarts a worker that dies, tells systemd READY/STOPPING, and on SIGTERM/SIGINT drains the workers and
exits 0. SIGHUP (`systemctl reload`) reloads the TLS certificates: the main process reloads the admin listener's and
forwards the signal to every serving worker, which reloads the S3 listener's in place (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import queue
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart

from appliance import metrics
from appliance.api.access import ListenerAccess
from appliance.api.admin.app import AdminState, create_admin_app
from appliance.api.admin.ratelimit_metrics import RateLimitMetrics
from appliance.api.s3.app import create_app
from appliance.api.tls import ReloadableTls, TlsHypercornConfig
from appliance.cache.memory import CachingContentStore, MemoryCache
from appliance.components import ContentStore, Pinner
from appliance.config import AdminConfig, AppConfig, S3Config
from appliance.errors import ConfigError, S3IpfsError
from appliance.pinning.local import LocalPinner
from appliance.service.identity import Credentials, load_or_create_root
from appliance.service.periodic import every, sleep_or_stop
from appliance.service.pin_dynamic import AccessRecorder
from appliance.service.pin_orchestrator import PinAcknowledger, PinOrchestrator
from appliance.service.rate_table import RateTable
from appliance.service.ratelimit import RateLimiter, table_path
from appliance.service.scrub import Scrubber
from appliance.service.unpinner import Unpinner
from appliance.wiring import (
    DomainServices,
    PinJobs,
    admin_auth,
    auditor,
    cluster_pinner,
    iam_service,
    kubo_client,
    metadata_store,
    orchestrator_settings,
    policy_book,
    read_counter,
    s3_services,
    scrub_service,
    scrub_tasks,
    write_local_admin_token,
)

__all__ = ["run"]

log = logging.getLogger(__name__)

_RESTART_BACKOFF = 1.0  # seconds before a dead worker is replaced; doubles while it keeps dying
_RESTART_BACKOFF_MAX = 30.0
_STABLE_AFTER = 60.0  # a worker up this long has recovered: its backoff starts over
_KILL_MARGIN = 5.0  # seconds past graceful_timeout before stragglers are killed
_READY_WAIT = 120.0  # seconds to wait for every worker's first start before READY=1 anyway
_POLL = 0.2
_KEEP_ALIVE = 75.0  # longer than the usual client/load-balancer idle timeout (60 s)
_ADMIN_GRACE = 5.0


def _setup_logging(role: str) -> None:
    """Log to stderr (journald picks it up) with the process role in every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per Kubo call is noise


def _hypercorn_config(
    binds: list[str], *, graceful_timeout: float, tls: ReloadableTls | None = None
) -> HypercornConfig:
    hc = TlsHypercornConfig(tls)
    hc.bind = binds
    hc.keep_alive_timeout = _KEEP_ALIVE
    hc.graceful_timeout = graceful_timeout
    hc.include_server_header = False
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")  # through our handler, with the role
    return hc


def _bind(host: str, port: int, key: str) -> list[socket.socket]:
    """Listening sockets for every address `host` resolves to; ConfigError names `key` when none can be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"{key.rsplit('.', 1)[0]}.host {host!r}: cannot resolve it ({exc.strerror})") from exc
    sockets: list[socket.socket] = []
    seen: set[Any] = set()
    last_error: OSError | None = None
    for family, type_, proto, _name, addr in infos:
        if addr in seen:
            continue
        seen.add(addr)
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL:  # e.g. ::1 for "localhost" on a host without IPv6
                last_error = exc
                continue
            for other in sockets:
                other.close()
            raise ConfigError(
                f"{key} {port}: cannot listen on {host}:{port} ({exc.strerror}); choose a free port"
            ) from exc
        sock.setblocking(False)
        sock.set_inheritable(True)
        sockets.append(sock)
    if not sockets:
        reason = last_error.strerror if last_error else "no address"
        raise ConfigError(f"{key} {port}: cannot listen on {host}:{port} ({reason})")
    return sockets


def _listener_tls(name: str, listener: S3Config | AdminConfig) -> ReloadableTls | None:
    """The listener's TLS context when it has a certificate; ConfigError naming the keys when it does not load."""
    if not listener.tls_certfile:
        return None
    try:
        return ReloadableTls(name, listener.tls_certfile, listener.tls_keyfile, listener.tls_min_version)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"{name}.tls_certfile {listener.tls_certfile!r} / {name}.tls_keyfile {listener.tls_keyfile!r}: cannot "
            f"load them ({exc}); give a PEM certificate and its matching private key (`s3ipfs tls issue` makes a pair)"
        ) from exc


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


# ---- worker processes ---------------------------------------------------------------------------------------


def _worker_main(
    index: int,
    config: AppConfig,
    creds: Credentials,
    sockets: list[socket.socket],
    ready: Queue[int],
    *,
    ratelimit_table: str = "",
) -> None:
    """Entry point of one S3 worker process (runs after spawn, so LMDB is opened in this process)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the TLS reload handler is installed: never die of it
    _setup_logging(f"worker-{index}")
    # Hypercorn owns the listening descriptors from here on (it builds its own socket objects on them).
    binds = [f"fd://{sock.detach()}" for sock in sockets]
    try:
        asyncio.run(_serve_worker(index, config, creds, binds, ready, ratelimit_table=ratelimit_table))
    except S3IpfsError as exc:
        log.error("worker %d cannot run: %s", index, exc.message)
        sys.exit(exc.exit_code)


async def _serve_worker(
    index: int, config: AppConfig, creds: Credentials, binds: list[str], ready: Queue[int], *, ratelimit_table: str
) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    tls = _listener_tls("s3", config.s3)
    if tls is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, tls.reload)
    table = RateTable.open(Path(ratelimit_table)) if ratelimit_table else None
    limiter = RateLimiter(config.ratelimit, table) if table is not None else None
    store = metadata_store(config)
    kubo = kubo_client(config)
    cluster = cluster_pinner(config)
    content: ContentStore = kubo
    if config.cache.memory_bytes and config.cache.max_object_bytes:
        content = CachingContentStore(kubo, MemoryCache(config.cache.memory_bytes, config.cache.max_object_bytes))
    recorder: AccessRecorder | None = None
    flusher: asyncio.Task[None] | None = None
    usage: asyncio.Task[None] | None = None
    audit, audit_log = auditor(config)
    try:
        ack = None
        if cluster is not None:
            ack = PinAcknowledger(cluster, policy_book(config, store), timeout=config.pinning.ack_timeout_seconds)
        on_read = None
        if config.pinning.dynamic_enabled:
            recorder = AccessRecorder(store, half_life=config.pinning.half_life_seconds)
            on_read = read_counter(recorder)
            flusher = asyncio.create_task(recorder.run_forever(stop, config.pinning.access_flush_seconds))
        services = DomainServices.build(config, store, content, acknowledger=ack, on_read=on_read)
        iam = iam_service(config, store)
        usage = asyncio.create_task(iam.source.run_forever(stop, config.iam.usage_flush_seconds))
        app = create_app(s3_services(config, services, iam, audit, limiter=limiter))

        @app.before_serving
        async def _announce() -> None:
            ready.put(index)

        hc = _hypercorn_config(binds, graceful_timeout=config.s3.graceful_timeout, tls=tls)
        hc.max_app_queue_size = 4  # a small per-request queue makes slow IPFS writes push back on the client
        hc.h11_max_incomplete_size = config.s3.max_header_bytes
        await serve(app, hc, shutdown_trigger=stop.wait)
        log.info("worker %d stopped serving", index)
    finally:
        if flusher is not None or usage is not None:
            stop.set()
        for task in (flusher, usage):
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=5.0)  # writes the last counts and last-used times
        if cluster is not None:
            await cluster.aclose()
        await kubo.aclose()
        store.close()
        if table is not None:
            table.close()
        if audit_log is not None:
            audit_log.close()


# ---- the main process ---------------------------------------------------------------------------------------


@dataclass
class _Workers:
    """The S3 worker processes: start, watch and restart them, stop them at the end."""

    config: AppConfig
    creds: Credentials
    sockets: list[socket.socket]
    ctx: SpawnContext = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    procs: dict[int, SpawnProcess] = field(default_factory=dict)
    ready: set[int] = field(default_factory=set)
    restarts: int = 0
    backoff: dict[int, float] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    fatal: int | None = None  # a worker's exit code that means "restarting cannot help" (a config error)
    restart_due: dict[int, float] = field(default_factory=dict)  # dead workers: when (monotonic) to start again
    ratelimit_table: str = ""  # the shared rate-limit table's path ("" = rate limiting off)

    def __post_init__(self) -> None:
        self.queue: Queue[int] = self.ctx.Queue()

    def start(self, index: int) -> None:
        proc = self.ctx.Process(
            target=_worker_main,
            args=(index, self.config, self.creds, self.sockets, self.queue),
            kwargs={"ratelimit_table": self.ratelimit_table},
            name=f"s3ipfs-worker-{index}",
            daemon=True,
        )
        proc.start()
        self.procs[index] = proc
        self.started[index] = time.monotonic()

    def drain_ready(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.ready.add(self.queue.get_nowait())

    def not_ready(self) -> str | None:
        """None when every worker has started serving, else how many have (for admin /ready)."""
        self.drain_ready()
        serving = sum(1 for index in self.ready if index in self.procs and self.procs[index].is_alive())
        if serving >= self.config.worker_count:
            return None
        return f"{serving} of {self.config.worker_count} S3 worker processes are serving"

    def signal_serving(self, sig: int) -> None:
        """Send `sig` to every worker that has started serving (one still starting reads its files anyway)."""
        self.drain_ready()
        for index, proc in self.procs.items():
            if index in self.ready and proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

    async def wait_ready(self, stop: asyncio.Event, within: float) -> bool:
        deadline = time.monotonic() + within
        while not stop.is_set() and time.monotonic() < deadline:
            self.drain_ready()
            if len(self.ready) >= len(self.procs):
                return True
            await sleep_or_stop(stop, _POLL)
        return False

    async def supervise(self, stop: asyncio.Event, notify: Callable[[str], None]) -> None:
        """Restart a worker that exits while the appliance is not stopping."""

        async def check() -> None:
            self.check(stop, notify, time.monotonic())

        await every(_POLL, check, stop, name="worker supervision")

    def check(self, stop: asyncio.Event, notify: Callable[[str], None], now: float) -> None:
        """One supervision pass at monotonic time `now`: a worker found dead gets its restart scheduled after its
        backoff (while the others stay watched); a worker whose restart is due is started again."""
        for index in [index for index, due in self.restart_due.items() if now >= due]:
            if stop.is_set():
                return
            del self.restart_due[index]
            self.start(index)
            self.restarts += 1
            notify(f"STATUS=serving; worker {index} restarted ({self.restarts} restarts so far)")
        for index, proc in list(self.procs.items()):
            if stop.is_set() or proc.is_alive():
                continue
            proc.join()
            code = proc.exitcode
            if code == ConfigError.exit_code:
                log.error("worker %d cannot start (exit code %s: a configuration error); stopping", index, code)
                self.fatal = code
                stop.set()
                return
            if now - self.started.get(index, 0.0) > _STABLE_AFTER:
                self.backoff[index] = _RESTART_BACKOFF
            delay = self.backoff.get(index, _RESTART_BACKOFF)
            self.backoff[index] = min(delay * 2, _RESTART_BACKOFF_MAX)
            log.error("worker %d (pid %s) died with exit code %s; restarting in %.0f s", index, proc.pid, code, delay)
            if proc.pid is not None:
                metrics.process_dead(proc.pid)  # its live gauges go; its counts stay in the sums
            del self.procs[index]  # a closed process cannot even be asked is_alive()
            proc.close()
            self.ready.discard(index)
            self.restart_due[index] = now + delay

    async def stop(self, grace: float) -> None:
        """SIGTERM every worker, wait `grace` seconds, then SIGKILL the rest."""
        alive = [p for p in self.procs.values() if p.is_alive()]
        for proc in alive:
            proc.terminate()
        await asyncio.to_thread(_join_all, alive, grace)
        for proc in alive:
            if proc.is_alive():
                log.warning("worker pid %s did not stop within %.0f s; killing it", proc.pid, grace)
                proc.kill()
        for proc in self.procs.values():
            await asyncio.to_thread(proc.join, 5.0)
        self.queue.close()
        self.queue.join_thread()


def _join_all(procs: list[SpawnProcess], within: float) -> None:
    deadline = time.monotonic() + within
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))


def _notifier() -> Callable[[str], None]:
    """sd_notify when run by systemd (Type=notify); a no-op otherwise."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return lambda _state: None
    import sdnotify

    notifier = sdnotify.SystemdNotifier()

    def notify(state: str) -> None:
        notifier.notify(state)

    return notify


async def _serve_admin(
    app: Quart, sockets: list[socket.socket], stop: asyncio.Event, tls: ReloadableTls | None
) -> None:
    # Hypercorn's server closes the descriptors it serves: hand them over rather than share them.
    hc = _hypercorn_config([f"fd://{sock.detach()}" for sock in sockets], graceful_timeout=_ADMIN_GRACE, tls=tls)
    await serve(app, hc, shutdown_trigger=stop.wait)


@dataclass(frozen=True, slots=True)
class _Security:
    """What run() prepares before the event loop: the admin TLS context and the shared rate-limit table."""

    admin_tls: ReloadableTls | None
    table: RateTable | None


async def _main(
    config: AppConfig,
    creds: Credentials,
    s3_sockets: list[socket.socket],
    admin_sockets: list[socket.socket],
    security: _Security = _Security(None, None),
) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    notify = _notifier()
    notify("STATUS=starting workers")

    store = metadata_store(config)
    kubo = kubo_client(config)
    cluster = cluster_pinner(config)
    pinner: Pinner = cluster if cluster is not None else LocalPinner(kubo)
    table = security.table
    workers = _Workers(config, creds, s3_sockets, ratelimit_table=str(table.path) if table is not None else "")

    def _reload_tls() -> None:
        log.info("SIGHUP: reloading the TLS certificates")
        if security.admin_tls is not None:
            security.admin_tls.reload()
        workers.signal_serving(signal.SIGHUP)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload_tls)
    tasks: list[asyncio.Task[None]] = []
    failed: list[str] = []
    jobs: PinJobs | None = None
    scrubber: Scrubber | None = None
    audit, audit_log = auditor(config)
    try:
        unpinner = Unpinner(store, kubo, interval=config.objects.unpin_interval_seconds, replica=cluster)
        services = DomainServices.build(config, store, kubo)
        policies = policy_book(config, store)
        orchestrator = PinOrchestrator(store, pinner, policies, orchestrator_settings(config))
        jobs = PinJobs.build(config, store, pinner, policies, orchestrator)
        scrubber = scrub_service(
            config, store=store, kubo=kubo, pinner=pinner, policies=policies, orchestrator=orchestrator
        )
        auth = admin_auth(config, creds, audit)
        write_local_admin_token(auth, config.admin_token_path)
        admin_app = create_admin_app(
            AdminState(
                objects=services.objects,
                content=kubo,
                store=store,
                unpinner=unpinner,
                workers=workers.not_ready,
                pinner=pinner,
                policies=policies,
                orchestrator=orchestrator,
                reconciler=jobs.reconciler,
                rebalancer=jobs.rebalancer,
                dynamic=jobs.dynamic,
                batches=jobs.batches,
                scrubber=scrubber,
                state_dir=config.state_dir,
                certificates=tuple(
                    (name, path)
                    for name, path in (("s3", config.s3.tls_certfile), ("admin", config.admin.tls_certfile))
                    if path
                ),
                iam=iam_service(config, store),
                access=ListenerAccess.from_config(config.admin),
                collectors=(RateLimitMetrics(table),) if table is not None else (),
            ),
            auth,
        )
        admin_up = asyncio.Event()

        @admin_app.before_serving
        async def _admin_up() -> None:
            admin_up.set()

        for index in range(config.worker_count):
            workers.start(index)
        admin_stop = asyncio.Event()
        tasks.append(
            asyncio.create_task(_serve_admin(admin_app, admin_sockets, admin_stop, security.admin_tls), name="admin")
        )
        tasks.append(asyncio.create_task(unpinner.run_forever(stop), name="unpinner"))
        tasks.append(asyncio.create_task(orchestrator.run_forever(stop), name="pin-outbox"))
        tasks.extend(jobs.periodic(config, stop))
        tasks.extend(scrub_tasks(scrubber, config, stop))
        tasks.append(
            asyncio.create_task(
                every(
                    config.objects.abandoned_check_interval_seconds,
                    lambda: services.multipart.abort_abandoned(config.objects.abandoned_upload_seconds),
                    stop,
                    name="abandoned upload sweep",
                ),
                name="abandoned-uploads",
            )
        )
        tasks.append(asyncio.create_task(workers.supervise(stop, notify), name="supervisor"))

        def _ended(task: asyncio.Task[None]) -> None:
            # These run until `stop`; one that ends earlier (the admin server could not serve) stops the appliance.
            if not stop.is_set():
                failed.append(task.get_name())
                log.error("the %s task ended unexpectedly; stopping", task.get_name())
                stop.set()

        for task in tasks:
            task.add_done_callback(_ended)

        all_ready = await workers.wait_ready(stop, _READY_WAIT)
        await _first(stop.wait, admin_up.wait)
        if not stop.is_set():
            if not all_ready:
                log.warning("not every worker reported ready within %.0f s", _READY_WAIT)
            log.info(
                "serving S3 on %s:%d with %d workers; admin API on %s:%d",
                config.s3.host,
                config.s3.port,
                config.worker_count,
                config.admin.host,
                config.admin.port,
            )
            notify("READY=1")
            notify(f"STATUS=serving S3 on {config.s3.host}:{config.s3.port} with {config.worker_count} workers")

        await stop.wait()
        log.info("stopping: draining workers (up to %.0f s)", config.s3.graceful_timeout)
        notify("STOPPING=1")
        notify("STATUS=stopping")
        admin_stop.set()
        await workers.stop(config.s3.graceful_timeout + _KILL_MARGIN)
        done, pending = await asyncio.wait(tasks, timeout=_ADMIN_GRACE + 1)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("%s ended with an error", task.get_name(), exc_info=task.exception())
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if any(p.is_alive() for p in workers.procs.values()):
            await workers.stop(0.0)
        if jobs is not None:
            await jobs.batches.aclose()
        if scrubber is not None:
            await scrubber.aclose()
        await pinner.aclose()
        await kubo.aclose()
        store.close()
        if audit_log is not None:
            audit_log.close()
    log.info("stopped")
    if workers.fatal is not None:
        return workers.fatal
    return 1 if failed else 0


async def _first(*waits: Callable[[], Awaitable[Any]]) -> None:
    """Return as soon as one of `waits` completes."""
    tasks = [asyncio.ensure_future(w()) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def run(config: AppConfig) -> int:
    """Run the gateway until SIGTERM/SIGINT; returns the exit code. Raises ConfigError for unusable settings."""
    _setup_logging("main")
    try:
        os.makedirs(config.state_dir, exist_ok=True)
        config.meta_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"state_dir {config.state_dir}: cannot create it ({exc.strerror}); check permissions"
        ) from exc
    try:
        # Before any worker is spawned (they inherit the directory through the environment).
        metrics.prepare_multiprocess(Path(config.state_dir) / "run" / "metrics")
    except OSError as exc:
        raise ConfigError(f"state_dir {config.state_dir}: cannot create run/metrics ({exc.strerror})") from exc
    creds, created = load_or_create_root(config.credentials_path)
    if created:
        log.info("wrote a new root key pair to %s (show it with `s3ipfs credentials show`)", config.credentials_path)
    log.info("root access key: %s", creds.access_key)
    _listener_tls("s3", config.s3)  # each worker loads its own; checked here so a bad pair is reported once
    admin_tls = _listener_tls("admin", config.admin)
    s3_sockets = _bind(config.s3.host, config.s3.port, "s3.port")
    try:
        admin_sockets = _bind(config.admin.host, config.admin.port, "admin.port")
    except BaseException:
        for sock in s3_sockets:
            sock.close()
        raise
    table: RateTable | None = None
    try:
        if config.ratelimit.enabled:
            table = RateTable.create(table_path(config.state_dir), config.ratelimit.table_slots)
        return asyncio.run(_main(config, creds, s3_sockets, admin_sockets, _Security(admin_tls, table)))
    finally:
        if table is not None:
            table.close()
            table.unlink()
        for sock in s3_sockets + admin_sockets:
            sock.close()
