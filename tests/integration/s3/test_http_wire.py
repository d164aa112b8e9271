"""What goes over the wire: status lines with reason phrases (aws cli 2.9's botocore needs `100 Continue`)."""

from __future__ import annotations

import socket

from tests.support import raw
from tests.support.s3server import ThreadedGateway


def test_100_continue_and_final_status_lines_have_reasons(gateway: ThreadedGateway, bucket: str) -> None:
    path = f"/{bucket}/wire"
    body = b"x" * 1000
    headers = raw.signed_headers(
        "PUT", gateway.endpoint + path, access_key=gateway.access_key, secret_key=gateway.secret_key, body=body
    )
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\nExpect: 100-continue\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head.encode())
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            final += sock.recv(4096)
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
