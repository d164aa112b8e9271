"""Which S3 requests the audit log records, and the record for one: every state-changing request (PUT, POST,
DELETE: objects, copies, multipart, tagging, policies, ACLs ...) and every denied one (403 auth/authorization
errors, 401, throttling)."""

from __future__ import annotations

from quart import Response

from appliance.api.s3.request import S3Request
from appliance.service.audit import Auditor

__all__ = ["audit_s3"]

_WRITES = frozenset({"PUT", "POST", "DELETE", "PATCH"})
_DENIED_CODES = frozenset({"SlowDown", "TooManyRequests"})


def audit_s3(
    auditor: Auditor,
    *,
    method: str,
    s3req: S3Request | None,
    action: str,
    access_key: str,
    user: str,
    source_ip: str,
    request_id: str,
    response: Response,
    code: str,
) -> None:
    """One record when the request changed state or was denied (a no-op otherwise)."""
    status = response.status_code
    denied = status in (401, 403) or code in _DENIED_CODES or (status == 503 and code == "SlowDown")
    if not auditor.enabled or (method not in _WRITES and not denied):
        return
    resource = ""
    if s3req is not None and s3req.bucket:
        resource = s3req.bucket + (f"/{s3req.key}" if s3req.key is not None else "")
    received = s3req.content_length if s3req is not None and s3req.content_length else 0
    sent = int(response.headers.get("content-length") or 0)
    auditor.record(
        api="s3",
        action=action or method,
        status=status,
        request_id=request_id,
        user=user,
        access_key=access_key,
        source_ip=source_ip,
        resource=resource[:1100],
        code=code,
        bytes=received if method in _WRITES else sent,
        cid=response.headers.get("x-ipfs-cid", ""),
    )
