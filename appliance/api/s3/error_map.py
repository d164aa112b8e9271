"""The one table from domain errors to S3 error codes and HTTP status."""

from __future__ import annotations

from appliance import errors as e

__all__ = ["S3_ERRORS", "s3_error_for"]

# class -> (S3 code, HTTP status). Subclasses not listed fall back to their nearest listed base.
S3_ERRORS: dict[type[e.S3IpfsError], tuple[str, int]] = {
    e.NoSuchBucket: ("NoSuchBucket", 404),
    e.NoSuchKey: ("NoSuchKey", 404),
    e.NoSuchUpload: ("NoSuchUpload", 404),
    e.BucketAlreadyOwnedByYou: ("BucketAlreadyOwnedByYou", 409),
    e.BucketAlreadyExists: ("BucketAlreadyExists", 409),
    e.InvalidBucketOwnerAWSAccountID: ("InvalidBucketOwnerAWSAccountID", 400),
    e.BucketNotEmpty: ("BucketNotEmpty", 409),
    e.InvalidBucketName: ("InvalidBucketName", 400),
    e.KeyTooLongError: ("KeyTooLongError", 400),
    e.InvalidArgument: ("InvalidArgument", 400),
    e.InvalidRequest: ("InvalidRequest", 400),
    e.InvalidURI: ("InvalidURI", 400),
    e.InvalidStorageClass: ("InvalidStorageClass", 400),
    e.InvalidRange: ("InvalidRange", 416),
    e.PreconditionFailed: ("PreconditionFailed", 412),
    e.NotModified: ("NotModified", 304),
    e.ConditionalRequestConflict: ("ConditionalRequestConflict", 409),
    e.InvalidPartNumber: ("InvalidPartNumber", 416),
    e.BadDigest: ("BadDigest", 400),
    e.InvalidDigest: ("InvalidDigest", 400),
    e.IncompleteBody: ("IncompleteBody", 400),
    e.EntityTooLarge: ("EntityTooLarge", 400),
    e.MissingContentLength: ("MissingContentLength", 411),
    e.MalformedXML: ("MalformedXML", 400),
    e.MethodNotAllowed: ("MethodNotAllowed", 405),
    e.NotImplementedAction: ("NotImplemented", 501),
    e.RequestHeaderSectionTooLarge: ("RequestHeaderSectionTooLarge", 400),
    e.MetadataTooLarge: ("MetadataTooLarge", 400),
    e.EntityTooSmall: ("EntityTooSmall", 400),
    e.InvalidTag: ("InvalidTag", 400),
    e.NoSuchTagSet: ("NoSuchTagSet", 404),
    e.NoSuchVersion: ("NoSuchVersion", 404),
    e.DeleteMarkerError: ("NoSuchKey", 404),
    e.InvalidPart: ("InvalidPart", 400),
    e.InvalidPartOrder: ("InvalidPartOrder", 400),
    e.RequestTimeout: ("RequestTimeout", 400),
    e.InvalidLocationConstraint: ("InvalidLocationConstraint", 400),
    e.MalformedPOSTRequest: ("MalformedPOSTRequest", 400),
    e.MaxPostPreDataLengthExceeded: ("MaxPostPreDataLengthExceeded", 400),
    e.IncorrectNumberOfFilesInPostRequest: ("IncorrectNumberOfFilesInPostRequest", 400),
    e.InvalidPolicyDocument: ("InvalidPolicyDocument", 400),
    e.NoSuchCORSConfiguration: ("NoSuchCORSConfiguration", 404),
    e.AccessForbidden: ("AccessForbidden", 403),
    e.BadRequest: ("BadRequest", 400),
    e.MalformedPolicy: ("MalformedPolicy", 400),
    e.NoSuchBucketPolicy: ("NoSuchBucketPolicy", 404),
    e.NoSuchPublicAccessBlockConfiguration: ("NoSuchPublicAccessBlockConfiguration", 404),
    e.MalformedACLError: ("MalformedACLError", 400),
    e.AccessControlListNotSupported: ("AccessControlListNotSupported", 400),
    e.InvalidBucketAclWithObjectOwnership: ("InvalidBucketAclWithObjectOwnership", 400),
    e.OwnershipControlsNotFoundError: ("OwnershipControlsNotFoundError", 404),
    e.SlowDown: ("SlowDown", 503),
    e.AccessDenied: ("AccessDenied", 403),
    e.ExpiredPresignedRequest: ("AccessDenied", 403),
    e.InvalidAccessKeyId: ("InvalidAccessKeyId", 403),
    e.SignatureDoesNotMatch: ("SignatureDoesNotMatch", 403),
    e.AuthorizationHeaderMalformed: ("AuthorizationHeaderMalformed", 400),
    e.AuthorizationQueryParametersError: ("AuthorizationQueryParametersError", 400),
    e.RequestTimeTooSkewed: ("RequestTimeTooSkewed", 403),
    e.XAmzContentSHA256Mismatch: ("XAmzContentSHA256Mismatch", 400),
    e.AuthError: ("AccessDenied", 403),
    e.RequestError: ("InvalidRequest", 400),
    e.BackendUnavailable: ("ServiceUnavailable", 503),
    e.BackendError: ("InternalError", 500),
    e.ConfigError: ("InternalError", 500),
    e.S3IpfsError: ("InternalError", 500),
}


def s3_error_for(error: e.S3IpfsError) -> tuple[str, int]:
    """The S3 code and status for a domain error (walks the class's MRO)."""
    if isinstance(error, e.DeleteMarkerError) and error.requested:
        return ("MethodNotAllowed", 405)
    for cls in type(error).__mro__:
        if cls in S3_ERRORS:
            return S3_ERRORS[cls]
    return ("InternalError", 500)
