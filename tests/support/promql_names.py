"""The metric names a PromQL expression reads (for checking rules and dashboards against what the appliance exports),
and the expressions of the packaged rules and Grafana dashboards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

__all__ = ["PROMETHEUS_OWN", "dashboard_exprs", "grafana_to_promql", "metric_names", "rule_exprs"]

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "packaging" / "prometheus" / "s3ipfs-rules.yml"
DASHBOARDS = REPO / "packaging" / "grafana" / "dashboards"

# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"})

_KEYWORDS = frozenset({
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "histogram_quantile", "time",
    "abs", "clamp_min", "clamp_max", "label_values", "absent", "vector", "scalar", "sort", "sort_desc", "le",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "changes", "resets", "round", "ceil", "floor",
})  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def grafana_to_promql(expr: str) -> str:
    """A Grafana query as plain PromQL: template variables replaced by what matches everything."""
    return expr.replace("$__rate_interval", "1m").replace("${instance}", ".*").replace("$instance", ".*")


def metric_names(expr: str) -> set[str]:
    """The metric names in `expr`: identifiers outside strings, label matchers and ranges that are not keywords,
    function names (followed by '('), numbers or grouping labels (inside by/without parentheses)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if word in _KEYWORDS or rest.startswith("("):
            continue
        before = text[: match.start()]
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # e.g. the 'e' of 1e3
        names.add(word)
    return names


def rule_exprs() -> dict[str, str]:
    """alert name -> expression of every rule in the packaged rules file."""
    data = yaml.safe_load(RULES.read_text())
    return {rule.get("alert") or rule["record"]: rule["expr"] for group in data["groups"] for rule in group["rules"]}


def dashboard_exprs() -> dict[str, str]:
    """'dashboard / panel / refId' -> PromQL of every panel target (Grafana variables substituted)."""
    found: dict[str, str] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found[f"{path.stem} / {panel['title']} / {target['refId']}"] = grafana_to_promql(target["expr"])
    return found
