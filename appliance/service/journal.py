"""Audit records to the systemd journal with structured fields, over journald's native protocol.

systemd-python would do the same, but it builds a C extension against libsystemd-dev of the exact installed systemd
version (which the packaging notes show upgrades systemd itself); the native protocol is a stable, documented
datagram format (systemd.io/JOURNAL_NATIVE_PROTOCOL), so a few lines here avoid the dependency.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Mapping

from appliance.service.audit import AuditRecord

__all__ = ["JOURNAL_SOCKET", "JournalSink", "encode_fields", "under_systemd"]

JOURNAL_SOCKET = "/run/systemd/journal/socket"


def under_systemd(environ: Mapping[str, str] | None = None) -> bool:
    """Whether systemd started this process (it sets INVOCATION_ID, and JOURNAL_STREAM when stdout is the journal)."""
    env = os.environ if environ is None else environ
    return bool(env.get("INVOCATION_ID") or env.get("JOURNAL_STREAM"))


def encode_fields(fields: Mapping[str, str]) -> bytes:
    """One native-protocol datagram: `NAME=value\\n`, or for a value with a newline `NAME\\n<u64le length>value\\n`."""
    out = bytearray()
    for name, value in fields.items():
        data = value.encode("utf-8")
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalSink:
    """Sends each audit record as one journal entry (SYSLOG_IDENTIFIER=s3ipfs-audit, fields S3IPFS_*)."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self._path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def close(self) -> None:
        self._sock.close()

    def __call__(self, record: AuditRecord, digest: str) -> None:
        user = record.user or "-"
        result = f"{record.status}{' ' + record.code if record.code else ''}"
        fields = {
            "MESSAGE": f"audit {record.api} {record.action} {record.resource or '-'} by {user}: {result}",
            "PRIORITY": "5" if record.status >= 400 else "6",
            "SYSLOG_IDENTIFIER": "s3ipfs-audit",
            "S3IPFS_AUDIT_API": record.api,
            "S3IPFS_AUDIT_ACTION": record.action,
            "S3IPFS_AUDIT_USER": record.user,
            "S3IPFS_AUDIT_ACCESS_KEY": record.access_key,
            "S3IPFS_AUDIT_SOURCE_IP": record.source_ip,
            "S3IPFS_AUDIT_RESOURCE": record.resource,
            "S3IPFS_AUDIT_STATUS": str(record.status),
            "S3IPFS_AUDIT_CODE": record.code,
            "S3IPFS_AUDIT_BYTES": str(record.bytes),
            "S3IPFS_AUDIT_CID": record.cid,
            "S3IPFS_AUDIT_REQUEST_ID": record.request_id,
            "S3IPFS_AUDIT_HASH": digest,  # the line's chain hash: the journal witnesses the file's tail
        }
        try:
            self._sock.sendto(encode_fields(fields), self._path)
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            # Too big for a datagram (a very long key): journald then wants a memfd; the file keeps the record.
