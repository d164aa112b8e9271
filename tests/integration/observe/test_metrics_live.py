"""Metrics from every process of a live gateway (2 workers) after real boto3 traffic, also across a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.integration.observe.conftest import needs_node, traffic
from tests.support.gateway import Gateway
from tests.support.metrics_text import Samples, scrape

pytestmark = needs_node


def _workers(gw: Gateway) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(gw.process.pid), "-f", "multiprocessing.spawn"], check=False, capture_output=True, text=True
    ).stdout.split()
    return [int(pid) for pid in found]


def _counters(samples: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter, histogram count and bucket sample (the series that must never go backwards)."""
    out = {}
    for name, labels, value in samples.samples:
        if name.endswith(("_total", "_count", "_bucket", "_sum")):
            out[(name, tuple(sorted(labels.items())))] = value
    return out


def test_s3_requests_are_counted_by_action_and_status_class(observed: Gateway) -> None:
    before = scrape(observed.admin_url, observed.admin_headers)
    traffic(observed, rounds=6)
    after = scrape(observed.admin_url, observed.admin_headers)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("s3ipfs_s3_requests_total", action="PutObject", status_class="2xx") == 6
    assert grew("s3ipfs_s3_requests_total", action="GetObject", status_class="2xx") == 12
    assert grew("s3ipfs_s3_requests_total", action="GetObject", status_class="4xx") == 1
    assert grew("s3ipfs_s3_requests_total", action="CreateBucket", status_class="2xx") == 1
    # The bad signature fails before routing: its action is unknown, its code is counted.
    assert grew("s3ipfs_s3_requests_total", action="unknown", status_class="4xx") >= 1
    assert grew("s3ipfs_s3_auth_failures_total", code="SignatureDoesNotMatch") >= 1
    assert grew("s3ipfs_s3_request_duration_seconds_count", action="PutObject") == 6
    assert grew("s3ipfs_s3_received_bytes_total", action="PutObject") == sum(1000 + i for i in range(6))
    assert grew("s3ipfs_s3_sent_bytes_total", action="GetObject") >= 2 * sum(1000 + i for i in range(6))
    # Every repeated GET of a small object is an L1 hit in whichever worker served it; the first may miss.
    assert grew("s3ipfs_cache_hits_total", layer="l1") + grew("s3ipfs_cache_misses_total", layer="l1") >= 12
    assert after.has("s3ipfs_cache_bytes", layer="l1")
    assert grew("s3ipfs_ipfs_rpc_requests_total", method="add") >= 6
    assert grew("s3ipfs_ipfs_rpc_duration_seconds_count", method="add") >= 6
    assert grew("s3ipfs_lmdb_write_txn_duration_seconds_count") >= 7
    # No request is in flight between the scrapes.
    assert after.value("s3ipfs_s3_active_requests") == 0
    # Scrape-time gauges of the main process.
    assert after.value("s3ipfs_ipfs_up") == 1
    assert after.value("s3ipfs_lmdb_map_size_bytes") > after.value("s3ipfs_lmdb_map_used_bytes") > 0
    assert after.value("s3ipfs_state_dir_free_bytes") > 0
    assert after.has("s3ipfs_pin_outbox_oldest_age_seconds") or not after.has("s3ipfs_pin_outbox_depth")
    assert after.has("ipfs_pin_duration_seconds_bucket") or "ipfs_pin_duration_seconds" not in after.text
    # Bounded labels: no bucket name or key appears anywhere in the exposition.
    assert "observe-" not in after.text and "k0" not in after.text


def test_counts_survive_a_killed_worker(observed: Gateway) -> None:
    traffic(observed, rounds=4)
    before = scrape(observed.admin_url, observed.admin_headers)
    workers = _workers(observed)
    assert len(workers) == 2, observed.log_tail()
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while f"(pid {victim}) died" not in observed.log_path.read_text():
        assert time.monotonic() < deadline, observed.log_tail()
        time.sleep(0.1)
    # Right after the death, before any new traffic: nothing the dead worker counted is lost.
    dead = scrape(observed.admin_url, observed.admin_headers)
    for series, value in _counters(before).items():
        assert _counters(dead).get(series, 0.0) >= value, series
    # The restarted worker serves; traffic continues and the sums keep growing from where they were.
    deadline = time.monotonic() + 30
    while len(_workers(observed)) < 2 or observed.admin("GET", "/ready").status_code != 200:
        assert time.monotonic() < deadline, observed.log_tail()
        time.sleep(0.2)
    traffic(observed, rounds=4)
    after = scrape(observed.admin_url, observed.admin_headers)
    for series, value in _counters(dead).items():
        assert _counters(after).get(series, 0.0) >= value, series
    put = ("s3ipfs_s3_requests_total", (("action", "PutObject"), ("status_class", "2xx")))
    assert _counters(after)[put] == _counters(before)[put] + 4
    # The dead worker's live gauge is gone with it: nothing in flight is reported.
    assert after.value("s3ipfs_s3_active_requests") == 0
