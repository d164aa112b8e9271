"""The S3 app's gate through Quart's test client: allow/deny lists on the resolved client address (the scope's
client, or X-Forwarded-For from a trusted proxy) before authentication, and rate limits answering 503 SlowDown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from quart import Quart, Response, request

from appliance.api.access import CLIENT_KEY, ListenerAccess
from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, RateLimitConfig, S3Config
from appliance.service.buckets import BucketService
from appliance.service.iam_memory import MemoryPolicySource, MemoryUser
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.service.rate_table import RateTable
from appliance.service.ratelimit import RateLimiter
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.api.s3.test_app_quart import MemoryContent
from tests.support import raw

USERS = {"AKIDONE": "secret-one", "AKIDTWO": "secret-two"}
HOST = "127.0.0.1:9000"


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Any]:
    stores: list[LmdbMetadataStore] = []
    tables: list[RateTable] = []

    def make(s3: S3Config | None = None, limits: RateLimitConfig | None = None) -> Quart:
        store = LmdbMetadataStore(tmp_path / f"meta{len(stores)}", map_size=1 << 26)
        stores.append(store)
        content = MemoryContent()
        s3 = s3 or S3Config()
        limiter = None
        if limits is not None:
            table = RateTable.create(tmp_path / f"rl{len(tables)}.table", 256)
            tables.append(table)
            limiter = RateLimiter(limits, table, clock=Clock())
        services = S3Services(
            objects=ObjectService(store, content, unpin_grace=0),
            multipart=MultipartService(store, content, unpin_grace=0),
            buckets=BucketService(store, default_region="us-east-1"),
            identity=Identity([Credentials(k, s) for k, s in USERS.items()]),
            s3=s3,
            auth=AuthConfig(),
            access=ListenerAccess.from_config(s3),
            limiter=limiter,
        )
        return create_app(services)

    yield make
    for store in stores:
        store.close()
    for table in tables:
        table.close()


async def _get(app: Quart, client: str, *, key: str = "AKIDONE", headers: dict[str, str] | None = None) -> Any:
    all_headers = dict(headers or {})
    if key:
        secret = USERS.get(key, "wrong-secret")
        all_headers = raw.signed_headers(
            "GET", f"http://{HOST}/", access_key=key, secret_key=secret, headers=all_headers
        )
    all_headers["Host"] = HOST
    test_client = app.test_client()
    return await test_client.open("/", method="GET", headers=all_headers, scope_base={"client": (client, 40000)})


async def _code(response: Any) -> str | None:
    body = await response.get_data()
    return ET.fromstring(body).findtext("Code") if body else None


async def test_allow_list_refuses_others_before_authentication(build: Any) -> None:
    app = build(S3Config(allow_cidrs=("10.0.0.0/8",)))
    assert (await _get(app, "10.1.2.3")).status_code == 200
    refused = await _get(app, "192.0.2.9")
    assert refused.status_code == 403 and await _code(refused) == "AccessDenied"
    unsigned = await _get(app, "192.0.2.9", key="")  # refused for its address, not for lacking a signature
    assert await _code(unsigned) == "AccessDenied"
    body = (await (await _get(app, "192.0.2.9")).get_data()).decode()
    assert "10.0.0.0" not in body and "allow" not in body.lower()  # a generic message


async def test_deny_wins_and_ipv4_mapped_peers(build: Any) -> None:
    app = build(S3Config(allow_cidrs=("10.0.0.0/8",), deny_cidrs=("10.6.6.0/24",)))
    assert (await _get(app, "10.6.6.6")).status_code == 403
    assert (await _get(app, "::ffff:10.6.6.6")).status_code == 403
    assert (await _get(app, "::ffff:10.1.1.1")).status_code == 200
    assert (await _get(app, "2001:db8::1")).status_code == 403  # not in the (IPv4-only) allow list


async def test_forwarded_address_counts_only_from_a_trusted_proxy(build: Any) -> None:
    app = build(S3Config(trusted_proxies=("127.0.0.1",), deny_cidrs=("198.51.100.0/24",)))
    via_proxy = {"X-Forwarded-For": "198.51.100.7"}
    assert (await _get(app, "127.0.0.1", headers=via_proxy)).status_code == 403
    assert (await _get(app, "127.0.0.1", headers={"X-Forwarded-For": "203.0.113.1"})).status_code == 200
    # A client that is not the proxy cannot launder its address through the header, nor get denied through it.
    assert (await _get(app, "192.0.2.1", headers=via_proxy)).status_code == 200
    assert (await _get(app, "198.51.100.7", headers={"X-Forwarded-For": "203.0.113.1"})).status_code == 403


async def test_the_resolved_address_is_in_the_scope(build: Any) -> None:
    app = build(S3Config(trusted_proxies=("127.0.0.1",)))
    seen: list[str] = []

    @app.after_request
    async def spy(response: Response) -> Response:
        seen.append(request.scope.get(CLIENT_KEY, ""))
        return response

    await _get(app, "127.0.0.1", headers={"X-Forwarded-For": "203.0.113.1"})
    await _get(app, "192.0.2.5", headers={"X-Forwarded-For": "203.0.113.1"})
    assert seen == ["203.0.113.1", "192.0.2.5"]  # what authorization (aws:SourceIp), logs and audit read


async def test_slow_down_with_retry_after_per_key(build: Any) -> None:
    app = build(limits=RateLimitConfig(enabled=True, per_key_rps=0.5, per_key_burst=3))
    statuses = [(await _get(app, "192.0.2.1")).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 503, 503]
    throttled = await _get(app, "192.0.2.1")
    assert await _code(throttled) == "SlowDown"
    assert throttled.headers["Retry-After"] == "2"  # a token every 2 s
    assert throttled.headers["x-amz-request-id"]
    # Another key (from the very same address) is not slowed down by the first.
    assert [(await _get(app, "192.0.2.1", key="AKIDTWO")).status_code for _ in range(3)] == [200] * 3


async def test_failed_signatures_spend_from_the_address_not_the_key(build: Any) -> None:
    app = build(limits=RateLimitConfig(enabled=True, per_key_rps=1, per_key_burst=2, per_ip_rps=1, per_ip_burst=2))
    forged = [await _code(await _get(app, "203.0.113.66", key="AKIDFORGED")) for _ in range(4)]
    assert forged == ["InvalidAccessKeyId", "InvalidAccessKeyId", "SlowDown", "SlowDown"]
    # The owner of a key an attacker names keeps its whole budget.
    assert [(await _get(app, "192.0.2.1", key="AKIDONE")).status_code for _ in range(2)] == [200, 200]


async def test_rate_limit_off_by_default(build: Any) -> None:
    app = build()
    assert {(await _get(app, "192.0.2.1")).status_code for _ in range(30)} == {200}


async def test_aws_source_ip_is_the_resolved_address(tmp_path: Path) -> None:
    """A bucket policy on aws:SourceIp sees the address a trusted proxy forwarded, never one a client claims."""
    store = LmdbMetadataStore(tmp_path / "meta-ip", map_size=1 << 26)
    content = MemoryContent()
    s3 = S3Config(trusted_proxies=("127.0.0.1",))
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),
        multipart=MultipartService(store, content, unpin_grace=0),
        buckets=BucketService(store, default_region="us-east-1"),
        identity=Identity([Credentials("AKROOT", "root-secret")]),
        s3=s3,
        auth=AuthConfig(),
        access=ListenerAccess.from_config(s3),
        policies=MemoryPolicySource([MemoryUser("alice", "AKIDONE", USERS["AKIDONE"], policies=("readwrite",))]),
    )
    app = create_app(services)

    async def call(method: str, path: str, client: str, body: bytes = b"", xff: str = "") -> Any:
        headers = {"X-Forwarded-For": xff} if xff else {}
        signed = raw.signed_headers(
            method,
            f"http://{HOST}{path}",
            access_key="AKIDONE",
            secret_key=USERS["AKIDONE"],
            headers=headers,
            body=body,
        )
        signed |= {"Host": HOST, "Content-Length": str(len(body))}
        return await app.test_client().open(
            path, method=method, headers=signed, data=body, scope_base={"client": (client, 40000)}
        )

    try:
        assert (await call("PUT", "/ipb", "127.0.0.1")).status_code == 200
        assert (await call("PUT", "/ipb/k", "127.0.0.1", b"data")).status_code == 200
        deny = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::ipb/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        }
        document = json.dumps({"Version": "2012-10-17", "Statement": [deny]}).encode()
        assert (await call("PUT", "/ipb?policy", "127.0.0.1", document)).status_code == 204
        assert (await call("GET", "/ipb/k", "127.0.0.1", xff="203.0.113.5")).status_code == 403
        assert (await call("GET", "/ipb/k", "127.0.0.1", xff="198.51.100.1")).status_code == 200
        assert (await call("GET", "/ipb/k", "203.0.113.9")).status_code == 403  # the peer itself
        # An untrusted peer's header is ignored both ways: it neither escapes nor falls under the condition.
        assert (await call("GET", "/ipb/k", "203.0.113.9", xff="198.51.100.1")).status_code == 403
        assert (await call("GET", "/ipb/k", "192.0.2.1", xff="203.0.113.5")).status_code == 200
    finally:
        store.close()
