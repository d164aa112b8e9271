"""Replication policies: every malformed document is InvalidArgument with a clear message, documents round-trip,
PolicyBook stores them as bucket config and caches them for 2 s; a corrupt stored policy is a BackendError naming
the bucket, and the orchestrator survives it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import BackendError, InvalidArgument, NoSuchBucket
from appliance.model import ReplicationPolicy
from appliance.service.pin_orchestrator import OrchestratorSettings, PinOrchestrator
from appliance.service.pin_policy import CONFIG_NAME, PolicyBook, parse_policy, policy_document
from appliance.state import LmdbMetadataStore
from tests.unit.service.test_pin_orchestrator import FakePinner
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta

DEFAULTS = ReplicationPolicy(2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "is a JSON object"),
        ("replication_min=1", "is a JSON object"),
        (None, "is a JSON object"),
        ({"replication_min": "1"}, "replication_min must be an integer"),
        ({"replication_max": 2.0}, "replication_max must be an integer"),
        ({"replication_min": True}, "replication_min must be an integer"),
        ({"replication_max": False}, "replication_max must be an integer"),
        ({"replication_min": -2}, "between -1 and 1000"),
        ({"replication_max": 1001}, "between -1 and 1000"),
        ({"replication_min": 4, "replication_max": 3}, "replication_min is larger than replication_max"),
        ({"replication_min": -1, "replication_max": 3}, "must be given for both"),
        ({"replication_min": 1, "replication_max": -1}, "must be given for both"),
        ({"replication": 3}, "unknown replication policy fields: replication; known: ack, allocations"),
        ({"ack": "quorum"}, "ack must be 'local' or 'cluster'"),
        ({"ack": None}, "ack must be"),
        ({"allocations": "peer1"}, "allocations must be a list"),
        ({"allocations": [f"p{i}" for i in range(101)]}, "at most 100 peer ids"),
        ({"allocations": ["p1", "p1"]}, "lists a peer twice"),
        ({"allocations": [""]}, "non-empty printable string"),
        ({"allocations": [7]}, "an allocation peer id must be"),
        ({"allocations": ["p\n1"]}, "printable"),
        ({"allocations": ["p" * 129]}, "at most 128 characters"),
        ({"tags": ["site", "a"]}, "tags must be an object"),
        ({"tags": {f"t{i}": "v" for i in range(11)}}, "at most 10 tag"),
        ({"tags": {"site": 1}}, "tag 'site' must be"),
        ({"tags": {"": "a"}}, "a tag name must be"),
        ({"tags": {"site": "a\x00b"}}, "printable"),
        ({"allocations": ["p1"], "tags": {"site": "a"}}, "not both"),
    ],
)
def test_malformed_policies_are_invalid_argument(data: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(data, DEFAULTS)
    assert message in caught.value.message


def test_missing_fields_take_the_defaults() -> None:
    defaults = ReplicationPolicy(1, 2, "cluster", (), (("site", "a"),))
    assert parse_policy({}, defaults) == defaults
    assert parse_policy({"replication_max": 5}, defaults) == ReplicationPolicy(1, 5, "cluster", (), (("site", "a"),))
    # Explicit peers replace default tags only when the tags are cleared too.
    with pytest.raises(InvalidArgument, match="not both"):
        parse_policy({"allocations": ["p1"]}, defaults)
    assert parse_policy({"allocations": ["p1"], "tags": {}}, defaults).allocations == ("p1",)


@pytest.mark.parametrize(
    "policy",
    [
        ReplicationPolicy(),
        ReplicationPolicy(-1, -1, "cluster"),
        ReplicationPolicy(0, 5),
        ReplicationPolicy(2, 3, "local", ("12D3KooWA", "12D3KooWB")),
        ReplicationPolicy(1, 1, "cluster", (), (("rack", "r1"), ("site", "paris"))),
    ],
)
def test_document_round_trip(policy: ReplicationPolicy) -> None:
    document = policy_document(policy)
    assert parse_policy(json.loads(json.dumps(document)), ReplicationPolicy(9, 9)) == policy


def test_tags_are_sorted() -> None:
    parsed = parse_policy({"tags": {"site": "a", "rack": "b"}}, DEFAULTS)
    assert parsed.tags == (("rack", "b"), ("site", "a"))


@pytest.mark.parametrize(
    ("policy", "extra", "limit", "expected"),
    [
        (ReplicationPolicy(2, 3), 0, 0, (2, 3)),
        (ReplicationPolicy(2, 3), 2, 0, (4, 5)),
        (ReplicationPolicy(2, 3), 5, 4, (4, 4)),
        (ReplicationPolicy(2, 3), 1, 2, (3, 3)),  # a limit below the bucket's max never lowers the max
        (ReplicationPolicy(-1, -1), 3, 0, (-1, -1)),
        (ReplicationPolicy(0, 0), 3, 0, (0, 0)),
    ],
)
def test_with_extra(policy: ReplicationPolicy, extra: int, limit: int, expected: tuple[int, int]) -> None:
    boosted = policy.with_extra(extra, limit)
    assert (boosted.replication_min, boosted.replication_max) == expected
    assert boosted.ack == policy.ack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    opened.create_bucket(make_bucket())
    yield opened
    opened.close()


async def test_policy_book_put_get_clear(store: LmdbMetadataStore) -> None:
    book = PolicyBook(store, DEFAULTS, clock=Clock())
    assert await book.lookup(BUCKET) == (DEFAULTS, False)
    stored = await book.put(BUCKET, {"replication_min": 1, "replication_max": 1, "ack": "cluster"})
    assert stored == ReplicationPolicy(1, 1, "cluster")
    assert json.loads(store.get_bucket_config(BUCKET, CONFIG_NAME) or "") == policy_document(stored)
    assert await book.lookup(BUCKET) == (stored, True)  # put dropped the cached default
    await book.clear(BUCKET)
    assert await book.get(BUCKET) == DEFAULTS
    with pytest.raises(InvalidArgument):
        await book.put(BUCKET, {"ack": "nope"})
    assert store.get_bucket_config(BUCKET, CONFIG_NAME) is None
    with pytest.raises(NoSuchBucket):
        await book.get("nope")
    with pytest.raises(NoSuchBucket):
        await book.put("nope", {})


async def test_policy_book_caches_for_two_seconds(store: LmdbMetadataStore) -> None:
    clock = Clock()
    book = PolicyBook(store, DEFAULTS, clock=clock)
    writer = PolicyBook(store, DEFAULTS, clock=clock)  # another process's book
    assert await book.get(BUCKET) == DEFAULTS
    await writer.put(BUCKET, {"replication_min": 1})
    clock.now += 1.9
    assert await book.get(BUCKET) == DEFAULTS  # still cached
    clock.now += 0.2
    assert await book.get(BUCKET) == ReplicationPolicy(1, 3)


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),  # nesting too deep for the decoder
        ('"Enabled"', "is a JSON object"),
        ('{"ack": "quorum"}', "ack must be 'local' or 'cluster'"),
        ('{"replication_min": 5, "replication_max": 2}', "replication_min is larger"),
    ],
)
async def test_a_corrupt_stored_policy_is_a_backend_error(store: LmdbMetadataStore, stored: str, reason: str) -> None:
    store.put_bucket_config(BUCKET, CONFIG_NAME, stored)
    book = PolicyBook(store, DEFAULTS, clock=Clock())
    with pytest.raises(BackendError) as caught:
        await book.lookup(BUCKET)
    assert f"the stored replication policy of bucket {BUCKET!r} is corrupt" in caught.value.message
    assert reason in caught.value.message and "s3ipfs pins policy clear" in caught.value.message
    with pytest.raises(BackendError):
        await book.get(BUCKET)  # not cached as the defaults
    await book.clear(BUCKET)  # the way out works without reading the damaged row
    assert await book.lookup(BUCKET) == (DEFAULTS, False)


async def test_the_orchestrator_survives_a_corrupt_policy(tmp_path: Path) -> None:
    outbox = LmdbMetadataStore(tmp_path / "outbox", map_size=1 << 26, pin_outbox=True)
    try:
        outbox.create_bucket(make_bucket())
        outbox.put_object(make_meta("k", "cid-a"), unpin_grace=GRACE, now=1000.0)
        outbox.put_bucket_config(BUCKET, CONFIG_NAME, "{not json")
        clock = Clock()
        orchestrator = PinOrchestrator(
            outbox, FakePinner(), PolicyBook(outbox, DEFAULTS, clock=clock), OrchestratorSettings(), clock=clock
        )
        assert await orchestrator.run_once() == 1
        # The job's outcome is recorded (not left in flight until its lease runs out, as a bare ValueError did).
        record = outbox.pin_status("cid-a")
        assert record is not None and record.state == "error"
        assert "replication policy" in record.error and "corrupt" in record.error
        job = outbox.pin_job("cid-a")
        assert job is not None and job.state == "queued" and job.due > clock()  # retried with backoff
    finally:
        outbox.close()
