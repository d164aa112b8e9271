"""`make bench`: S3 gateway medians against baselines measured in the same run.

    .venv/bin/python -m bench.run [--quick] [--rounds N] [--no-gateway] [--no-pinning] [--only put-small,pinning,...]

Starts a loopback js-ipfs/Kubo node (appliance.ipfsconn.devnode.LocalNode), the bare Quart+hypercorn app of
bench/baseline_app.py (2 workers) and the gateway (`python -m appliance.cli serve --config CFG`, 2 workers),
all in a temp dir, and stops them again even on failure. Every scenario runs a warm-up, then `--rounds`
rounds with the sides interleaved (and their order rotated) so drift on a noisy machine hits all sides alike;
the table quotes medians. Timings are reported, never asserted.

The pinning group (bench/pinning.py: pin-outbox, pin-ack, pin-recovery; `--only pinning` selects all three,
`--no-pinning` skips them) runs afterwards on 3 nodes of its own under the IPFS-Cluster test peer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from appliance.errors import S3IpfsError
from appliance.ipfsconn.kubo import KuboClient
from bench.clients import S3, BenchRequestError, BigPayload, drain, ipfs_add, ipfs_add_stream, ipfs_cat
from bench.procs import ROOT, BenchSetupError, ipfs_node, start_baseline, start_gateway

__all__ = ["Sizes", "main"]

RESULTS_DIR = ROOT / "bench" / "results"
SCENARIOS = (
    "put-small",
    "get-small",
    "get-small-uncached",
    "ratelimit-small",
    "put-big",
    "get-big",
    "get-verified",
    "multipart",
    "copy",
    "list",
)
PIN_SCENARIOS = ("pin-outbox", "pin-ack", "pin-recovery")  # bench/pinning.py (imported when they run)
GROUPS = {"pinning": PIN_SCENARIOS}
BUCKET = "bench"
LIST_BUCKET = "bench-list"
SMALL = 1024
GET_POOL = 64  # distinct 1 KiB objects the GET scenario cycles through

Metrics = dict[str, float]
RoundFn = Callable[[int], Awaitable[Metrics]]


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Sizes:
    rounds: int
    ops: int  # small requests per side per round
    concurrency: int
    big_bytes: int
    list_keys: int
    list_reps: int  # full listings per round
    warmup_ops: int
    multipart_bytes: int = 256 * 1024 * 1024


DEFAULT = Sizes(
    rounds=5, ops=300, concurrency=8, big_bytes=64 * 1024 * 1024, list_keys=1000, list_reps=10, warmup_ops=40
)
QUICK = Sizes(
    rounds=3,
    ops=80,
    concurrency=8,
    big_bytes=8 * 1024 * 1024,
    list_keys=200,
    list_reps=5,
    warmup_ops=16,
    multipart_bytes=32 * 1024 * 1024,
)


# ---- measuring --------------------------------------------------------------------------------------------


async def timed_ops(op: Callable[[int], Awaitable[None]], total: int, concurrency: int, start: int = 0) -> Metrics:
    """Run op(start..start+total-1) from `concurrency` workers; ops/s over the wall time and p50 latency."""
    latencies: list[float] = []
    counter = iter(range(start, start + total))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    elapsed = time.perf_counter() - t0
    return {"ops_per_s": total / elapsed, "p50_ms": statistics.median(latencies) * 1000, "elapsed_s": elapsed}


async def timed_bytes(fn: Callable[[], Awaitable[int]]) -> Metrics:
    """Time one transfer; fn returns the bytes moved. MB/s with MB = 10^6 bytes."""
    t0 = time.perf_counter()
    moved = await fn()
    elapsed = time.perf_counter() - t0
    return {"mb_per_s": moved / elapsed / 1e6, "elapsed_s": elapsed, "bytes": float(moved)}


@dataclass
class Side:
    label: str
    is_gateway: bool
    round_fn: RoundFn
    warm: Callable[[], Awaitable[object]] | None = None  # an untimed pass before the rounds
    samples: list[Metrics] = field(default_factory=list)

    def median(self, metric: str) -> float:
        return statistics.median(s[metric] for s in self.samples)


@dataclass
class Scenario:
    key: str
    title: str
    metric: str  # the throughput-like metric the ratio compares
    unit: str
    sides: list[Side]
    extra: str | None = None  # a second metric shown next to the first (e.g. p50_ms)
    extra_label: str = "p50"  # how the cell names the extra metric (always in ms)
    prepare: Callable[[], Awaitable[None]] | None = None  # untimed setup (objects to GET or LIST)


async def measure(scn: Scenario, rounds: int) -> None:
    for side in scn.sides:
        if side.warm is not None:
            await side.warm()
    for r in range(rounds):
        order = scn.sides[r % len(scn.sides) :] + scn.sides[: r % len(scn.sides)]
        for side in order:
            sample = await side.round_fn(r)
            side.samples.append(sample)
        summary = ", ".join(f"{s.label}={s.samples[-1][scn.metric]:.1f}" for s in scn.sides)
        _log(f"{scn.key} round {r + 1}/{rounds}: {summary} {scn.unit}")


# ---- payloads ---------------------------------------------------------------------------------------------


class SmallPayloads:
    """Distinct 1 KiB bodies (a unique 16-byte prefix), so the node can't dedupe one block over and over."""

    def __init__(self) -> None:
        self._base = os.urandom(SMALL)
        self._n = 0

    def next(self) -> bytes:
        self._n += 1
        return f"{self._n:016d}".encode() + self._base[16:]


