"""Kubo RPC client: the ContentStore adapter over `POST /api/v0/<cmd>`, with one `_request` chokepoint.

`_request` owns URLs, timeouts and error translation:

- connect errors, timeouts, a dropped connection and HTTP 502/503/504 → `BackendUnavailable`;
- a node error (JSON `{"Message","Code","Type"}` or text/plain) → `BackendError` with the node's message,
  except "timed out" / "context deadline exceeded" → `BackendUnavailable` (the content may yet arrive).

The node's `timeout=` bounds the *whole* call (Kubo and js-ipfs both put one deadline on the request, also
while streaming), so streamed calls get a deadline sized to their bytes: the base timeout plus one second per
MiB. Bodies are streamed both ways, never buffered. CIDs come back as base32 CIDv1 (`normalise_cid`).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from appliance import metrics
from appliance.errors import BackendError, BackendUnavailable, ContentIntegrityError
from appliance.httpio import read_limited
from appliance.ipfsconn import unixfs
from appliance.ipfsconn.dagread import VerifiedReader
from appliance.model import DAG_PB, RAW, AddedContent, Cid

__all__ = ["KuboClient", "RepoStat"]

_API = "/api/v0/"
_CAT_CHUNK = 256 * 1024  # the largest piece cat yields
_COALESCE = 256 * 1024  # small source chunks are gathered into writes of this size before they are sent
_MIN_RATE = 1024 * 1024  # bytes per second a streamed call is granted on top of the base timeout
_ADD_DEADLINE = 24 * 3600.0  # add is local; its body arrives at the S3 client's pace, which has its own timeouts
_MARGIN = 5.0  # the client waits longer than the node's deadline, so the node's own error arrives first
_MAX_REPLY = 4 * 1024 * 1024  # bound on a JSON/NDJSON reply read into memory
_MAX_MESSAGE = 300
_UNAVAILABLE_STATUS = frozenset({502, 503, 504})
_TIMEOUT_WORDS = ("timed out", "deadline exceeded")

Params = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class RepoStat:
    """The node's repo usage (`repo/stat`); numbers arrive as JSON numbers or strings."""

    repo_size: int
    storage_max: int
    num_objects: int


def _count_error(cmd: str, error: BackendError | BackendUnavailable | None) -> None:
    """Count a failed call: `unavailable` (unreachable, timed out) or `error` (the node refused it)."""
    kind = "error" if isinstance(error, BackendError) else "unavailable"
    metrics.IPFS_RPC_ERRORS.labels(cmd, kind).inc()


def normalise_cid(text: str) -> str:
    """A CID the node answered, as base32 CIDv1 text (model.Cid); BackendError if it is unreadable."""
    try:
        return Cid.normalise(text)
    except ValueError as exc:
        raise BackendError(f"IPFS returned an unreadable CID {text[:80]!r}") from exc


