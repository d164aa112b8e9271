"""The domain error tree. No HTTP here: api/s3/error_map.py maps each class to an S3 code and status.

S3IpfsError                      exit 1
├── ConfigError                  exit 2   config file or value invalid
├── RequestError                          the client asked for something wrong (4xx in S3 terms)
│   ├── NoSuchBucket, NoSuchKey, NoSuchUpload
│   ├── BucketAlreadyOwnedByYou, BucketAlreadyExists, BucketNotEmpty, InvalidBucketOwnerAWSAccountID
│   ├── InvalidBucketName, KeyTooLongError, InvalidArgument, InvalidRequest, InvalidStorageClass
│   ├── InvalidRange, PreconditionFailed, NotModified, ConditionalRequestConflict, InvalidPartNumber
│   ├── BadDigest, InvalidDigest, IncompleteBody, EntityTooLarge, MissingContentLength
│   ├── MalformedXML, MethodNotAllowed, NotImplementedAction
│   ├── NoSuchCORSConfiguration, AccessForbidden, BadRequest (CORS); MalformedPOSTRequest,
│   │   MaxPostPreDataLengthExceeded, IncorrectNumberOfFilesInPostRequest, InvalidPolicyDocument (POST)
│   ├── EntityTooSmall, InvalidPart, InvalidPartOrder, InvalidTag, NoSuchTagSet, NoSuchVersion, DeleteMarkerError
│   ├── MetadataTooLarge, RequestTimeout, InvalidLocationConstraint, InvalidURI, RequestHeaderSectionTooLarge
│   ├── MalformedPolicy, NoSuchBucketPolicy, NoSuchPublicAccessBlockConfiguration, MalformedACLError,
│   │   AccessControlListNotSupported, InvalidBucketAclWithObjectOwnership, OwnershipControlsNotFoundError
│   ├── NoSuchEntity, EntityAlreadyExists, DeleteConflict, IamLimitExceeded (IAM, admin API only)
│   ├── SlowDown (a client over its request rate; carries retry_after)
│   └── AuthError
│       ├── AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch
│       ├── AuthorizationHeaderMalformed, AuthorizationQueryParametersError
│       ├── RequestTimeTooSkewed, ExpiredPresignedRequest
│       └── XAmzContentSHA256Mismatch
├── BackendUnavailable           exit 3   Kubo (or another daemon) cannot be reached: retry later
└── BackendError                 exit 4   a daemon answered with an error we cannot map
    └── ContentIntegrityError             the node's bytes are not what the CID names (corrupt, short, long)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessControlListNotSupported",
    "InvalidBucketAclWithObjectOwnership",
    "MalformedACLError",
    "MalformedPolicy",
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "OwnershipControlsNotFoundError",
    "DeleteConflict",
    "EntityAlreadyExists",
    "IamLimitExceeded",
    "NoSuchEntity",
    "ContentIntegrityError",
    "InvalidPolicyDocument",
    "IncorrectNumberOfFilesInPostRequest",
    "MaxPostPreDataLengthExceeded",
    "MalformedPOSTRequest",
    "BadRequest",
    "AccessForbidden",
    "NoSuchCORSConfiguration",
    "AccessDenied",
    "AuthError",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "BackendError",
    "BackendUnavailable",
    "BadDigest",
    "BucketAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "InvalidBucketOwnerAWSAccountID",
    "BucketNotEmpty",
    "ConditionalRequestConflict",
    "ConfigError",
    "EntityTooLarge",
    "EntityTooSmall",
    "ExpiredPresignedRequest",
    "IncompleteBody",
    "InvalidAccessKeyId",
    "InvalidArgument",
    "InvalidBucketName",
    "InvalidDigest",
    "InvalidLocationConstraint",
    "InvalidPart",
    "InvalidPartNumber",
    "InvalidPartOrder",
    "InvalidRange",
    "InvalidTag",
    "InvalidRequest",
    "InvalidStorageClass",
    "InvalidURI",
    "KeyTooLongError",
    "MalformedXML",
    "MetadataTooLarge",
    "MethodNotAllowed",
    "MissingContentLength",
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchTagSet",
    "NoSuchVersion",
    "DeleteMarkerError",
    "NoSuchUpload",
    "NotImplementedAction",
    "NotModified",
    "PreconditionFailed",
    "RequestError",
    "RequestHeaderSectionTooLarge",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "S3IpfsError",
    "SignatureDoesNotMatch",
    "SlowDown",
    "XAmzContentSHA256Mismatch",
]


class S3IpfsError(Exception):
    """Base of every error the appliance raises on purpose."""

    exit_code: ClassVar[int] = 1
    default_message: ClassVar[str] = "An internal error occurred."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ConfigError(S3IpfsError):
    """A config key is missing or invalid; the message names the key and the fix."""

    exit_code = 2
    default_message = "The configuration is invalid."


class BackendUnavailable(S3IpfsError):
    """An external daemon (Kubo, cluster) is unreachable or timed out; the client should retry."""

    exit_code = 3
    default_message = "The storage backend is unavailable. Please retry."

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendError(S3IpfsError):
    """An external daemon answered with an error that has no better meaning."""

    exit_code = 4
    default_message = "The storage backend returned an error."


class ContentIntegrityError(BackendError):
    """A node served bytes that do not match the CID (a block whose hash differs, a UnixFS node that does not add
    up, a stream shorter or longer than the file): nothing of it is passed on. `block` names the offending block
    (or the root when the whole stream is at fault); `root` is the object's CID."""

    default_message = "The stored content failed verification."

    def __init__(self, message: str, *, block: str, root: str, reason: str) -> None:
        super().__init__(message)
        self.block = block
        self.root = root
        self.reason = reason