# ---- the run ----------------------------------------------------------------------------------------------


@dataclass
class Env:
    client: httpx.AsyncClient
    api_url: str
    bare_url: str
    s3: S3 | None
    sizes: Sizes
    s3_uncached: S3 | None = None
    s3_limited: S3 | None = None  # a second gateway with rate limiting on (limits never reached)
    small: SmallPayloads = field(default_factory=SmallPayloads)
    big: BigPayload | None = None
    seed: int = 0
    shared: dict[str, str] = field(default_factory=dict)

    def next_seed(self) -> int:
        self.seed += 1
        return self.seed


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise BenchRequestError(what)


def _small_side(env: Env, label: str, is_gateway: bool, op: Callable[[int], Awaitable[None]]) -> Side:
    """A side running `ops` requests per round; op(i) gets a distinct i per request across all rounds."""
    z = env.sizes
    return Side(
        label,
        is_gateway,
        lambda r: timed_ops(op, z.ops, z.concurrency, start=(r + 1) * 1_000_000),
        warm=lambda: timed_ops(op, z.warmup_ops, z.concurrency, start=0),
    )


def scenario_put_small(env: Env) -> Scenario:
    z, s3 = env.sizes, env.s3

    async def gw(i: int) -> None:
        assert s3 is not None
        await s3.put(BUCKET, f"small/{i}", env.small.next())

    async def bare(i: int) -> None:
        resp = await env.client.put(f"{env.bare_url}/obj/{i}", content=env.small.next())
        _need(resp.status_code == 200, f"bare PUT: {resp.status_code}")

    async def raw(i: int) -> None:
        await ipfs_add(env.client, env.api_url, env.small.next())

    sides = [_small_side(env, "bare HTTP PUT (Quart+hypercorn)", False, bare)]
    sides.append(_small_side(env, "raw node add", False, raw))
    if s3 is not None:
        sides.insert(0, _small_side(env, "S3 PutObject", True, gw))
    title = f"PUT 1 KiB, {z.concurrency} clients"
    return Scenario("put-small", title, "ops_per_s", "ops/s", sides, extra="p50_ms")


def scenario_get_small(env: Env) -> Scenario:
    z, s3 = env.sizes, env.s3
    cids: list[str] = []

    async def gw(i: int) -> None:
        assert s3 is not None
        _need(await s3.get(BUCKET, f"get/{i % GET_POOL}") == SMALL, "S3 GET: wrong length")

    async def bare(i: int) -> None:
        async with env.client.stream("GET", f"{env.bare_url}/obj/{i}") as resp:
            _need(resp.status_code == 200 and await drain(resp) == SMALL, f"bare GET: {resp.status_code}")

    async def raw(i: int) -> None:
        _need(await ipfs_cat(env.client, env.api_url, cids[i % GET_POOL]) == SMALL, "cat: wrong length")

    async def prepare() -> None:
        for i in range(GET_POOL):
            data = env.small.next()
            cids.append(await ipfs_add(env.client, env.api_url, data))
            if s3 is not None:
                await s3.put(BUCKET, f"get/{i}", data)

    sides = [_small_side(env, "bare HTTP GET (Quart+hypercorn)", False, bare)]
    sides.append(_small_side(env, "raw node cat", False, raw))
    if s3 is not None:
        sides.insert(0, _small_side(env, "S3 GetObject", True, gw))
    title = f"GET 1 KiB, {z.concurrency} clients"
    return Scenario("get-small", title, "ops_per_s", "ops/s", sides, extra="p50_ms", prepare=prepare)


