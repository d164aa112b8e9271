"""KuboClient.block_put / dag_size / compose against httpx.MockTransport: parameters sent, replies checked."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import httpx
import pytest

from appliance.errors import BackendError
from appliance.ipfsconn import unixfs
from appliance.ipfsconn.kubo import KuboClient
from appliance.model import DAG_PB, RAW, Cid

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> KuboClient:
    return KuboClient("http://127.0.0.1:5001", transport=httpx.MockTransport(handler), timeout=7.0)


def _payload(request: httpx.Request) -> bytes:
    """The single file part of a multipart body."""
    body = request.read()
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    head, _, rest = body.partition(b"\r\n\r\n")
    assert head.startswith(b"--" + boundary)
    return rest[: rest.rindex(b"\r\n--" + boundary + b"--")]


class FakeNode:
    """A block store answering block/put, block/get, files/stat and pin/add like js-ipfs (v0 keys for dag-pb)."""

    def __init__(self) -> None:
        self.blocks: dict[str, bytes] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        cmd = request.url.path.removeprefix("/api/v0/")
        params = dict(request.url.params)
        self.calls.append((cmd, params))
        assert "timeout" in params, cmd
        if cmd == "block/put":
            data = _payload(request)
            codec = RAW if params.get("format") == "raw" else DAG_PB
            cid = Cid.of_block(data, codec).text
            self.blocks[cid] = data
            return httpx.Response(200, json={"Key": cid, "Size": len(data)})
        if cmd == "block/get":
            return httpx.Response(200, content=self.blocks[params["arg"]])
        if cmd == "files/stat":
            cid = params["arg"].removeprefix("/ipfs/")
            block = self.blocks[cid]
            cumulative = len(block) if cid.startswith("bafk") else unixfs.dag_pb_tsize(block)
            return httpx.Response(200, json={"Type": "file", "CumulativeSize": cumulative})
        if cmd == "pin/add":
            return httpx.Response(200, json={"Pins": [params["arg"]]})
        return httpx.Response(404, json={"Message": "Not Found", "Code": 3, "Type": "error"})

    def leaf(self, data: bytes) -> str:
        cid = Cid.of_block(data, RAW).text
        self.blocks[cid] = data
        return cid

    def file(self, chunks: list[bytes]) -> str:
        blocks, root = unixfs.compose_blocks([unixfs.Child(self.leaf(c), len(c), len(c)) for c in chunks])
        for block in blocks:
            self.blocks[Cid.of_block(block).text] = block
        return root


async def test_block_put_parameters_for_both_servers() -> None:
    node = FakeNode()
    async with client(node) as kubo:
        dag = unixfs.compose_blocks([unixfs.Child(node.leaf(b"x"), 1, 1)])[0][0]
        assert await kubo.block_put(dag) == Cid.of_block(dag).text
        assert await kubo.block_put(b"raw bytes", codec="raw", pin=True) == Cid.of_block(b"raw bytes", 0x55).text
        with pytest.raises(ValueError):
            await kubo.block_put(b"{}", codec="dag-cbor")
    (_, dag_params), (_, raw_params) = node.calls
    # Kubo rejects `format` next to a non-raw cid-codec; js-ipfs ignores cid-codec and defaults format to dag-pb
    assert dag_params == {"cid-codec": "dag-pb", "mhtype": "sha2-256", "pin": "false", "timeout": "7s"}
    assert raw_params == {"cid-codec": "raw", "format": "raw", "mhtype": "sha2-256", "pin": "true", "timeout": "7s"}


def _cid_v0(block: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    num = int.from_bytes(b"\x12\x20" + hashlib.sha256(block).digest(), "big")
    out = ""
    while num:
        num, rem = divmod(num, 58)
        out = alphabet[rem] + out
    return out


async def test_block_put_accepts_a_v0_key_and_rejects_a_wrong_one() -> None:
    block = b"\x0a\x02\x08\x02"
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"Key": keys.pop(0), "Size": 4})

    async with client(handler) as kubo:
        keys.append(_cid_v0(block))  # js-ipfs answers a dag-pb put with the CIDv0 of the same multihash
        assert keys[0].startswith("Qm")
        assert await kubo.block_put(block) == Cid.of_block(block).text
        for wrong in (_cid_v0(b"other"), Cid.of_block(b"other").text, Cid.of_block(block, RAW).text):
            keys.append(wrong)
            with pytest.raises(BackendError, match="expected"):
                await kubo.block_put(block)


async def test_dag_size_reads_cumulative_size() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(200, json={"Hash": "x", "Size": 12, "CumulativeSize": "3145940", "Type": "file"})

    async with client(handler) as kubo:
        assert await kubo.dag_size("bafybeifpsaum43fbfkpka2d72xyxkpc6dknnludlqnrec6yj2sz2p4vckm") == 3145940
    assert seen == [{"arg": "/ipfs/bafybeifpsaum43fbfkpka2d72xyxkpc6dknnludlqnrec6yj2sz2p4vckm", "timeout": "7s"}]


async def test_compose_puts_leaves_first_and_pins_the_root() -> None:
    node = FakeNode()
    first = [os.urandom(64) for _ in range(3)]
    parts = [(node.file(first), 192), (node.leaf(b"z"), 1), (node.file([b"a" * 10, b"b" * 5]), 15)]
    async with client(node) as kubo:
        root = await kubo.compose(parts)
        calls = list(node.calls)
        assert await kubo.dag_size(root) == unixfs.dag_pb_tsize(node.blocks[root])
    put = [i for i, (c, _) in enumerate(calls) if c == "block/put"]
    assert len(put) == 2  # the raw part's wrapper, then the root
    assert all(c == "block/get" for c, _ in calls[: put[0]])
    assert calls[put[-1]][1]["pin"] == "false"
    assert calls[-1] == ("pin/add", {"arg": root, "recursive": "true", "timeout": "7s"})
    # the raw part is wrapped to the depth of the others; the flattened leaves give the bytes back in order
    assert _flatten(node.blocks, root) == b"".join(first) + b"z" + b"a" * 10 + b"b" * 5
    assert unixfs.file_node_size(node.blocks[root]) == 208


async def test_compose_many_parts_and_errors() -> None:
    node = FakeNode()
    leaves = [os.urandom(8) for _ in range(400)]
    async with client(node) as kubo:
        root = await kubo.compose([(node.leaf(p), 8) for p in leaves], pin=False)
        assert _flatten(node.blocks, root) == b"".join(leaves)
        assert all(c != "pin/add" for c, _ in node.calls)
        with pytest.raises(ValueError):
            await kubo.compose([])
        with pytest.raises(BackendError, match="holds 2 bytes"):
            await kubo.compose([(node.file([b"a", b"b"]), 3)])


def _flatten(blocks: dict[str, bytes], cid: str) -> bytes:
    if cid.startswith("bafk"):
        return blocks[cid]
    return b"".join(_flatten(blocks, Cid(h).text) for h, _ in unixfs.dag_pb_links(blocks[cid]))
