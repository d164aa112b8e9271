"""Reason phrases on the status lines hypercorn writes through h11.

hypercorn sends status lines with an empty reason phrase (`HTTP/1.1 100 `). botocore before 1.29 — the one in aws cli
2.9, which Debian bookworm ships — only recognises `HTTP/1.1 100 Continue` with a reason, so its `Expect:
100-continue` uploads fail with "Connection was closed before we received a valid response". Giving every response
the standard phrase fixes that and harms nobody.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import h11

__all__ = ["install_reason_phrases"]


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def install_reason_phrases() -> None:
    """Make hypercorn's h11 responses carry standard reason phrases (idempotent)."""
    if getattr(h11, "_s3ipfs_reasons", False):
        return
    informational, final = h11.InformationalResponse, h11.Response

    def informational_response(**kwargs: Any) -> h11.InformationalResponse:
        kwargs.setdefault("reason", _phrase(int(kwargs["status_code"])))
        return informational(**kwargs)

    def response(**kwargs: Any) -> h11.Response:
        kwargs.setdefault("reason", _phrase(int(kwargs["status_code"])))
        return final(**kwargs)

    # Only the names hypercorn calls through `h11.` are replaced; h11's own code keeps its classes.
    import hypercorn.protocol.h11 as hypercorn_h11

    shim = type(h11)("h11_with_reasons")
    shim.__dict__.update(vars(h11))
    shim.InformationalResponse = informational_response  # type: ignore[attr-defined]
    shim.Response = response  # type: ignore[attr-defined]
    hypercorn_h11.h11 = shim  # type: ignore[attr-defined]
    h11._s3ipfs_reasons = True  # type: ignore[attr-defined]
