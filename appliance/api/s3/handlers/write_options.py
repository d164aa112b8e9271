"""Write options S3 accepts on PutObject, CopyObject, CreateMultipartUpload and POST that this gateway either keeps
in a simpler form (storage class) or cannot honour (KMS and customer-key encryption, object lock). A request that
asks for something we cannot do is refused with S3's own answer, never silently stored without it: a client that
believes its object is locked or encrypted with its own key must not be misled."""

from __future__ import annotations

from collections.abc import Mapping

from appliance.errors import InvalidArgument, InvalidRequest, InvalidStorageClass, NotImplementedAction

__all__ = ["STORAGE_CLASSES", "check_read_options", "check_storage_class", "check_write_options"]

# The storage classes S3 accepts on a write. All are kept as STANDARD (IPFS has one tier); any other name is refused.
STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "OUTPOSTS",
        "GLACIER_IR",
        "SNOW",
        "EXPRESS_ONEZONE",
    }
)
_SSE = "x-amz-server-side-encryption"
_SSE_C = (
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
)
_KMS = frozenset({"aws:kms", "aws:kms:dsse"})
_LOCK = ("x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold")


def check_storage_class(headers: Mapping[str, str]) -> None:
    """InvalidStorageClass (400) for an x-amz-storage-class S3 does not have (an accepted one is kept as STANDARD)."""
    value = headers.get("x-amz-storage-class")
    if value is not None and value not in STORAGE_CLASSES:
        raise InvalidStorageClass()


def check_write_options(headers: Mapping[str, str]) -> None:
    """The storage class, server-side encryption and object lock of a write, as S3 answers a bucket without
    object lock and without KMS: AES256 (SSE-S3) is accepted, aws:kms and customer keys are NotImplemented, another
    encryption name is InvalidArgument, object lock headers are InvalidRequest; a website redirect location must start
    with '/', 'http://' or 'https://' (at most 2 KiB), else InvalidArgument."""
    check_storage_class(headers)
    sse = headers.get(_SSE)
    if sse is not None and sse != "AES256":
        if sse in _KMS:
            raise NotImplementedAction("Server-side encryption with AWS KMS keys is not implemented.")
        raise InvalidArgument("The encryption method specified is not supported")
    if any(name in headers for name in _SSE_C) or any(
        name.startswith("x-amz-copy-source-server-side-encryption-customer-") for name in headers
    ):
        raise NotImplementedAction("Server-side encryption with customer-provided keys is not implemented.")
    if any(name in headers for name in _LOCK):
        raise InvalidRequest("Bucket is missing Object Lock Configuration")
    redirect = headers.get("x-amz-website-redirect-location")
    if redirect is not None and (
        not redirect.startswith(("/", "http://", "https://")) or len(redirect.encode("utf-8", "replace")) > 2048
    ):
        raise InvalidArgument("The website redirect location must have a prefix of 'http://' or 'https://' or '/'.")


def check_read_options(headers: Mapping[str, str]) -> None:
    """GET/HEAD with customer-key (SSE-C) headers: no object here is stored under a customer key, so S3's answer
    for such an object applies (InvalidRequest) rather than serving it as if the key had been checked."""
    if any(name in headers for name in _SSE_C):
        raise InvalidRequest("The encryption parameters are not applicable to this object.")
