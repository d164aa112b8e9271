"""An in-process S3 gateway for tests: the real app on a real hypercorn socket on 127.0.0.1, in a background thread,
backed by a real IPFS node and a real LMDB store (the multi-process daemon is tested separately)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from hypercorn.asyncio import serve
from hypercorn.config import Config as HyperConfig

from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.cache.memory import CachingContentStore, MemoryCache
from appliance.components import ContentStore, PolicySource
from appliance.config import AuthConfig, S3Config
from appliance.ipfsconn.kubo import KuboClient
from appliance.service.buckets import BucketService
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.support.nodes import free_ports

__all__ = ["ACCESS_KEY", "SECRET_KEY", "ThreadedGateway", "running_gateway"]

ACCESS_KEY = "S3IPFSTESTACCESSKEY0"
SECRET_KEY = "test-secret-key-0123456789abcdefghijklmn"


@dataclass
class ThreadedGateway:
    endpoint: str
    port: int
    store: LmdbMetadataStore
    api_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    clock_offset: list[float] = field(default_factory=lambda: [0.0])

    def client(self, **config: object) -> object:
        """A boto3 S3 client for this gateway (path-style unless addressing_style is given)."""
        return self.client_for(self.access_key, self.secret_key, **config)

    def anonymous_client(self) -> object:
        """A client that signs nothing (botocore UNSIGNED): an anonymous principal."""
        return self.client_for("", "", signature_version=UNSIGNED)

    def client_for(self, access_key: str, secret_key: str, **config: object) -> object:
        """A boto3 S3 client signing with the given key (an IAM user's)."""
        style = config.pop("addressing_style", "path")
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name="us-east-1",
            config=BotoConfig(s3={"addressing_style": style}, retries={"max_attempts": 1}, **config),  # type: ignore[arg-type]
            verify=False if self.endpoint.startswith("https") else None,
        )


@contextlib.contextmanager
def running_gateway(
    tmp_path: Path,
    api_url: str,
    *,
    s3: S3Config | None = None,
    unpin_grace: float = 300.0,
    ipfs_timeout: float = 30.0,
    cache_bytes: int = 0,
    min_part_size: int = 5 * 1024 * 1024,
    chunk_size: int = 1024 * 1024,
    policies: PolicySource | None = None,
) -> Iterator[ThreadedGateway]:
    """Serve the S3 app on a free port for the duration of the block."""
    (port,) = free_ports(1)
    s3 = s3.model_copy(update={"port": port}) if s3 is not None else S3Config(port=port)
    store = LmdbMetadataStore(Path(tmp_path) / "meta", map_size=1 << 30)
    scheme = "https" if s3.tls_certfile else "http"
    gateway = ThreadedGateway(f"{scheme}://127.0.0.1:{port}", port, store, api_url)
    clock: Callable[[], float] = lambda: time.time() + gateway.clock_offset[0]  # noqa: E731
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        kubo = KuboClient(api_url, timeout=ipfs_timeout, connect_timeout=1.0, chunk_size=chunk_size)
        content: ContentStore = (
            CachingContentStore(kubo, MemoryCache(cache_bytes, 1024 * 1024)) if cache_bytes else kubo
        )
        services = S3Services(
            objects=ObjectService(store, content, unpin_grace=unpin_grace, clock=clock),
            multipart=MultipartService(
                store, content, unpin_grace=unpin_grace, min_part_size=min_part_size, clock=clock
            ),
            buckets=BucketService(store, default_region=s3.region, clock=clock),
            identity=Identity([Credentials(ACCESS_KEY, SECRET_KEY)]),
            s3=s3,
            auth=AuthConfig(),
            clock=clock,
            policies=policies,
        )
        config = HyperConfig()
        config.bind = [f"127.0.0.1:{port}"]
        config.max_app_queue_size = 4
        config.accesslog = None
        config.graceful_timeout = 2
        config.h11_max_incomplete_size = s3.max_header_bytes
        if s3.tls_certfile:
            config.certfile, config.keyfile = s3.tls_certfile, s3.tls_keyfile
        started.set()
        try:
            await serve(create_app(services), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
        finally:
            await kubo.aclose()

    def runner() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=runner, name="s3-gateway", daemon=True)
    thread.start()
    started.wait(30)
    deadline = time.monotonic() + 30
    while True:
        if failure:
            raise failure[0]
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the in-process gateway did not start")
        time.sleep(0.05)
    try:
        yield gateway
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        if not thread.is_alive():
            loop.close()
        store.close()