class RequestError(S3IpfsError):
    """The request is wrong; the client can fix it."""

    default_message = "The request is invalid."


class NoSuchBucket(RequestError):
    default_message = "The specified bucket does not exist."


class NoSuchKey(RequestError):
    default_message = "The specified key does not exist."


class NoSuchUpload(RequestError):
    default_message = "The specified multipart upload does not exist."


class BucketAlreadyOwnedByYou(RequestError):
    default_message = "Your previous request to create the named bucket succeeded and you already own it."


class BucketAlreadyExists(RequestError):
    """CreateBucket of a name another owner holds (S3: BucketAlreadyExists, 409)."""

    default_message = (
        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. "
        "Please select a different name and try again."
    )


class InvalidBucketOwnerAWSAccountID(RequestError):
    """x-amz-expected-bucket-owner is not an account id (S3: InvalidBucketOwnerAWSAccountID, 400)."""

    default_message = "The value of the expected bucket owner parameter must be an AWS Account ID... "


class BucketNotEmpty(RequestError):
    default_message = "The bucket you tried to delete is not empty."


class InvalidBucketName(RequestError):
    default_message = "The specified bucket is not valid."


class KeyTooLongError(RequestError):
    default_message = "Your key is too long."


class InvalidArgument(RequestError):
    default_message = "Invalid Argument."


class InvalidRequest(RequestError):
    default_message = "Invalid Request."


class InvalidStorageClass(RequestError):
    default_message = "The storage class you specified is not valid."


class InvalidRange(RequestError):
    default_message = "The requested range is not satisfiable."

    def __init__(self, message: str | None = None, object_size: int = 0) -> None:
        super().__init__(message)
        self.object_size = object_size


class PreconditionFailed(RequestError):
    default_message = "At least one of the pre-conditions you specified did not hold."


class ConditionalRequestConflict(RequestError):
    """A conditional write held when the request arrived but a concurrent write to the key won before the commit."""

    default_message = "A conflicting conditional operation is currently in progress against this resource. Try again."


class InvalidPartNumber(RequestError):
    """GetObject/HeadObject partNumber beyond the object's parts (S3: InvalidPartNumber, 416)."""

    default_message = "The requested partnumber is not satisfiable"


class NotModified(RequestError):
    default_message = "Not Modified."

    def __init__(self, message: str | None = None, etag: str = "", last_modified: float = 0.0) -> None:
        super().__init__(message)
        self.etag = etag
        self.last_modified = last_modified


class BadDigest(RequestError):
    default_message = "The Content-MD5 or checksum you specified did not match what we received."


class InvalidDigest(RequestError):
    default_message = "The Content-MD5 or checksum you specified is not valid."


class IncompleteBody(RequestError):
    default_message = "You did not provide the number of bytes specified by the Content-Length HTTP header."


class EntityTooLarge(RequestError):
    default_message = "Your proposed upload exceeds the maximum allowed size."


class MissingContentLength(RequestError):
    default_message = "You must provide the Content-Length HTTP header."


class MalformedXML(RequestError):
    default_message = "The XML you provided was not well-formed or did not validate against our published schema."


class MethodNotAllowed(RequestError):
    default_message = "The specified method is not allowed against this resource."


class NotImplementedAction(RequestError):
    default_message = "A header or query you provided implies functionality that is not implemented."


class SlowDown(RequestError):
    """The client (its access key, or its address when anonymous) is over its request rate: retry later."""

    default_message = "Please reduce your request rate."

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(RequestError):
    """Authentication failed; the message never contains secret material."""

    default_message = "Access Denied."


class AccessDenied(AuthError):
    default_message = "Access Denied."


class ExpiredPresignedRequest(AuthError):
    default_message = "Request has expired."


