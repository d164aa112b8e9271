"""User metadata (`x-amz-meta-*`) as S3 reads, counts, stores and returns it.

S3 reads header bytes as ISO-8859-1 and decodes RFC 2047 encoded-words (`=?UTF-8?B?…?=`, `?Q?`) before storing, so
a client that wants non-ASCII values sends them encoded. It returns a value unchanged when every byte is one its
"mail-safe" set holds, else RFC 2047-encoded: Q-encoding, or B-encoding when the value has a control, format or
unassigned character or U+FFFD. Browser POST fields are UTF-8 text and are stored without RFC 2047 decoding. The
2 KiB limit is the UTF-8 bytes of each stored name and value. (Behaviour as recorded against AWS by LocalStack's
snapshot tests `test_user_metadata_rfc2047_encoded` and `test_post_object_with_unicode_metadata`.)
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Iterable, Mapping
from email.errors import HeaderParseError
from email.header import decode_header

from appliance.errors import MetadataTooLarge

__all__ = [
    "MAX_USER_META_BYTES",
    "META_PREFIX",
    "decode_header_value",
    "form_user_meta",
    "user_meta",
    "wire_value",
]

META_PREFIX = "x-amz-meta-"
MAX_USER_META_BYTES = 2048
_OURS = META_PREFIX + "cid"  # derived from the content, never user metadata

# Bytes S3 sends as they are inside a Q-encoded word; space becomes "_".
_Q_SAFE = frozenset(b"!\"#$%&'()*+,-./0123456789:;<>@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^`abcdefghijklmnopqrstuvwxyz{|}~\t")
# A value made only of these is returned unencoded.
_AS_IS = _Q_SAFE | frozenset(b" _=?")


def _to_text(part: bytes | str, charset: str | None) -> str:
    if isinstance(part, str):
        return part
    # Unencoded runs come back as bytes without a charset; our input is ISO-8859-1 text, so they are too.
    return part.decode(charset or "latin-1", "replace")


def decode_header_value(raw: str) -> str:
    """A metadata header value as S3 stores it. `raw` is what request.py made of the wire bytes (UTF-8 with
    surrogateescape); S3 takes those bytes as ISO-8859-1, then decodes any RFC 2047 encoded-words. A value whose
    encoded-words do not decode (bad base64, unknown charset) is kept as sent."""
    text = raw.encode("utf-8", "surrogateescape").decode("latin-1")
    if "=?" not in text:
        return text
    try:
        return "".join(_to_text(part, charset) for part, charset in decode_header(text))
    except (HeaderParseError, LookupError, binascii.Error, ValueError):
        return text


def wire_value(value: str) -> str:
    """The stored value as S3 puts it in a response header (always ASCII)."""
    data = value.encode("utf-8", "surrogateescape")
    if all(byte in _AS_IS for byte in data):
        return value
    if "\ufffd" in value or any(unicodedata.category(ch).startswith("C") for ch in value):
        return "=?UTF-8?B?" + base64.b64encode(data).decode("ascii") + "?="
    encoded = "".join(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in data)
    return f"=?UTF-8?Q?{encoded}?="


def _collect(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    meta: list[tuple[str, str]] = []
    total = 0
    for name, value in pairs:
        total += len(name.encode("utf-8", "surrogateescape")) + len(value.encode("utf-8", "surrogateescape"))
        meta.append((name, value))
    if total > MAX_USER_META_BYTES:
        raise MetadataTooLarge(
            f"Your metadata headers exceed the maximum allowed metadata size ({total} > {MAX_USER_META_BYTES} bytes)."
        )
    return tuple(sorted(meta))


def user_meta(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The user metadata of a request's headers (lower-case names), decoded as S3 stores it; MetadataTooLarge
    beyond 2 KiB."""
    return _collect(
        (name[len(META_PREFIX) :], decode_header_value(value))
        for name, value in headers.items()
        if name.startswith(META_PREFIX) and name != _OURS
    )


def form_user_meta(fields: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The user metadata of a browser POST form (lower-cased field names): UTF-8 text, stored as sent."""
    return _collect(
        (name[len(META_PREFIX) :], value)
        for name, value in fields.items()
        if name.startswith(META_PREFIX) and name != _OURS
    )
