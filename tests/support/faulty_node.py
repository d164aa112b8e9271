"""A fault-injecting proxy in front of a real IPFS node's RPC API, for the tests of verified reads.

    with faulty_proxy(node.api_url) as proxy:      # proxy.api_url speaks the node's API
        proxy.faults.corrupt_blocks.add(cid)       # block/get of cid (and cat over it) serves a flipped byte
        proxy.faults.cat_cut = 10                  # every cat stream ends 10 bytes early, cleanly
        proxy.faults.cat_extra = b"junk"           # every cat stream runs long
        proxy.faults.block_cut = 1                 # every block/get answers a block 1 byte short

Everything else passes through unchanged. Corruption applies where the node would serve the block's bytes: its
block/get, and the bytes of a cat over it (found by streaming the file and flipping the byte at the block's place,
which the proxy learns from the DAG). Bodies are buffered: tests use objects of a few MiB.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from appliance.ipfsconn import unixfs
from appliance.model import Cid

__all__ = ["Faults", "FaultyProxy", "faulty_proxy"]


@dataclass
class Faults:
    corrupt_blocks: set[str] = field(default_factory=set)  # base32 CIDs whose bytes are served with a flipped byte
    cat_cut: int = 0
    cat_extra: bytes = b""
    block_cut: int = 0
    calls: list[str] = field(default_factory=list)  # the RPC commands seen, in order

    def clear(self) -> None:
        self.corrupt_blocks.clear()
        self.cat_cut = self.block_cut = 0
        self.cat_extra = b""


@dataclass
class FaultyProxy:
    api_url: str
    faults: Faults


def _flip(data: bytes) -> bytes:
    if not data:
        return data
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    faults: Faults

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else self._read_chunked()
        cmd = urlsplit(self.path).path.removeprefix("/api/v0/")
        self.faults.calls.append(cmd)
        status, headers, reply = self._forward(self.path, body)
        if status == 200:
            reply = self._inject(cmd, dict(parse_qsl(urlsplit(self.path).query)), reply)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "trailer"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def _read_chunked(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return b""
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    def _forward(self, path: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "transfer-encoding")}
            headers["Content-Length"] = str(len(body))
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _inject(self, cmd: str, params: dict[str, str], reply: bytes) -> bytes:
        faults = self.faults
        if cmd == "block/get":
            cid = Cid.normalise(params.get("arg", ""))
            if cid in faults.corrupt_blocks:
                reply = _flip(reply)
            if faults.block_cut:
                reply = reply[: max(len(reply) - faults.block_cut, 0)]
        elif cmd == "cat":
            if faults.corrupt_blocks:
                reply = self._corrupt_cat(params, reply)
            if faults.cat_cut:
                reply = reply[: max(len(reply) - faults.cat_cut, 0)]
            reply += faults.cat_extra
        return reply

    def _corrupt_cat(self, params: dict[str, str], reply: bytes) -> bytes:
        """Flip the middle byte of every corrupted raw leaf inside the cat's range."""
        offset = int(params.get("offset", "0"))
        out = bytearray(reply)
        for base, size, cid in self._leaves(Cid.normalise(params.get("arg", "")), 0):
            if cid in self.faults.corrupt_blocks:
                at = base + size // 2 - offset
                if 0 <= at < len(out):
                    out[at] ^= 0x01
        return bytes(out)

    def _leaves(self, cid: str, base: int) -> Iterator[tuple[int, int, str]]:
        parsed = Cid.parse(cid)
        _, _, block = self._forward(f"/api/v0/block/get?arg={cid}&timeout=10s", b"")
        if parsed.is_raw:
            yield base, len(block), cid
            return
        node = unixfs.decode_file_node(block)
        position = base + len(node.data)
        for link, size in zip(node.links, node.blocksizes, strict=True):
            yield from self._leaves(link.text, position)
            position += size


@contextlib.contextmanager
def faulty_proxy(api_url: str) -> Iterator[FaultyProxy]:
    """A proxy on a free loopback port in front of the node at `api_url`, for the duration of the block."""
    target = urlsplit(api_url)
    faults = Faults()
    handler = type("Handler", (_Handler,), {"upstream": (target.hostname, target.port), "faults": faults})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="faulty-proxy", daemon=True)
    thread.start()
    try:
        yield FaultyProxy(f"http://127.0.0.1:{server.server_address[1]}", faults)
    finally:
        server.shutdown()
        server.server_close()