def scenario_get_small_uncached(env: Env) -> Scenario | None:
    """GET 1 KiB with the gateway's memory cache off: every request is an IPFS cat."""
    z, s3 = env.sizes, env.s3_uncached
    if s3 is None:
        return None
    cids: list[str] = []

    async def gw(i: int) -> None:
        _need(await s3.get(BUCKET, f"get/{i % GET_POOL}") == SMALL, "S3 GET: wrong length")

    async def raw(i: int) -> None:
        _need(await ipfs_cat(env.client, env.api_url, cids[i % GET_POOL]) == SMALL, "cat: wrong length")

    async def prepare() -> None:
        await s3.create_bucket(BUCKET)
        for i in range(GET_POOL):
            data = env.small.next()
            cids.append(await ipfs_add(env.client, env.api_url, data))
            await s3.put(BUCKET, f"get/{i}", data)

    sides = [_small_side(env, "S3 GetObject, cache off", True, gw), _small_side(env, "raw node cat", False, raw)]
    title = f"GET 1 KiB, {z.concurrency} clients, memory cache off"
    return Scenario("get-small-uncached", title, "ops_per_s", "ops/s", sides, extra="p50_ms", prepare=prepare)


def scenario_put_big(env: Env) -> Scenario:
    z, s3 = env.sizes, env.s3
    assert env.big is not None
    big = env.big

    async def gw(r: int) -> Metrics:
        assert s3 is not None
        key = f"big/{r}"

        async def go() -> int:
            await s3.put_stream(BUCKET, key, big.chunks(env.next_seed()), big.size)
            return big.size

        result = await timed_bytes(go)
        env.shared["big_key"] = key
        return result

    async def raw(r: int) -> Metrics:
        async def go() -> int:
            env.shared["big_cid"] = await ipfs_add_stream(
                env.client, env.api_url, big.chunks(env.next_seed()), big.size
            )
            return big.size

        return await timed_bytes(go)

    sides = [Side("raw node add", False, raw)]
    if s3 is not None:
        sides.insert(0, Side("S3 PutObject (streamed)", True, gw))
    return Scenario("put-big", f"PUT {_size(z.big_bytes)} single object", "mb_per_s", "MB/s", sides)


def scenario_multipart(env: Env) -> Scenario | None:
    """Multipart upload (8 MiB parts, 4 in flight) against a raw node add of the same number of bytes."""
    s3 = env.s3
    if s3 is None:
        return None
    size = env.sizes.multipart_bytes
    payload = BigPayload.make(size, rng_seed=4242)

    async def gw(r: int) -> Metrics:
        return await timed_bytes(
            lambda: s3.multipart_put(BUCKET, f"mp/{r}", payload.chunks(env.next_seed()), 8 * 1024 * 1024)
        )

    async def raw(r: int) -> Metrics:
        async def go() -> int:
            await ipfs_add_stream(env.client, env.api_url, payload.chunks(env.next_seed()), size)
            return size

        return await timed_bytes(go)

    sides = [Side("S3 multipart upload", True, gw), Side("raw node add", False, raw)]
    return Scenario("multipart", f"Multipart upload {_size(size)}", "mb_per_s", "MB/s", sides)


