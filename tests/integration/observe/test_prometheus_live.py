"""A real Prometheus (Debian's 2.42) scrapes a live gateway (2 workers, a cluster, TLS on S3) after boto3 traffic:
every alert rule and dashboard query evaluates without error, and every metric name they read is one the appliance
really exports."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from appliance.ipfsconn.devnode import LocalNode
from tests.integration.observe.conftest import needs_node, traffic
from tests.integration.pinning.conftest import AUTH
from tests.integration.pinning.gateway_cluster import cluster_config
from tests.support.cluster_peer import ClusterPeer
from tests.support.gateway import Gateway, merge_config, start_gateway, stop_gateway
from tests.support.metrics_text import exported_names, scrape
from tests.support.nodes import free_ports, start_local_nodes, stop_nodes
from tests.support.promql_names import PROMETHEUS_OWN, RULES, dashboard_exprs, metric_names, rule_exprs
from tests.support.tls import self_signed

pytestmark = needs_node
PROMETHEUS = shutil.which("prometheus", path="/usr/sbin:/usr/bin:/sbin:/bin")


@pytest.fixture(scope="module")
def cluster_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("prom")
    nodes: list[LocalNode] = start_local_nodes(root / "nodes", 2)
    try:
        with ClusterPeer([n.api_url for n in nodes], root / "pinset.json", basic_auth=AUTH, pin_timeout=20) as peer:
            cert, key = self_signed(_mkdir(root / "gateway" / "tls"))
            extra = merge_config(cluster_config(peer), {"s3": {"tls_certfile": str(cert), "tls_keyfile": str(key)}})
            gw = start_gateway(root, nodes[0], workers=2, extra_config=extra)
            gw.endpoint = gw.endpoint.replace("http://", "https://")
            try:
                yield gw
            finally:
                stop_gateway(gw)
    finally:
        stop_nodes(nodes)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Prometheus:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def query(self, expr: str) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30)
        body: dict[str, Any] = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", f"{expr}: {reply.text[:500]}"
        return body["data"]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, cluster_gateway: Gateway) -> Iterator[_Prometheus]:
    if PROMETHEUS is None:
        pytest.fail("prometheus is missing: run scripts/setup.sh (apt-get install --no-install-recommends prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    (port,) = free_ports(1)
    admin = cluster_gateway.admin_url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "s3ipfs",
                "static_configs": [{"targets": [admin]}],
                # The admin API wants a bearer token (docs/admin-api.md: `s3ipfs admin token --ttl ...`).
                "authorization": {"type": "Bearer", "credentials": cluster_gateway.admin_headers["Authorization"][7:]},
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = work / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    prom = _Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait(lambda: httpx.get(f"{prom.url}/-/ready", timeout=5).status_code == 200, prom)
        yield prom
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(check: Any, prom: _Prometheus, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        assert prom.process.poll() is None, prom.log.read_text()[-3000:]
        assert time.monotonic() < deadline, prom.log.read_text()[-3000:]
        time.sleep(0.3)


def _scrapes(prom: _Prometheus) -> int:
    result = prom.query('count_over_time(up{job="s3ipfs"}[1m])')["result"]
    return int(float(result[0]["value"][1])) if result else 0


def test_every_rule_and_panel_evaluates_on_a_live_scrape(cluster_gateway: Gateway, prometheus: _Prometheus) -> None:
    traffic(cluster_gateway, rounds=3)
    start = _scrapes(prometheus)
    _wait(lambda: _scrapes(prometheus) >= start + 2, prometheus)
    traffic(cluster_gateway, rounds=3)  # counters grow between scrapes: rate() has something to show
    start = _scrapes(prometheus)
    _wait(lambda: _scrapes(prometheus) >= start + 3, prometheus)
    up = prometheus.query('up{job="s3ipfs"}')["result"]
    assert [sample["value"][1] for sample in up] == ["1"]

    exported = exported_names(scrape(cluster_gateway.admin_url, cluster_gateway.admin_headers)) | PROMETHEUS_OWN
    expressions = {**{f"rule {name}": expr for name, expr in rule_exprs().items()}, **dashboard_exprs()}
    unknown = {where: sorted(metric_names(expr) - exported) for where, expr in expressions.items()}
    assert not {where: names for where, names in unknown.items() if names}
    for where, expr in expressions.items():
        data = prometheus.query(expr)
        assert data["resultType"] in {"vector", "scalar"}, where
    # The main queries show the traffic (not only "no error").
    by_action = prometheus.query('sum by (action) (rate(s3ipfs_s3_requests_total{job="s3ipfs"}[1m]))')["result"]
    assert "PutObject" in {sample["metric"].get("action") for sample in by_action}
    peers = prometheus.query("s3ipfs_cluster_peer_up")["result"]
    assert len(peers) == 2 and all(sample["value"][1] == "1" for sample in peers)
    days = prometheus.query('(s3ipfs_tls_certificate_expiry_seconds{certificate="s3"} - time()) / 86400')["result"]
    assert 0 < float(days[0]["value"][1]) <= 1  # the test certificate lives one day

    # Prometheus loaded the packaged rules and evaluates them without error.
    def rules_evaluated() -> bool:
        groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return len(rules) == len(rule_exprs()) and all(
            rule.get("lastEvaluation", "").startswith("20") for rule in rules
        )

    _wait(rules_evaluated, prometheus)
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    health = {rule["name"]: (rule["health"], rule.get("lastError", "")) for group in groups for rule in group["rules"]}
    assert all(state == ("ok", "") for state in health.values()), health
