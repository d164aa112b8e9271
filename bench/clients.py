"""The requests the bench times: S3 (httpx + botocore SigV4), raw IPFS RPC (httpx) and bare HTTP (httpx).

Every side of every ratio goes through the same `httpx.AsyncClient`, so client overhead is shared; SigV4
signing (botocore `SigV4Auth` on an `AWSRequest`) is part of the S3 side, as it is for any real S3 client.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from defusedxml import ElementTree

from bench.procs import Credentials

__all__ = [
    "BigPayload",
    "BenchRequestError",
    "S3",
    "ipfs_add",
    "ipfs_add_stream",
    "ipfs_cat",
    "drain",
]

UNSIGNED = "UNSIGNED-PAYLOAD"
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_MIB = 1024 * 1024


class BenchRequestError(RuntimeError):
    """A timed request did not succeed: the numbers would be meaningless."""


def _check(resp: httpx.Response, what: str) -> None:
    if resp.status_code // 100 != 2:
        try:
            body = resp.content[:300]
        except httpx.ResponseNotRead:
            body = b""
        raise BenchRequestError(f"{what}: HTTP {resp.status_code} {body!r}")


class BigPayload:
    """`size` pseudo-random bytes streamed in 1 MiB chunks from one 1 MiB block (never held whole).

    Each chunk is the block rotated by an offset derived from (seed, chunk index), so no two 256 KiB or 1 MiB
    IPFS blocks repeat within or across uploads with different seeds, and the node cannot dedupe them.
    """

    def __init__(self, size: int, block: bytes) -> None:
        self.size = size
        self._block = block

    @classmethod
    def make(cls, size: int, rng_seed: int = 20261205) -> BigPayload:
        return cls(size, random.Random(rng_seed).randbytes(_MIB))

    def chunks(self, seed: int) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            sent, index = 0, 0
            while sent < self.size:
                off = (seed * 1_000_003 + index * 262_147 + 1) % _MIB
                chunk = self._block[off:] + self._block[:off]
                chunk = chunk[: self.size - sent]
                sent += len(chunk)
                index += 1
                yield chunk

        return gen()


async def drain(resp: httpx.Response) -> int:
    """Read a streamed body to the end without keeping it; the byte count."""
    total = 0
    async for chunk in resp.aiter_raw():
        total += len(chunk)
    return total


# ---- raw IPFS node (Kubo RPC API) -------------------------------------------------------------------------

ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "pin": "true"}


def _multipart_parts() -> tuple[str, bytes, bytes]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return f"multipart/form-data; boundary={boundary}", head, f"\r\n--{boundary}--\r\n".encode()


def _cid_of(resp: httpx.Response) -> str:
    lines = [line for line in resp.text.splitlines() if line.strip()]
    if not lines:
        raise BenchRequestError(f"add: empty response {resp.status_code}")
    return str(json.loads(lines[-1])["Hash"])


async def ipfs_add(client: httpx.AsyncClient, api_url: str, data: bytes) -> str:
    """POST /api/v0/add with one small file; its CID."""
    ctype, head, tail = _multipart_parts()
    resp = await client.post(
        f"{api_url}/api/v0/add", params=ADD_PARAMS, content=head + data + tail, headers={"Content-Type": ctype}
    )
    _check(resp, "ipfs add")
    return _cid_of(resp)


async def ipfs_add_stream(client: httpx.AsyncClient, api_url: str, body: AsyncIterator[bytes], size: int) -> str:
    """POST /api/v0/add streaming `size` bytes from `body` (multipart built around the stream); its CID."""
    ctype, head, tail = _multipart_parts()

    async def content() -> AsyncIterator[bytes]:
        yield head
        async for chunk in body:
            yield chunk
        yield tail

    headers = {"Content-Type": ctype, "Content-Length": str(len(head) + size + len(tail))}
    resp = await client.post(f"{api_url}/api/v0/add", params=ADD_PARAMS, content=content(), headers=headers)
    _check(resp, "ipfs add (stream)")
    return _cid_of(resp)


async def ipfs_cat(client: httpx.AsyncClient, api_url: str, cid: str) -> int:
    """POST /api/v0/cat, streamed and discarded; the byte count."""
    async with client.stream("POST", f"{api_url}/api/v0/cat", params={"arg": cid}) as resp:
        if resp.status_code != 200:
            await resp.aread()
            _check(resp, "ipfs cat")
        return await drain(resp)


# ---- S3 through the gateway -------------------------------------------------------------------------------


class S3:
    """Path-style S3 requests signed with botocore's SigV4Auth and sent with httpx."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, creds: Credentials, region: str = "us-east-1"):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self._signer = SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key), "s3", region)

    def _url(self, bucket: str, key: str = "") -> str:
        return f"{self.base_url}/{quote(bucket)}" + (f"/{quote(key)}" if key else "")

    def _headers(
        self, method: str, url: str, payload_sha256: str, extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        req = AWSRequest(method=method, url=url, headers={"X-Amz-Content-SHA256": payload_sha256, **(extra or {})})
        self._signer.add_auth(req)
        return {k: v for k, v in req.headers.items()}

    async def create_bucket(self, bucket: str) -> None:
        url = self._url(bucket)
        resp = await self.client.put(url, headers=self._headers("PUT", url, hashlib.sha256(b"").hexdigest()))
        if resp.status_code != 409:  # already there (BucketAlreadyOwnedByYou) is fine
            _check(resp, f"CreateBucket {bucket}")

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        url = self._url(bucket, key)
        headers = self._headers("PUT", url, hashlib.sha256(data).hexdigest())
        resp = await self.client.put(url, content=data, headers=headers)
        _check(resp, f"PutObject {key}")

    async def put_stream(self, bucket: str, key: str, body: AsyncIterator[bytes], size: int) -> None:
        """PutObject streamed from `body` with UNSIGNED-PAYLOAD (as SDKs do for streams over TLS)."""
        url = self._url(bucket, key)
        headers = self._headers("PUT", url, UNSIGNED)
        headers["Content-Length"] = str(size)
        resp = await self.client.put(url, content=body, headers=headers)
        _check(resp, f"PutObject {key} (stream)")

    async def get(self, bucket: str, key: str) -> int:
        """GetObject streamed and discarded; the byte count."""
        url = self._url(bucket, key)
        headers = self._headers("GET", url, hashlib.sha256(b"").hexdigest())
        async with self.client.stream("GET", url, headers=headers) as resp:
            if resp.status_code != 200:
                await resp.aread()
                _check(resp, f"GetObject {key}")
            return await drain(resp)

    async def head(self, bucket: str, key: str) -> int:
        """HeadObject; the Content-Length it reports."""
        url = self._url(bucket, key)
        resp = await self.client.head(url, headers=self._headers("HEAD", url, hashlib.sha256(b"").hexdigest()))
        _check(resp, f"HeadObject {key}")
        return int(resp.headers.get("content-length", "-1"))

    async def _signed(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        signed = self._headers(method, url, hashlib.sha256(body).hexdigest(), headers)
        return await self.client.request(method, url, content=body, headers=signed)

    async def multipart_put(
        self, bucket: str, key: str, chunks: AsyncIterator[bytes], part_size: int, concurrency: int = 4
    ) -> int:
        """CreateMultipartUpload, parts of `part_size` uploaded `concurrency` at a time (UNSIGNED-PAYLOAD), Complete."""
        url = self._url(bucket, key)
        created = await self._signed("POST", f"{url}?uploads=")
        _check(created, "CreateMultipartUpload")
        root = ElementTree.fromstring(created.content)
        upload_id = root.findtext(f"{_S3_NS}UploadId") or root.findtext("UploadId") or ""
        gate = asyncio.Semaphore(concurrency)
        etags: dict[int, str] = {}
        tasks: list[asyncio.Task[None]] = []
        total = 0

        async def send(number: int, data: bytes) -> None:
            try:
                part_url = f"{url}?partNumber={number}&uploadId={upload_id}"
                headers = self._headers("PUT", part_url, UNSIGNED)
                resp = await self.client.put(part_url, content=data, headers=headers)
                _check(resp, f"UploadPart {number}")
                etags[number] = resp.headers["etag"]
            finally:
                gate.release()

        buffer = bytearray()
        number = 0
        async for piece in chunks:
            buffer += piece
            total += len(piece)
            while len(buffer) >= part_size:
                number += 1
                await gate.acquire()
                tasks.append(asyncio.create_task(send(number, bytes(buffer[:part_size]))))
                del buffer[:part_size]
        if buffer or number == 0:
            number += 1
            await gate.acquire()
            tasks.append(asyncio.create_task(send(number, bytes(buffer))))
        await asyncio.gather(*tasks)
        body = (
            "<CompleteMultipartUpload>"
            + "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>" for n in sorted(etags))
            + "</CompleteMultipartUpload>"
        )
        done = await self._signed("POST", f"{url}?uploadId={upload_id}", body.encode())
        _check(done, "CompleteMultipartUpload")
        return total

    async def copy(self, bucket: str, source_key: str, key: str) -> None:
        url = self._url(bucket, key)
        resp = await self._signed("PUT", url, headers={"x-amz-copy-source": f"/{bucket}/{quote(source_key)}"})
        _check(resp, f"CopyObject {source_key}")

    async def list_page(self, bucket: str, token: str | None = None, max_keys: int = 1000) -> tuple[int, str | None]:
        """One ListObjectsV2 page: (keys on it, next continuation token or None)."""
        params = {"list-type": "2", "max-keys": str(max_keys)}
        if token:
            params["continuation-token"] = token
        url = str(httpx.URL(self._url(bucket), params=params))  # sign exactly the URL that is sent
        headers = self._headers("GET", url, hashlib.sha256(b"").hexdigest())
        resp = await self.client.get(url, headers=headers)
        _check(resp, f"ListObjectsV2 {bucket}")
        root = ElementTree.fromstring(resp.content)
        keys = len(root.findall(f"{_S3_NS}Contents")) or len(root.findall("Contents"))
        truncated = (root.findtext(f"{_S3_NS}IsTruncated") or root.findtext("IsTruncated") or "").strip() == "true"
        nxt = root.findtext(f"{_S3_NS}NextContinuationToken") or root.findtext("NextContinuationToken")
        return keys, (nxt if truncated else None)