def scenario_copy(env: Env) -> Scenario | None:
    """CopyObject is a metadata operation: a 64 MiB copy should cost what a 1 KiB copy costs."""
    s3 = env.s3
    if s3 is None:
        return None
    assert env.big is not None
    big = env.big

    async def prepare() -> None:
        await s3.put_stream(BUCKET, "copy/big", big.chunks(env.next_seed()), big.size)
        await s3.put(BUCKET, "copy/small", b"x" * 1024)

    def side(label: str, source: str) -> Side:
        async def run(r: int) -> Metrics:
            times = []
            for i in range(10):
                start = time.perf_counter()
                await s3.copy(BUCKET, source, f"copy/{source.rsplit('/', 1)[1]}-{r}-{i}")
                times.append((time.perf_counter() - start) * 1000)
            return {"ms": statistics.median(times)}

        return Side(label, label.startswith("S3 CopyObject " + _size(big.size)), run)

    sides = [side(f"S3 CopyObject {_size(big.size)}", "copy/big"), side("S3 CopyObject 1 KiB", "copy/small")]
    return Scenario("copy", f"CopyObject {_size(big.size)} (median of 10, ms)", "ms", "ms", sides, prepare=prepare)


async def _add_big(env: Env, big: BigPayload) -> None:
    """The big object, added by the node itself (once per run), that get-big and get-verified read."""
    if "big_cid" not in env.shared:
        env.shared["big_cid"] = await ipfs_add_stream(env.client, env.api_url, big.chunks(env.next_seed()), big.size)


def _raw_cat_side(env: Env, big: BigPayload) -> Side:
    async def raw(r: int) -> Metrics:
        result = await timed_bytes(lambda: ipfs_cat(env.client, env.api_url, env.shared["big_cid"]))
        _need(result["bytes"] == big.size, f"cat {env.shared['big_cid']}: {result['bytes']:.0f} bytes")
        return result

    return Side("raw node cat", False, raw)


def scenario_get_big(env: Env) -> Scenario:
    z, s3 = env.sizes, env.s3
    assert env.big is not None
    big = env.big

    async def prepare() -> None:
        await _add_big(env, big)
        if s3 is not None and "big_key" not in env.shared:
            env.shared["big_key"] = "big/get"
            await s3.put_stream(BUCKET, "big/get", big.chunks(env.next_seed()), big.size)

    async def gw(r: int) -> Metrics:
        assert s3 is not None
        result = await timed_bytes(lambda: s3.get(BUCKET, env.shared["big_key"]))
        _need(result["bytes"] == big.size, f"S3 GET {env.shared['big_key']}: {result['bytes']:.0f} bytes")
        return result

    sides = [_raw_cat_side(env, big)]
    if s3 is not None:
        sides.insert(0, Side("S3 GetObject", True, gw))
    return Scenario("get-big", f"GET {_size(z.big_bytes)} single object", "mb_per_s", "MB/s", sides, prepare=prepare)


def scenario_get_verified(env: Env) -> Scenario:
    """The cost of verified reads: the product's read path (KuboClient.cat, every block checked against its CID)
    against the same client with verification off and against a bare `cat` from the node, in one process, on the
    object get-big reads (added by the node itself)."""
    z = env.sizes
    assert env.big is not None
    big = env.big

    async def prepare() -> None:
        await _add_big(env, big)

    def client_side(label: str, verify: bool, is_gateway: bool) -> Side:
        async def run(r: int) -> Metrics:
            async with KuboClient(env.api_url, timeout=120, verify_reads=verify) as kubo:

                async def go() -> int:
                    moved = 0
                    async for piece in kubo.cat(env.shared["big_cid"], 0, big.size, size=big.size):
                        moved += len(piece)
                    return moved

                result = await timed_bytes(go)
            _need(result["bytes"] == big.size, f"{label}: {result['bytes']:.0f} bytes")
            return result

        return Side(label, is_gateway, run)

    sides = [
        client_side("verified read (KuboClient.cat)", True, True),
        client_side("unverified KuboClient.cat", False, False),
        _raw_cat_side(env, big),
    ]
    title = f"Verified read of {_size(z.big_bytes)}"
    return Scenario("get-verified", title, "mb_per_s", "MB/s", sides, prepare=prepare)


