"""A PUT acknowledged by the cluster (`ack: cluster`) finishes its outbox job when it records the pin: the
orchestrator has nothing left to redo, and the job completes exactly once."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.model import ReplicationPolicy
from appliance.service.objects import ObjectService, PutRequest
from appliance.service.pin_orchestrator import OrchestratorSettings, PinAcknowledger, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.state import LmdbMetadataStore
from tests.unit.service.test_pin_orchestrator import Body, FakePinner, MemoryContent, as_content
from tests.unit.state.support import BUCKET, GRACE, make_bucket

DEFAULTS = ReplicationPolicy(2, 3)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    opened.create_bucket(make_bucket())
    yield opened
    opened.close()


async def test_an_acknowledged_put_leaves_no_job_to_redo(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    policies = PolicyBook(store, DEFAULTS)
    await policies.put(BUCKET, {"ack": "cluster", "replication_min": 2, "replication_max": 2})
    acknowledger = PinAcknowledger(pinner, policies, timeout=1.0, poll=0.01)
    objects = ObjectService(store, as_content(MemoryContent()), unpin_grace=GRACE, acknowledger=acknowledger)
    meta = await objects.put_object(PutRequest(BUCKET, "k", "text/plain"), Body(b"hello"))
    assert store.pin_job(meta.cid) is None and store.pin_outbox_depth() == 0
    record = store.pin_status(meta.cid)
    assert record is not None and record.state == "pinned" and record.completions == 1
    orchestrator = PinOrchestrator(store, pinner, policies, OrchestratorSettings(), rng=random.Random(1))
    assert await orchestrator.run_once() == 0
    assert [call for call, _ in pinner.calls].count("pin") == 1  # the acknowledger's pin only
    again = store.pin_status(meta.cid)
    assert again is not None and again.completions == 1