def _duration(seconds: float) -> str:
    """A duration both Go (`time.ParseDuration`) and js-ipfs (`parse-duration`) read: `30s`, `1500ms`."""
    ms = max(1, math.ceil(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _as_int(value: Any, what: str) -> int:
    """Sizes come as JSON numbers from Kubo and as strings from js-ipfs."""
    if isinstance(value, bool):
        raise BackendError(f"IPFS returned a non-numeric {what}: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise BackendError(f"IPFS returned a non-numeric {what}: {str(value)[:40]!r}")


def _node_message(body: bytes, status: int) -> str:
    """The node's error text: `Message` of a JSON error body, else the text/plain body."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("Message"), str) and data["Message"]:
        text = data["Message"]
    return text[:_MAX_MESSAGE] or f"HTTP {status}"


def _json_object(body: bytes, cmd: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BackendError(f"IPFS {cmd}: malformed JSON reply") from exc
    if not isinstance(data, dict):
        raise BackendError(f"IPFS {cmd}: unexpected reply {body[:80]!r}")
    return data


def _last_add_event(body: bytes) -> dict[str, Any]:
    """The root of an add is the last NDJSON line; an in-band error line is an error."""
    events = [_json_object(line, "add") for line in body.splitlines() if line.strip()]
    for event in events:
        if event.get("Type") == "error" and isinstance(event.get("Message"), str):
            raise BackendError(f"IPFS add: {event['Message'][:_MAX_MESSAGE]}")
    if not events or not isinstance(events[-1].get("Hash"), str):
        raise BackendError("IPFS add: the reply has no root CID")
    return events[-1]


async def _read_limited(response: httpx.Response, cmd: str, limit: int = _MAX_REPLY, *, head: bool = False) -> bytes:
    return await read_limited(response, f"IPFS {cmd}", limit, head=head)


class _MultipartBody:
    """One `file` part streamed from the source iterator; counts bytes and remembers the source's error."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self.boundary = secrets.token_hex(16)
        self.size = 0
        self.error: BaseException | None = None
        self._source = source

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def stream(self) -> AsyncIterator[bytes]:
        yield (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="object"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("ascii")
        pending = bytearray()
        while True:
            try:
                chunk = await anext(self._source)
            except StopAsyncIteration:
                break
            except BaseException as exc:
                # Remember it so add() re-raises this very exception; raising here aborts the request
                # before the closing boundary, so the node never completes (or pins) the file.
                self.error = exc
                raise
            self.size += len(chunk)
            if len(chunk) >= _COALESCE:  # large chunks go out as they are, without a copy
                if pending:
                    yield bytes(pending)
                    pending.clear()
                yield chunk
                continue
            pending += chunk
            if len(pending) >= _COALESCE:  # many small writes cost more than one copy
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)
        yield f"\r\n--{self.boundary}--\r\n".encode("ascii")


class KuboClient:
    """ContentStore over the Kubo RPC API (also spoken by the js-ipfs development node)."""

    def __init__(
        self,
        api_url: str,
        *,
        chunk_size: int = 1048576,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        auth_header: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        verify_reads: bool = True,
        read_batch: int = 256,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ValueError("api_url must start with http:// or https://")
        if chunk_size <= 0 or timeout <= 0 or connect_timeout <= 0:
            raise ValueError("chunk_size, timeout and connect_timeout must be > 0")
        self._chunk_size = chunk_size
        self._verify = verify_reads
        self._reader = VerifiedReader(self.block_get, self._cat_unverified, batch=read_batch)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        if transport is None:
            # Node's HTTP server drops idle connections after 5 s: expire ours first, so a reused
            # connection is never one the server is closing.
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=4.0)
            transport = httpx.AsyncHTTPTransport(limits=limits)
        headers = {"Authorization": auth_header} if auth_header else {}
        self._base = api_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"), transport=transport, headers=headers, trust_env=False
        )

    async def __aenter__(self) -> KuboClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the chokepoint ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _request(
        self,
        cmd: str,
        params: Params = (),
        *,
        deadline: float | None = None,
        read_timeout: float | None = None,
        content: AsyncIterator[bytes] | None = None,
        content_type: str = "",
    ) -> AsyncIterator[httpx.Response]:
        """POST /api/v0/<cmd>; yield the 200 response with its body unread. `deadline` is passed to the
        node as `timeout=`; the client's own read timeout is a little longer, or `read_timeout`."""
        query: list[tuple[str, str]] = [*params]
        if deadline is not None:
            query.append(("timeout", _duration(deadline)))
        if read_timeout is None:
            read_timeout = (deadline if deadline is not None else self._timeout) + _MARGIN
        timeout = httpx.Timeout(
            connect=self._connect_timeout, read=read_timeout, write=self._timeout, pool=self._timeout
        )
        headers = {"Content-Type": content_type} if content_type else None
        # The query string is built here: httpx's params merging costs ~50 µs per call on the hot path.
        url = f"{self._base}{_API}{cmd}?{urlencode(query)}"
        request = self._client.build_request("POST", url, content=content, headers=headers, timeout=timeout)
        metrics.count_ipfs_call(cmd)
        started = time.perf_counter()
        try:
            response = await self._client.send(request, stream=True)
            metrics.IPFS_RPC_DURATION.labels(cmd).observe(time.perf_counter() - started)
            try:
                if response.status_code != 200:
                    error = self._node_error(
                        cmd, response.status_code, await _read_limited(response, cmd, 65536, head=True)
                    )
                    _count_error(cmd, error)
                    raise error
                yield response
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            _count_error(cmd, None)
            raise BackendUnavailable(f"IPFS {cmd}: the node did not answer in time ({type(exc).__name__})") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            _count_error(cmd, None)
            raise BackendUnavailable(f"IPFS {cmd}: the node cannot be reached ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            _count_error(cmd, BackendError())
            raise BackendError(f"IPFS {cmd}: {type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}") from exc

    @staticmethod
    def _node_error(cmd: str, status: int, body: bytes) -> BackendError | BackendUnavailable:
        message = _node_message(body, status)
        if status in _UNAVAILABLE_STATUS:
            return BackendUnavailable(f"IPFS {cmd}: {message}")
        if any(word in message.lower() for word in _TIMEOUT_WORDS):
            return BackendUnavailable(f"IPFS {cmd}: {message}")
        return BackendError(f"IPFS {cmd}: {message}")

    async def _call(self, cmd: str, params: Params = (), *, deadline: float | None = None) -> dict[str, Any]:
        """One RPC call whose reply is a single JSON object."""
        async with self._request(cmd, params, deadline=deadline) as response:
            body = await _read_limited(response, cmd)
        return _json_object(body, cmd)

    # ---- ContentStore -----------------------------------------------------------------------------

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        """Stream `chunks` into a UnixFS file (CIDv1, raw leaves, sha2-256, fixed-size chunks)."""
        body = _MultipartBody(aiter(chunks))
        params = [
            ("cid-version", "1"),
            ("raw-leaves", "true"),
            ("chunker", f"size-{self._chunk_size}"),
            ("hash", "sha2-256"),
            ("cid-base", "base32"),
            ("pin", "true" if pin else "false"),
            ("progress", "false"),
        ]
        try:
            async with self._request(
                "add",
                params,
                deadline=_ADD_DEADLINE,
                read_timeout=self._timeout + _MARGIN,
                content=body.stream(),
                content_type=body.content_type,
            ) as response:
                reply = await _read_limited(response, "add")
        except BaseException as exc:
            if body.error is not None and exc is not body.error:
                raise body.error from None  # the source's own error, even if it was an httpx one
            raise
        event = _last_add_event(reply)
        return AddedContent(cid=normalise_cid(event["Hash"]), size=body.size)

    async def cat(
        self, cid: str, offset: int = 0, length: int | None = None, *, size: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the file's bytes from `offset`, `length` bytes (None: to the end), verified block by block
        against the CID (dagread.VerifiedReader) unless the client was made with `verify_reads=False`.

        With `length=None` the file's size is asked first (`files/stat`, which also fails fast when the root
        is missing). A stream that ends short or runs long is a ContentIntegrityError, never a short read."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must be >= 0")
        expected = length if length is not None else max(await self.file_size(cid) - offset, 0)
        if expected == 0:
            return  # the node rejects length=0 and an offset at the end
        if self._verify:
            async for piece in self._reader.read(cid, offset, expected, size=size):
                yield piece
            return
        async for piece in self._cat_unverified(cid, offset, expected):
            yield piece

    async def _cat_unverified(self, cid: str, offset: int, expected: int) -> AsyncIterator[bytes]:
        """`cat` as the node streams it (for `verify_reads: false` and the benchmark baseline): only the length is
        checked. An error after the first byte travels in the X-Stream-Error trailer, which httpx cannot see, so
        the length is what catches it."""
        params = [("arg", cid), ("offset", str(offset)), ("length", str(expected))]
        received = 0
        deadline = self._timeout + expected / _MIN_RATE
        async with self._request("cat", params, deadline=deadline, read_timeout=self._timeout + _MARGIN) as response:
            # Pieces as they arrive (httpcore reads <= 64 KiB): re-chunking them costs ~15 % of throughput.
            async for piece in response.aiter_bytes():
                received += len(piece)
                if received > expected:
                    raise ContentIntegrityError(
                        f"IPFS cat: {cid} returned more than {expected} bytes", block=cid, root=cid, reason="long"
                    )
                if len(piece) <= _CAT_CHUNK:
                    yield piece
                else:
                    for start in range(0, len(piece), _CAT_CHUNK):
                        yield piece[start : start + _CAT_CHUNK]
        if received != expected:
            raise ContentIntegrityError(
                f"IPFS cat: {cid} ended after {received} of {expected} bytes", block=cid, root=cid, reason="short"
            )

    async def file_size(self, cid: str) -> int:
        """The UnixFS file size of `cid` (`files/stat`); BackendError if it is not a file."""
        stat = await self._call("files/stat", [("arg", f"/ipfs/{cid}")], deadline=self._timeout)
        if stat.get("Type") not in (None, "file"):
            raise BackendError(f"IPFS files/stat: {cid} is a {str(stat.get('Type'))[:20]}, not a file")
        return _as_int(stat.get("Size"), "file size")

    async def block_get(self, cid: str, *, limit: int = 4 * 1024 * 1024, deadline: float | None = None) -> bytes:
        """The raw bytes of one block (at most `limit`), checked against the CID's multihash: a block whose hash
        differs is a ContentIntegrityError (the node's bytes are never trusted). `deadline` defaults to the
        client's timeout; a block the node lacks and cannot find in time is BackendUnavailable."""
        try:
            wanted = Cid.parse(cid)
        except ValueError as exc:
            raise BackendError(f"not a CID: {cid[:80]!r}") from exc
        async with self._request(
            "block/get", [("arg", cid)], deadline=self._timeout if deadline is None else deadline
        ) as response:
            block = await _read_limited(response, "block/get", limit)
        if not wanted.verifies(block):
            raise ContentIntegrityError(
                f"IPFS block/get: block {wanted.text} does not match its hash",
                block=wanted.text,
                root=wanted.text,
                reason="hash mismatch",
            )
        return block

    async def block_put(self, data: bytes, *, codec: str = "dag-pb", pin: bool = False) -> str:
        """Store one block (`codec` "dag-pb" or "raw", sha2-256); returns its CIDv1 (base32), checked against the
        CID computed here (BackendError if the node stored something else).

        Parameters that both servers read: Kubo takes `cid-codec` (default raw) and treats the deprecated `format`
        as an override that may only be combined with `cid-codec=raw`; js-ipfs 0.66 drops `cid-codec` and reads
        `format` (default dag-pb, CIDv0 for dag-pb, so its Qm… key is upgraded by `normalise_cid`). Hence dag-pb
        sends only `cid-codec=dag-pb`, and raw sends `cid-codec=raw&format=raw`."""
        if codec == "dag-pb":
            params = [("cid-codec", "dag-pb")]
        elif codec == "raw":
            params = [("cid-codec", "raw"), ("format", "raw")]
        else:
            raise ValueError(f"unsupported block codec {codec!r} (dag-pb or raw)")
        params += [("mhtype", "sha2-256"), ("pin", "true" if pin else "false")]

        async def one() -> AsyncIterator[bytes]:
            yield data

        body = _MultipartBody(one())
        async with self._request(
            "block/put", params, deadline=self._timeout, content=body.stream(), content_type=body.content_type
        ) as response:
            reply = _json_object(await _read_limited(response, "block/put"), "block/put")
        got = normalise_cid(str(reply.get("Key", "")))
        expected = Cid.of_block(data, RAW if codec == "raw" else DAG_PB).text
        if got != expected:
            raise BackendError(f"IPFS block/put stored {got}, expected {expected}")
        return got

    async def dag_size(self, cid: str) -> int:
        """The cumulative serialized size of the DAG under `cid` (a dag-pb link's Tsize): a raw leaf's block
        length, or a dag-pb node's length plus its links' Tsize.

        `files/stat?arg=/ipfs/<cid>` `CumulativeSize` gives exactly that on both servers (Kubo: `Node.Size()`;
        js-ipfs 0.66: the raw block length, or the encoded dag-pb node plus its links' Tsize) and reads one block,
        whatever the DAG's depth. A non-UnixFS dag-pb node fails in files/stat (BackendError)."""
        stat = await self._call("files/stat", [("arg", f"/ipfs/{cid}")], deadline=self._timeout)
        return _as_int(stat.get("CumulativeSize"), "CumulativeSize")

    async def compose(self, parts: Sequence[tuple[str, int]], *, pin: bool = True) -> str:
        """One UnixFS file whose root links the (cid, size) files in order; no part data is re-added.
        The root is pinned recursively when `pin` (which also keeps every part's blocks)."""
        if not parts:
            raise ValueError("compose needs at least one part")
        gate = asyncio.Semaphore(8)

        async def child(cid: str, size: int) -> tuple[unixfs.Child, int]:
            """The child and the depth of its leaves (a balanced DAG: follow the first link down)."""
            if Cid.parse(cid).is_raw:
                return unixfs.Child(cid, size, size), 0
            depth, tsize, current = 0, 0, cid
            while True:
                async with gate:
                    block = await self.block_get(current)
                try:
                    links = unixfs.dag_pb_links(block)
                    node_size = unixfs.file_node_size(block) if depth == 0 else size
                except ValueError as exc:
                    raise BackendError(f"IPFS block {current} is not a readable UnixFS file node: {exc}") from exc
                if node_size != size:  # a wrong size would make the root's offsets (and every read) wrong
                    raise BackendError(f"IPFS part {cid} holds {node_size} bytes, not the {size} recorded")
                if depth == 0:
                    tsize = len(block) + sum(t for _, t in links)
                depth += 1
                if not links or Cid(links[0][0]).is_raw:
                    return unixfs.Child(cid, size, tsize), depth
                current = Cid(links[0][0]).text

        found = await asyncio.gather(*(child(cid, size) for cid, size in parts))
        deepest = max(depth for _, depth in found)
        wrappers: list[bytes] = []
        children: list[unixfs.Child] = []
        for found_child, depth in found:
            node = found_child
            for _ in range(deepest - depth):
                block, node = unixfs.wrap(node)
                wrappers.append(block)
            children.append(node)
        blocks, root = unixfs.compose_blocks(children)
        blocks = wrappers + blocks
        for block in blocks:
            await self.block_put(block)
        if pin:
            await self.pin(root)
        return root

    async def pin(self, cid: str) -> None:
        """Pin `cid` recursively (idempotent)."""
        await self._call("pin/add", [("arg", cid), ("recursive", "true")], deadline=self._timeout)

    async def unpin(self, cid: str) -> None:
        """Remove the recursive pin of `cid`; not pinned (or only indirectly) is success."""
        try:
            await self._call("pin/rm", [("arg", cid), ("recursive", "true")], deadline=self._timeout)
        except BackendError as exc:
            if "not pinned" not in exc.message:
                raise

    async def is_pinned(self, cid: str) -> bool:
        """Whether `cid` is pinned recursively. No `cid-base` here: js-ipfs fails it when a CIDv0 pin
        exists; the keys are normalised instead."""
        try:
            reply = await self._call("pin/ls", [("arg", cid), ("type", "recursive")], deadline=self._timeout)
        except BackendError as exc:
            if "not pinned" in exc.message:
                return False
            raise
        keys = reply.get("Keys")
        if not isinstance(keys, dict):
            raise BackendError("IPFS pin/ls: the reply has no Keys")
        wanted = normalise_cid(cid)
        return any(
            normalise_cid(key) == wanted and isinstance(info, dict) and info.get("Type") == "recursive"
            for key, info in keys.items()
        )

    async def recursive_pins(self) -> list[str]:
        """Every recursively pinned CID (normalised to CIDv1 base32), for reconcile."""
        reply = await self._call("pin/ls", [("type", "recursive")], deadline=self._timeout)
        keys = reply.get("Keys")
        if not isinstance(keys, dict):
            raise BackendError("IPFS pin/ls: the reply has no Keys")
        return sorted({normalise_cid(key) for key in keys})

    async def ping(self) -> str:
        """The node's version string (`version`)."""
        reply = await self._call("version")
        version = reply.get("Version")
        if not isinstance(version, str):
            raise BackendError("IPFS version: the reply has no Version")
        return version

    async def repo_stat(self) -> RepoStat:
        """Repo usage in bytes and objects."""
        reply = await self._call("repo/stat")
        return RepoStat(
            repo_size=_as_int(reply.get("RepoSize"), "RepoSize"),
            storage_max=_as_int(reply.get("StorageMax"), "StorageMax"),
            num_objects=_as_int(reply.get("NumObjects", 0), "NumObjects"),
        )

    async def block_local(self, cid: str, *, deadline: float, limit: int = 4 * 1024 * 1024) -> bytes:
        """The bytes of one block from the node's own blockstore, checked against the CID (scrub).

        `offline=true` makes Kubo answer a block it lacks at once ("block was not found locally (offline)", a
        BackendError); js-ipfs ignores the option and asks its peers until `deadline` (BackendUnavailable), so a
        block a connected peer holds is fetched back (and stored) rather than reported missing there."""
        try:
            wanted = Cid.parse(cid)
        except ValueError as exc:
            raise BackendError(f"not a CID: {cid[:80]!r}") from exc
        async with self._request("block/get", [("arg", cid), ("offline", "true")], deadline=deadline) as response:
            block = await _read_limited(response, "block/get", limit)
        if not wanted.verifies(block):
            raise ContentIntegrityError(
                f"IPFS block/get: block {wanted.text} does not match its hash",
                block=wanted.text,
                root=wanted.text,
                reason="hash mismatch",
            )
        return block

    async def block_rm(self, cid: str) -> bool:
        """Remove one block from the node's blockstore (`block/rm`, no `force`): True if removed, False if the node
        did not hold it. A pinned block (directly or through a pinned root) is refused by both Kubo and js-ipfs:
        BackendError with the node's "pinned: …" message. Errors come in-band, as `{"Hash","Error"}` lines."""
        async with self._request("block/rm", [("arg", cid)], deadline=self._timeout) as response:
            body = await _read_limited(response, "block/rm")
        for line in body.splitlines():
            if not line.strip():
                continue
            event = _json_object(line, "block/rm")
            error = event.get("Error")
            if isinstance(error, str) and error:
                if "not found" in error.lower():
                    return False
                raise BackendError(f"IPFS block/rm: {error[:_MAX_MESSAGE]}")
        return True

    async def pin_fetch(self, cid: str, *, deadline: float) -> None:
        """Pin `cid` recursively, fetching the blocks the node lacks from its peers (bitswap) for up to `deadline`
        seconds: the repair of a root whose blocks went missing."""
        await self._call("pin/add", [("arg", cid), ("recursive", "true")], deadline=deadline)

    async def aclose(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()