class InvalidAccessKeyId(AuthError):
    default_message = "The AWS Access Key Id you provided does not exist in our records."


class SignatureDoesNotMatch(AuthError):
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


class AuthorizationHeaderMalformed(AuthError):
    default_message = "The authorization header is malformed."


class AuthorizationQueryParametersError(AuthError):
    default_message = (
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
    )


class RequestTimeTooSkewed(AuthError):
    default_message = "The difference between the request time and the current time is too large."


class XAmzContentSHA256Mismatch(AuthError):
    default_message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class RequestHeaderSectionTooLarge(RequestError):
    default_message = "Your request header section exceeds the maximum allowed size."


class InvalidURI(RequestError):
    default_message = "Couldn't parse the specified URI."


class MetadataTooLarge(RequestError):
    default_message = "Your metadata headers exceed the maximum allowed metadata size."


class RequestTimeout(RequestError):
    default_message = "Your socket connection to the server was not read from or written to within the timeout period."


class InvalidLocationConstraint(RequestError):
    default_message = "The specified location-constraint is not valid."


class EntityTooSmall(RequestError):
    default_message = "Your proposed upload is smaller than the minimum allowed object size."


class InvalidPart(RequestError):
    default_message = (
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the "
        "specified entity tag may not match the part's entity tag."
    )


class InvalidPartOrder(RequestError):
    default_message = "The list of parts was not in ascending order. Parts must be ordered by part number."


class InvalidTag(RequestError):
    default_message = "The tag provided was not a valid tag."


class NoSuchTagSet(RequestError):
    default_message = "The TagSet does not exist."


class NoSuchVersion(RequestError):
    default_message = "The specified version does not exist."


class DeleteMarkerError(RequestError):
    """GET/HEAD met a delete marker: NoSuchKey (no version asked) or MethodNotAllowed (the marker's version asked).
    The response carries x-amz-delete-marker: true and the marker's version id."""

    default_message = "The specified key does not exist."

    def __init__(self, message: str | None = None, *, version_id: str = "", requested: bool = False) -> None:
        super().__init__(message)
        self.version_id = version_id
        self.requested = requested


class NoSuchCORSConfiguration(RequestError):
    """GetBucketCors on a bucket without a configuration (S3: NoSuchCORSConfiguration, 404)."""

    default_message = "The CORS configuration does not exist"


class AccessForbidden(RequestError):
    """A preflight no rule allows, or one to a bucket without CORS (S3: AccessForbidden, 403)."""

    default_message = (
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request "
        "method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the "
        "resource's CORS spec."
    )


class BadRequest(RequestError):
    """A preflight without Origin or Access-Control-Request-Method (S3: BadRequest, 400)."""

    default_message = "Insufficient information. Origin request header needed."


class MalformedPOSTRequest(RequestError):
    default_message = "The body of your POST request is not well-formed multipart/form-data."


class MaxPostPreDataLengthExceeded(RequestError):
    default_message = "Your POST request fields preceding the upload file were too large."


class IncorrectNumberOfFilesInPostRequest(RequestError):
    default_message = "POST requires exactly one file upload per request."


class InvalidPolicyDocument(RequestError):
    default_message = "Invalid Policy: The content of the form does not meet the conditions specified in the policy."


class MalformedPolicy(RequestError):
    """An IAM or bucket policy document that is not valid; the message names the problem."""

    default_message = "Policies must be valid JSON and the first byte must be '{'"


class NoSuchBucketPolicy(RequestError):
    default_message = "The bucket policy does not exist"


class NoSuchPublicAccessBlockConfiguration(RequestError):
    default_message = "The public access block configuration was not found"


class MalformedACLError(RequestError):
    default_message = "The XML you provided was not well-formed or did not validate against our published schema"


class AccessControlListNotSupported(RequestError):
    default_message = "The bucket does not allow ACLs"


class InvalidBucketAclWithObjectOwnership(RequestError):
    default_message = "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"


class OwnershipControlsNotFoundError(RequestError):
    default_message = "The bucket ownership controls were not found"


class NoSuchEntity(RequestError):
    """An IAM user, group, access key or policy that does not exist (admin API: 404)."""

    default_message = "The IAM entity does not exist."


class EntityAlreadyExists(RequestError):
    """An IAM user, group, access key or policy of that name exists already (admin API: 409)."""

    default_message = "The IAM entity exists already."


class DeleteConflict(RequestError):
    """An IAM entity cannot be deleted while others use it (a managed policy still attached; admin API: 409)."""

    default_message = "The IAM entity is in use."


class IamLimitExceeded(RequestError):
    """An IAM limit (access keys per user, policies per entity) would be exceeded (admin API: 409)."""

    default_message = "An IAM limit would be exceeded."
