"""appliance/metrics.py in single-process mode: the S3 request hook and the call counters."""

from __future__ import annotations

from appliance import metrics
from appliance.errors import AuthError, NoSuchKey, SignatureDoesNotMatch
from tests.support.metrics_text import Samples


def _samples() -> Samples:
    from prometheus_client import generate_latest

    return Samples(generate_latest(metrics.collector_registry()).decode())


def test_the_hook_counts_action_status_bytes_and_auth_failures() -> None:
    before = _samples()
    headers = {"content-length": "10", "x-amz-decoded-content-length": "7"}
    with metrics.observe_s3_request(headers.get) as finish:
        assert _samples().value("s3ipfs_s3_active_requests") == before.value("s3ipfs_s3_active_requests") + 1
        metrics.s3_action("PutObject")
        finish(200, "5")
    with metrics.observe_s3_request({}.get) as finish:
        metrics.s3_error(SignatureDoesNotMatch())
        finish(403, None)
    with metrics.observe_s3_request({}.get) as finish:
        metrics.s3_action("GetObject")
        metrics.s3_error(NoSuchKey())
        finish(404, "120")
    with metrics.observe_s3_request({}.get):
        metrics.s3_error(AuthError())  # no finish: counted as a 500 when the block ends
    after = _samples()

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("s3ipfs_s3_requests_total", action="PutObject", status_class="2xx") == 1
    assert grew("s3ipfs_s3_requests_total", action="unknown", status_class="4xx") == 1
    assert grew("s3ipfs_s3_requests_total", action="GetObject", status_class="4xx") == 1
    assert grew("s3ipfs_s3_requests_total", action="unknown", status_class="5xx") == 1
    assert grew("s3ipfs_s3_received_bytes_total", action="PutObject") == 7  # the decoded length
    assert grew("s3ipfs_s3_sent_bytes_total", action="PutObject") == 5
    assert grew("s3ipfs_s3_auth_failures_total", code="SignatureDoesNotMatch") == 1
    assert grew("s3ipfs_s3_auth_failures_total", code="AccessDenied") == 1
    assert grew("s3ipfs_s3_auth_failures_total") == 2  # NoSuchKey is not an auth failure
    assert grew("s3ipfs_s3_request_duration_seconds_count", action="PutObject") == 1
    assert after.value("s3ipfs_s3_active_requests") == before.value("s3ipfs_s3_active_requests")


def test_a_call_starts_its_error_series_at_zero() -> None:
    metrics.count_ipfs_call("test/cmd")
    metrics.count_cluster_call("GET /test")
    samples = _samples()
    assert samples.value("s3ipfs_ipfs_rpc_requests_total", method="test/cmd") == 1
    assert samples.has("s3ipfs_ipfs_rpc_errors_total", method="test/cmd", kind="unavailable")
    assert samples.value("s3ipfs_ipfs_rpc_errors_total", method="test/cmd") == 0
    assert samples.has("s3ipfs_cluster_errors_total", route="GET /test", kind="error")
    assert samples.has("s3ipfs_cache_hits_total", layer="l1")  # pre-created: dashboards read zeros, not nothing
    assert samples.has("s3ipfs_s3_throttled_requests_total")