def scenario_list(env: Env) -> Scenario | None:
    z, s3 = env.sizes, env.s3
    if s3 is None:
        return None

    async def prepare() -> None:
        await s3.create_bucket(LIST_BUCKET)
        body = b"x" * 16
        await timed_ops(lambda i: s3.put(LIST_BUCKET, f"k{i:06d}", body), z.list_keys, z.concurrency)

    async def gw(r: int) -> Metrics:
        page_ms: list[float] = []
        keys = 0
        for _ in range(z.list_reps):
            token: str | None = None
            keys = 0
            while True:
                t0 = time.perf_counter()
                n, token = await s3.list_page(LIST_BUCKET, token)
                page_ms.append((time.perf_counter() - t0) * 1000)
                keys += n
                if token is None:
                    break
        _need(keys == z.list_keys, f"ListObjectsV2 listed {keys} keys, expected {z.list_keys}")
        return {"ms_per_page": statistics.median(page_ms), "pages": len(page_ms) / z.list_reps, "keys": keys}

    title = f"LIST {z.list_keys} keys (max-keys 1000)"
    return Scenario("list", title, "ms_per_page", "ms/page", [Side("ListObjectsV2", True, gw)], prepare=prepare)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def scenario_ratelimit_small(env: Env) -> Scenario | None:
    """HEAD + GET 1 KiB with rate limiting on but never hit, against the same with it off: the cost of the check."""
    z, s3_on, s3_off = env.sizes, env.s3_limited, env.s3
    if s3_on is None or s3_off is None:
        return None

    def side(label: str, s3: S3, is_gateway: bool) -> Side:
        async def op(i: int) -> None:
            key = f"get/{i % GET_POOL}"
            _need(await s3.head(BUCKET, key) == SMALL, "S3 HEAD: wrong length")
            _need(await s3.get(BUCKET, key) == SMALL, "S3 GET: wrong length")

        return _small_side(env, label, is_gateway, op)

    async def prepare() -> None:
        await s3_on.create_bucket(BUCKET)
        for i in range(GET_POOL):
            data = env.small.next()
            for s3 in (s3_on, s3_off):
                await s3.put(BUCKET, f"get/{i}", data)

    sides = [
        side("S3 HEAD+GET, rate limit on (not hit)", s3_on, True),
        side("S3 HEAD+GET, rate limit off", s3_off, False),
    ]
    title = f"HEAD + GET 1 KiB, {z.concurrency} clients, rate limiting on vs off (target >= 0.95)"
    return Scenario("ratelimit-small", title, "ops_per_s", "ops/s", sides, extra="p50_ms", prepare=prepare)


async def run_scenarios(env: Env, only: set[str]) -> list[Scenario]:
    builders: dict[str, Callable[[Env], Scenario | None]] = {
        "put-small": scenario_put_small,
        "get-small": scenario_get_small,
        "get-small-uncached": scenario_get_small_uncached,
        "ratelimit-small": scenario_ratelimit_small,
        "put-big": scenario_put_big,
        "multipart": scenario_multipart,
        "copy": scenario_copy,
        "get-big": scenario_get_big,
        "get-verified": scenario_get_verified,
        "list": scenario_list,
    }
    if env.s3 is not None:
        await env.s3.create_bucket(BUCKET)
    done: list[Scenario] = []
    for key in SCENARIOS:
        if key not in only:
            continue
        scn = builders[key](env)
        if scn is None:
            _log(f"{key}: skipped (no gateway)")
            continue
        if scn.prepare is not None:
            _log(f"{key}: preparing")
            await scn.prepare()
        await measure(scn, env.sizes.rounds)
        done.append(scn)
    return done


# ---- report -----------------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _cell(scn: Scenario, side: Side) -> str:
    text = f"{_fmt(side.median(scn.metric))} {scn.unit}"
    if scn.extra:
        text += f", {scn.extra_label} {_fmt(side.median(scn.extra))} ms"
    return text


