"""tui.metrics: totals from Prometheus text and rates between scrapes (counter resets count from zero)."""

from __future__ import annotations

from tui.metrics import parse, rates

TEXT = """\
# HELP s3ipfs_s3_requests_total S3 requests answered.
# TYPE s3ipfs_s3_requests_total counter
s3ipfs_s3_requests_total{action="GetObject",status_class="2xx"} 90.0
s3ipfs_s3_requests_total{action="PutObject",status_class="5xx"} 10.0
# HELP s3ipfs_s3_request_duration_seconds Time to headers.
# TYPE s3ipfs_s3_request_duration_seconds histogram
s3ipfs_s3_request_duration_seconds_bucket{action="GetObject",le="+Inf"} 100.0
s3ipfs_s3_request_duration_seconds_sum{action="GetObject"} 2.0
s3ipfs_s3_request_duration_seconds_count{action="GetObject"} 100.0
# HELP s3ipfs_pin_outbox_depth Pin jobs.
# TYPE s3ipfs_pin_outbox_depth gauge
s3ipfs_pin_outbox_depth 7.0
# HELP s3ipfs_cluster_peers Peers by state.
# TYPE s3ipfs_cluster_peers gauge
s3ipfs_cluster_peers{state="ok"} 3.0
"""


def test_parse_sums_requests_and_keeps_unlabelled_gauges() -> None:
    scrape = parse(TEXT, at=10.0)
    assert (scrape.requests, scrape.errors) == (100.0, 10.0)
    assert (scrape.latency_sum, scrape.latency_count) == (2.0, 100.0)
    assert scrape.gauges == {"s3ipfs_pin_outbox_depth": 7.0}  # labelled gauges are not "the" value


def test_rates_between_scrapes() -> None:
    before = parse(TEXT, at=10.0)
    after = parse(
        TEXT.replace("} 90.0", "} 110.0")
        .replace('_count{action="GetObject"} 100.0', '_count{action="GetObject"} 120.0')
        .replace('_sum{action="GetObject"} 2.0', '_sum{action="GetObject"} 3.0'),
        at=12.0,
    )
    now = rates(before, after)
    assert now.requests_per_s == 10.0
    assert now.errors_per_s == 0.0
    assert now.latency_ms == 50.0  # 1 s over 20 requests


def test_a_restarted_daemon_counts_from_zero_and_empty_text_is_zero() -> None:
    before = parse(TEXT, at=0.0)
    restarted = parse("", at=1.0)
    now = rates(before, restarted)
    assert (now.requests_per_s, now.errors_per_s, now.latency_ms) == (0.0, 0.0, 0.0)
