"""The packaged alert rules and Grafana dashboards: promtool checks and unit-tests the rules; every query parses."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.packaging.conftest import REPO, require_tool, system_env
from tests.support.promql_names import DASHBOARDS, RULES, dashboard_exprs, metric_names, rule_exprs

PROMETHEUS_DIR = REPO / "packaging" / "prometheus"


def test_promtool_checks_the_rules() -> None:
    promtool = require_tool("promtool", "prometheus")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], env=system_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 12 rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool", "prometheus")
    done = subprocess.run(
        [promtool, "test", "rules", "s3ipfs-rules.test.yml"],
        cwd=PROMETHEUS_DIR,
        env=system_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "s3ipfs-rules.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert tested == set(rule_exprs()), set(rule_exprs()) - tested


def test_pin_latency_quantile_aggregates_buckets_by_le() -> None:
    expr = rule_exprs()["HighPinLatency"]
    assert "histogram_quantile(0.95, sum by (le) (rate(ipfs_pin_duration_seconds_bucket[5m])))" in expr


@pytest.mark.parametrize("name", ["overview", "s3", "ipfs-pins", "system"])
def test_dashboards_are_provisionable(name: str) -> None:
    board = json.loads((DASHBOARDS / f"s3ipfs-{name}.json").read_text())
    assert board["uid"] == f"s3ipfs-{name.split('-', maxsplit=1)[0]}"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    provisioning = yaml.safe_load((REPO / "packaging/grafana/provisioning/dashboards/s3ipfs.yaml").read_text())
    assert provisioning["providers"][0]["type"] == "file"


def test_metric_name_extraction() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, action) (rate(s3ipfs_s3_request_duration_seconds_bucket{a="b"}[5m])))'
    ) == {"s3ipfs_s3_request_duration_seconds_bucket"}
    assert metric_names("s3ipfs_tls_certificate_expiry_seconds - time() < 14 * 86400") == {
        "s3ipfs_tls_certificate_expiry_seconds"
    }
    assert metric_names('x / (y{le="1e3"} > 0) > 1e3') == {"x", "y"}
    assert all(metric_names(expr) for expr in {**rule_exprs(), **dashboard_exprs()}.values())