def build_rows(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scn in scenarios:
        gw = next((s for s in scn.sides if s.is_gateway), None)
        bases = [s for s in scn.sides if not s.is_gateway] or [None]
        for base in bases:
            ratio = None
            if gw is not None and base is not None and base.median(scn.metric) > 0:
                ratio = gw.median(scn.metric) / base.median(scn.metric)
            rows.append(
                {
                    "scenario": scn.title,
                    "metric": scn.metric,
                    "unit": scn.unit,
                    "gateway_side": gw.label if gw else None,
                    "gateway": _cell(scn, gw) if gw else "n/a",
                    "gateway_median": gw.median(scn.metric) if gw else None,
                    "baseline_side": base.label if base else None,
                    "baseline": _cell(scn, base) if base else "-",
                    "baseline_median": base.median(scn.metric) if base else None,
                    "ratio": ratio,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], footer: list[str]) -> str:
    out = [
        "| scenario | gateway | baseline | baseline value | ratio gw/baseline |",
        "|---|---|---|---|---|",
    ]
    last = None
    for row in rows:
        first = row["scenario"] != last
        last = row["scenario"]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        out.append(
            f"| {row['scenario'] if first else ''} | {row['gateway'] if first else ''} | "
            f"{row['baseline_side'] or '-'} | {row['baseline']} | {ratio} |"
        )
    return "\n".join(out + [""] + [f"{line}  " for line in footer])


# ---- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and 3 rounds (about a minute)")
    p.add_argument("--rounds", type=int, help="timed rounds per scenario (default 5, --quick 3)")
    p.add_argument("--ops", type=int, help="1 KiB requests per side per round (default 300, --quick 80)")
    p.add_argument("--concurrency", type=int, help="concurrent clients for 1 KiB scenarios (default 8)")
    p.add_argument("--big-mib", type=int, help="size of the single-object scenarios in MiB (default 64, --quick 8)")
    p.add_argument("--list-keys", type=int, help="keys in the LIST bucket (default 1000, --quick 200)")
    names = ",".join(SCENARIOS + PIN_SCENARIOS)
    p.add_argument("--only", default=names, help=f"comma-separated subset of {names} (pinning = the pin-* three)")
    p.add_argument("--no-gateway", action="store_true", help="baselines only (e.g. while the gateway is broken)")
    p.add_argument("--no-pinning", action="store_true", help="skip the pinning scenarios (pin-*)")
    p.add_argument("--pin-cids", type=int, help="CIDs per side of pin-outbox (default 10000, --quick 1000)")
    p.add_argument("--pin-rounds", type=int, help="rounds of pin-outbox (default 1 at 10000 CIDs, --quick 3)")
    p.add_argument("--workers", type=int, default=2, help="hypercorn workers for gateway and bare app (default 2)")
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes (default bench/results)")
    args = p.parse_args(argv)
    wanted = {name for item in args.only.split(",") for name in GROUPS.get(item, (item,))}
    unknown = wanted - set(SCENARIOS + PIN_SCENARIOS)
    if unknown:
        p.error(f"--only: unknown scenario(s) {', '.join(sorted(unknown))}")
    args.wanted = sorted(wanted - set(PIN_SCENARIOS) if args.no_pinning else wanted)
    if not args.wanted:
        p.error("nothing to run: --no-pinning left no scenario of --only")
    return args


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else DEFAULT
    over = {
        "rounds": args.rounds,
        "ops": args.ops,
        "concurrency": args.concurrency,
        "big_bytes": args.big_mib * 1024 * 1024 if args.big_mib else None,
        "list_keys": args.list_keys,
    }
    return Sizes(**{**asdict(base), **{k: v for k, v in over.items() if v is not None}})


async def _amain(args: argparse.Namespace, sizes: Sizes, tmp: Path) -> dict[str, Any]:
    only = set(args.wanted)
    result: dict[str, Any] = {"impl": "", "scenarios": [], "wall_s": 0.0, "gateway": not args.no_gateway}
    if only & set(SCENARIOS):
        result.update(await _base_group(args, sizes, tmp, only))
    if only & set(PIN_SCENARIOS):
        from bench import pinning  # here, not at the top: bench.pinning imports this module's Scenario and Side

        psizes = pinning.pin_sizes(args.quick, sizes.rounds, args.pin_cids, args.pin_rounds)
        t0 = time.monotonic()
        done = await pinning.run_pinning(tmp / "pinning", only, psizes, gateway=not args.no_gateway)
        result["wall_s"] += time.monotonic() - t0
        result["scenarios"] += done
        result["pin_footer"] = pinning.footer(done, psizes)
        result["pin_sizes"] = asdict(psizes)
        result["impl"] = result["impl"] or pinning.node_impl()
    return result


async def _base_group(args: argparse.Namespace, sizes: Sizes, tmp: Path, only: set[str]) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        _log("starting IPFS node")
        node = stack.enter_context(ipfs_node(tmp))
        impl = "kubo" if node.is_kubo else "js-ipfs"
        _log(f"{impl} node at {node.api_url}; starting bare baseline app")
        bare_url = stack.enter_context(start_baseline(tmp, workers=args.workers))
        gateway = None
        uncached = None
        limited = None
        if not args.no_gateway:
            _log("starting gateway (python -m appliance.cli serve)")
            gateway = stack.enter_context(start_gateway(tmp, node.api_url, workers=args.workers))
            _log(f"gateway S3 at {gateway.s3_url}")
            if "get-small-uncached" in only:
                uncached = stack.enter_context(start_gateway(tmp, node.api_url, workers=args.workers, cache=False))
            if "ratelimit-small" in only:
                limited = stack.enter_context(start_gateway(tmp, node.api_url, workers=args.workers, ratelimit=True))
        limits = httpx.Limits(max_connections=max(sizes.concurrency, 4), max_keepalive_connections=sizes.concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0), limits=limits) as client:
            s3 = S3(client, gateway.s3_url, gateway.credentials) if gateway else None
            env = Env(client, node.api_url, bare_url, s3, sizes, big=BigPayload.make(sizes.big_bytes))
            if gateway is not None and uncached is not None:
                env.s3_uncached = S3(client, uncached.s3_url, uncached.credentials)
            if gateway is not None and limited is not None:
                env.s3_limited = S3(client, limited.s3_url, limited.credentials)
            t0 = time.monotonic()
            scenarios = await run_scenarios(env, only)
            wall = time.monotonic() - t0
        return {"impl": impl, "scenarios": scenarios, "wall_s": wall, "base": True}


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the cleanup short
    raise KeyboardInterrupt  # unwind through the finally blocks that stop the processes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_from(args)
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="s3ipfs-bench-") as tmpdir:
        try:
            result = asyncio.run(_amain(args, sizes, Path(tmpdir)))
        except (BenchSetupError, BenchRequestError, httpx.HTTPError, S3IpfsError, ExceptionGroup) as exc:
            while isinstance(exc, ExceptionGroup):  # a failed request inside a TaskGroup worker
                exc = exc.exceptions[0]
            print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench interrupted; processes stopped", file=sys.stderr)
            return 130
    scenarios: list[Scenario] = result["scenarios"]
    rows = build_rows(scenarios)
    host = (
        f"Host: {os.cpu_count()} cores, Python {platform.python_version()}, run took {result['wall_s']:.0f} s. "
        "Noisy: compare ratios, not absolute numbers."
    )
    footer: list[str] = []
    if result.get("base"):
        footer += [
            f"Medians of {sizes.rounds} rounds per side (sides interleaved, order rotated each round); "
            f"1 KiB: {sizes.ops} requests per side per round from {sizes.concurrency} concurrent clients, p50 = "
            "median of per-round median latencies; big objects: one transfer per round, MB = 10^6 bytes; LIST: "
            f"median page latency over {sizes.list_reps} full listings per round.",
            "Client for every side: one httpx.AsyncClient (HTTP/1.1, keep-alive); S3 requests signed with botocore "
            "SigV4Auth on an AWSRequest (1 KiB bodies sha256-signed, big bodies UNSIGNED-PAYLOAD, streamed from a "
            "generator).",
            f"Raw node: {result['impl']} `/api/v0/add?cid-version=1&raw-leaves=true&pin=true` (multipart, default "
            "chunker) and `/api/v0/cat`. Bare HTTP: bench/baseline_app.py on hypercorn. "
            f"Gateway and bare app: {args.workers} hypercorn workers.",
            "Ratio = gateway / baseline throughput (>1: gateway faster).",
        ]
    footer += result.get("pin_footer", [])
    footer.append(host)
    if not result["gateway"]:
        footer.append("Run with --no-gateway: gateway columns are empty.")
    table = markdown(rows, footer)
    print(table)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    doc = {
        "started": started.isoformat(),
        "sizes": asdict(sizes),
        "pin_sizes": result.get("pin_sizes"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "ipfs_impl": result["impl"],
        "client": "httpx.AsyncClient; S3 signed with botocore SigV4Auth + AWSRequest",
        "rows": rows,
        "samples": {scn.key: {side.label: side.samples for side in scn.sides} for scn in scenarios},
        "footer": footer,
        "markdown": table,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
