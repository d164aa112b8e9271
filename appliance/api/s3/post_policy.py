"""Browser POST uploads: the policy document, its SigV4 signature and its conditions; pure, no I/O.

The signature is HMAC-SHA256(signing key, the base64 policy as sent), or for SigV2 forms (AWSAccessKeyId +
signature fields) base64(HMAC-SHA1(secret, the base64 policy)). Every condition must hold against the
form fields (names compared case-insensitively; `bucket` against the URL's bucket), and every form field except
x-amz-signature, file, policy, AWSAccessKeyId, signature and x-ignore-* must be named by a condition, as in S3.
content-length-range is enforced while the file streams (`CheckedFileBody`), so an upload out of range is never stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.api.s3.sigv4 import ALGORITHM, derive_signing_key, sign_string
from appliance.errors import (
    AccessDenied,
    EntityTooLarge,
    EntityTooSmall,
    IncorrectNumberOfFilesInPostRequest,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidPolicyDocument,
    MalformedPOSTRequest,
    MaxPostPreDataLengthExceeded,
    SignatureDoesNotMatch,
)

__all__ = [
    "CheckedFileBody",
    "Condition",
    "IncorrectNumberOfFilesInPostRequest",
    "InvalidPolicyDocument",
    "LengthRange",
    "MalformedPOSTRequest",
    "MaxPostPreDataLengthExceeded",
    "Policy",
    "check_conditions",
    "check_expiration",
    "parse_policy",
    "verify_signature",
]


# Fields a policy need not mention.
_EXEMPT = frozenset({"x-amz-signature", "file", "policy", "awsaccesskeyid", "signature"})
_MAX_POLICY_BYTES = 64 * 1024
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_DATE = re.compile(r"[0-9]{8}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Condition:
    """One policy condition: eq / starts-with on a field (lower-cased, no `$`), or content-length-range."""

    op: str
    field: str = ""
    value: str = ""
    low: int = 0
    high: int = 0

    def describe(self) -> str:
        if self.op == "content-length-range":
            return f'["content-length-range", {self.low}, {self.high}]'
        return json.dumps([self.op, "$" + self.field, self.value])


@dataclass(frozen=True, slots=True)
class Policy:
    expiration: datetime
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class LengthRange:
    """The object size the policy allows, inclusive."""

    low: int
    high: int


def _denied(detail: str) -> AccessDenied:
    return AccessDenied(f"Invalid according to Policy: {detail}")


def _invalid(detail: str) -> InvalidPolicyDocument:
    return InvalidPolicyDocument(f"Invalid Policy: {detail}")


def _field_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.startswith("$") or len(raw) < 2:
        raise _invalid(f"Invalid field name {str(raw)[:100]!r} in condition.")
    return raw[1:].lower()


def _text_value(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _invalid("Condition values must be strings.")
    return str(raw)


def _length(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _invalid("Invalid content-length-range.")
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or raw < 0:
        raise _invalid("Invalid content-length-range.")
    return raw


def _condition(raw: Any) -> Condition:
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise _invalid("An exact-match condition must have exactly one field.")
        ((name, value),) = raw.items()
        if not isinstance(name, str) or not name:
            raise _invalid("Invalid condition.")
        return Condition("eq", name.removeprefix("$").lower(), _text_value(value))
    if isinstance(raw, list) and raw and isinstance(raw[0], str):
        op = raw[0].lower()
        if op == "content-length-range":
            if len(raw) != 3:
                raise _invalid("content-length-range needs a minimum and a maximum.")
            low, high = _length(raw[1]), _length(raw[2])
            if low > high:
                raise _invalid("content-length-range minimum exceeds its maximum.")
            return Condition(op, low=low, high=high)
        if op in ("eq", "starts-with"):
            if len(raw) != 3:
                raise _invalid(f"{op} needs a field and a value.")
            return Condition(op, _field_name(raw[1]), _text_value(raw[2]))
        raise _invalid(f"Unknown condition operation {raw[0][:50]!r}.")
    raise _invalid("Invalid condition.")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _invalid("Invalid Policy expiration.")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid("Invalid Policy expiration.") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def parse_policy(encoded: str) -> Policy:
    """The policy document from its base64 form field; InvalidPolicyDocument if it is not one."""
    if len(encoded) > _MAX_POLICY_BYTES * 4 // 3 + 4:
        raise _invalid("The policy is too large.")
    try:
        document = json.loads(base64.b64decode("".join(encoded.split()), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError):
        raise _invalid("Policy could not be decoded as base64-encoded JSON.") from None
    if not isinstance(document, dict):
        raise _invalid("The policy must be a JSON object.")
    if "expiration" not in document:
        raise _invalid("Policy missing expiration.")
    conditions = document.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid("Policy missing conditions.")
    return Policy(_parse_time(document["expiration"]), tuple(_condition(c) for c in conditions))


def check_expiration(policy: Policy, now: datetime) -> None:
    if now >= policy.expiration:
        raise _denied("Policy expired.")


def verify_signature(
    fields: Mapping[str, str], lookup_secret: Callable[[str], str | None], *, region: str | None = None
) -> str:
    """Check the form's signature over its policy (SigV4, or SigV2's AWSAccessKeyId + signature fields); the
    access key that signed it. `fields` maps lower-cased field names to values; `region` is the endpoint's (None:
    any region in the credential)."""
    policy = fields.get("policy")
    if policy is None:
        raise AccessDenied("Anonymous POST uploads are not allowed: the form must carry a signed policy.")
    if "x-amz-algorithm" not in fields and ("awsaccesskeyid" in fields or "signature" in fields):
        return _verify_v2(fields, policy, lookup_secret)
    algorithm = fields.get("x-amz-algorithm")
    if algorithm is None:
        raise _missing_field("x-amz-algorithm")
    if algorithm != ALGORITHM:
        raise InvalidArgument(f"The x-amz-algorithm must be {ALGORITHM}.")
    for name in ("x-amz-credential", "x-amz-date", "x-amz-signature"):
        if name not in fields:
            raise _missing_field(name)
    credential = fields["x-amz-credential"]
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise InvalidArgument(
            'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, date, cred_region, service, terminal = parts
    if region is not None and cred_region != region:
        raise InvalidArgument(f"the region '{cred_region[:64]}' is wrong; expecting '{region}'")
    if service != "s3":
        raise InvalidArgument(f'incorrect service "{service[:32]}". This endpoint belongs to "s3".')
    if terminal != "aws4_request":
        raise InvalidArgument(f'incorrect terminal "{terminal[:32]}". This endpoint uses "aws4_request".')
    amz_date = fields["x-amz-date"]
    if not _DATE.fullmatch(date) or not _AMZ_DATE.fullmatch(amz_date) or not amz_date.startswith(date):
        raise InvalidArgument("Invalid x-amz-date, or its date differs from the x-amz-credential's.")
    secret = lookup_secret(access_key)
    if secret is None:
        raise InvalidAccessKeyId()
    provided = fields["x-amz-signature"]
    expected = sign_string(derive_signing_key(secret, date, cred_region), policy)
    if not _SIGNATURE.fullmatch(provided) or not hmac.compare_digest(expected, provided):
        raise SignatureDoesNotMatch()
    return access_key


def _missing_field(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    )


def _verify_v2(fields: Mapping[str, str], policy: str, lookup_secret: Callable[[str], str | None]) -> str:
    """SigV2 browser POST: signature = base64(HMAC-SHA1(secret, the base64 policy as sent))."""
    for name in ("awsaccesskeyid", "signature"):
        if name not in fields:
            raise _missing_field("AWSAccessKeyId" if name == "awsaccesskeyid" else name)
    access_key = fields["awsaccesskeyid"]
    secret = lookup_secret(access_key)
    if secret is None:
        raise InvalidAccessKeyId()
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), policy.encode("utf-8"), hashlib.sha1).digest())
    if not hmac.compare_digest(expected, fields["signature"].strip().encode("utf-8", "surrogateescape")):
        raise SignatureDoesNotMatch()
    return access_key


def _matches(cond: Condition, value: str) -> bool:
    if cond.op == "eq":
        return value == cond.value
    if cond.field == "content-type" and "," in value:
        # A comma-separated list of content types: each must match.
        return all(item.strip().startswith(cond.value) for item in value.split(","))
    return value.startswith(cond.value)


def check_conditions(
    policy: Policy,
    fields: Mapping[str, str],
    *,
    bucket: str,
    alternatives: Mapping[str, str] | None = None,
) -> LengthRange | None:
    """AccessDenied unless every condition holds and every form field is covered by one; the allowed size
    range (None: any). `fields` maps lower-cased names to values; `alternatives` gives a second value a
    field may match with (the key with ${filename} replaced)."""
    values = dict(fields)
    values["bucket"] = bucket
    extra = alternatives or {}
    covered: set[str] = set()
    low, high, ranged = 0, 0, False
    for cond in policy.conditions:
        if cond.op == "content-length-range":
            low, high = (max(low, cond.low), min(high, cond.high)) if ranged else (cond.low, cond.high)
            ranged = True
            continue
        covered.add(cond.field)
        candidates = [values.get(cond.field, "")]
        if cond.field in extra:
            candidates.append(extra[cond.field])
        if not any(_matches(cond, value) for value in candidates):
            raise _denied(f"Policy Condition failed: {cond.describe()}")
    uncovered = sorted(
        name for name in fields if name not in _EXEMPT and not name.startswith("x-ignore-") and name not in covered
    )
    if uncovered:
        raise _denied("Extra input fields: " + ", ".join(n[:100] for n in uncovered[:10]))
    if ranged and low > high:
        raise _denied("Policy Condition failed: content-length-range")
    return LengthRange(low, high) if ranged else None


class CheckedFileBody:
    """The file field as an ObjectBody: MD5 and size as it streams; an object too large (for the policy or the
    gateway) or too small raises before the stream ends, so nothing is stored."""

    def __init__(self, source: AsyncIterator[bytes], *, allowed: LengthRange | None, max_size: int) -> None:
        self._source = source
        self._low = allowed.low if allowed else 0
        self._high = min(allowed.high, max_size) if allowed else max_size
        self._policy_high = allowed is not None and allowed.high <= max_size
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.md5_hex = ""
        self.checksums: dict[str, str] = {}

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        async for piece in self._source:
            self.size += len(piece)
            if self.size > self._high:
                if self._policy_high:
                    raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size (POST policy).")
                raise EntityTooLarge(f"Your proposed upload exceeds the maximum allowed size of {self._high} bytes.")
            self._md5.update(piece)
            yield piece
        if self.size < self._low:
            raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed size (POST policy).")
        self.md5_hex = self._md5.hexdigest()
