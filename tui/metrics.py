"""Pure helpers over Prometheus text: totals by metric name and rates between two scrapes (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Rates", "Scrape", "parse", "rates"]


@dataclass(frozen=True, slots=True)
class Scrape:
    """One /metrics scrape reduced to what the dashboard shows, and when it was taken (monotonic seconds)."""

    at: float
    requests: float  # S3 requests answered, all actions
    errors: float  # of which 5xx
    latency_sum: float  # seconds, S3 request duration histogram sum
    latency_count: float
    gauges: dict[str, float]  # unlabelled gauges by name (outbox depth, ipfs_up, free bytes …)


@dataclass(frozen=True, slots=True)
class Rates:
    requests_per_s: float
    errors_per_s: float
    latency_ms: float  # mean over the interval; 0 when no request finished


def parse(text: str, at: float) -> Scrape:
    requests = errors = latency_sum = latency_count = 0.0
    gauges: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "s3ipfs_s3_requests_total":
                requests += sample.value
                if sample.labels.get("status_class") == "5xx":
                    errors += sample.value
            elif sample.name == "s3ipfs_s3_request_duration_seconds_sum":
                latency_sum += sample.value
            elif sample.name == "s3ipfs_s3_request_duration_seconds_count":
                latency_count += sample.value
            elif family.type == "gauge" and not sample.labels:
                gauges[sample.name] = sample.value
    return Scrape(at, requests, errors, latency_sum, latency_count, gauges)


def rates(before: Scrape, after: Scrape) -> Rates:
    """Per-second rates between two scrapes; a counter that went down (daemon restart) counts from zero."""
    elapsed = max(after.at - before.at, 1e-6)

    def delta(old: float, new: float) -> float:
        return new - old if new >= old else new

    count = delta(before.latency_count, after.latency_count)
    total = delta(before.latency_sum, after.latency_sum)
    return Rates(
        requests_per_s=delta(before.requests, after.requests) / elapsed,
        errors_per_s=delta(before.errors, after.errors) / elapsed,
        latency_ms=(total / count * 1000.0) if count else 0.0,
    )
