"""Read a Prometheus text exposition (the admin API's /metrics) into samples tests can look up."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "exported_names", "scrape"]


class Samples:
    """Samples by name and labels; `value(name, **labels)` sums every sample whose labels include `labels`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        self.families: dict[str, str] = {}  # family name -> type
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.samples.append((sample.name, dict(sample.labels), sample.value))

    def value(self, name: str, **labels: str) -> float:
        return sum(v for n, got, v in self.samples if n == name and _includes(got, labels))

    def has(self, name: str, **labels: str) -> bool:
        return any(n == name and _includes(got, labels) for n, got, _v in self.samples)

    def labels(self, name: str) -> list[dict[str, str]]:
        return [got for n, got, _v in self.samples if n == name]


def _includes(got: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(got.get(k) == v for k, v in wanted.items())


def scrape(admin_url: str, headers: Mapping[str, str] | None = None) -> Samples:
    reply = httpx.get(f"{admin_url}/metrics", headers=dict(headers or {}), timeout=30)
    reply.raise_for_status()
    return Samples(reply.text)


def exported_names(samples: Samples) -> set[str]:
    """Every series name a query may use: sample names (with _total, _bucket, _sum, _count) and family names."""
    return {n for n, _l, _v in samples.samples} | set(samples.families)
