"""Raw S3 requests for tests: signed with botocore's SigV4 signer (an independent implementation) and sent with httpx,
so a test controls every header and byte the gateway sees."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

import httpx
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["chunk_signed_body", "send", "signed_headers"]


def signed_headers(
    method: str,
    url: str,
    *,
    access_key: str,
    secret_key: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    region: str = "us-east-1",
) -> dict[str, str]:
    """The headers (incl. Authorization) botocore would send for this request."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = _FixedPayloadAuth(Credentials(access_key, secret_key), "s3", region)
    signer.payload_hash = payload_hash
    signer.add_auth(request)
    return dict(request.headers.items())


class _FixedPayloadAuth(S3SigV4Auth):
    """botocore's S3 signer, with the x-amz-content-sha256 value chosen by the test when given."""

    payload_hash: str | None = None

    def payload(self, request: AWSRequest) -> str:
        return self.payload_hash if self.payload_hash is not None else str(super().payload(request))


def send(
    endpoint: str,
    method: str,
    path: str,
    *,
    access_key: str,
    secret_key: str,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    host: str | None = None,
    sign: bool = True,
    timeout: float = 30.0,
) -> httpx.Response:
    """Send one request to the gateway. `path` is already URL-encoded; `host` overrides the Host header (virtual
    hosting) while the connection still goes to `endpoint`."""
    qs = urlencode(list(query), quote_via=quote, safe="~")
    target = path + (f"?{qs}" if qs else "")
    base = endpoint if host is None else f"http://{host}"
    all_headers = dict(headers or {})
    if sign:
        all_headers = signed_headers(
            method,
            base + target,
            access_key=access_key,
            secret_key=secret_key,
            headers=all_headers,
            body=body,
            payload_hash=payload_hash,
        )
    if host is not None:
        all_headers["Host"] = host
    with httpx.Client(timeout=timeout) as client:
        request = client.build_request(method, endpoint + target, headers=all_headers, content=body)
        # httpx would re-quote the path; send exactly what the test built.
        request.url = request.url.copy_with(raw_path=target.encode("ascii"))
        return client.send(request)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def chunk_signed_body(
    data: bytes,
    *,
    secret_key: str,
    amz_date: str,
    seed_signature: str,
    region: str = "us-east-1",
    chunk_size: int = 65536,
    tamper_chunk: int | None = None,
    trailer: tuple[str, str] | None = None,
    tamper_trailer: bool = False,
) -> bytes:
    """An aws-chunked body with a chunk signature per chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), written from the
    S3 documentation independently of the gateway's code. `tamper_chunk` flips a data byte after signing."""
    day = amz_date[:8]
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    scope = f"{day}/{region}/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    previous = seed_signature
    out = bytearray()
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for index, piece in enumerate(pieces):
        string = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{empty}\n{hashlib.sha256(piece).hexdigest()}"
        )
        signature = hmac.new(key, string.encode(), hashlib.sha256).hexdigest()
        sent = bytes([piece[0] ^ 1]) + piece[1:] if tamper_chunk == index and piece else piece
        out += f"{len(sent):x};chunk-signature={signature}\r\n".encode() + sent
        if piece or trailer is None:
            out += b"\r\n"
        previous = signature
    if trailer is not None:
        line = f"{trailer[0]}:{trailer[1]}\n"
        digest = hashlib.sha256(line.encode()).hexdigest()
        string = f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous}\n{digest}"
        signature = hmac.new(key, string.encode(), hashlib.sha256).hexdigest()
        if tamper_trailer:
            signature = signature[::-1]
        out += f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()
    return bytes(out)


def now_amz_date() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
