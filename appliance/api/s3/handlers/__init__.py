"""One coroutine per S3 action, looked up by the action name the routing table returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.handlers import (
    acl,
    bucket_policy,
    buckets,
    copy,
    cors,
    delete_objects,
    listing,
    multipart,
    objects,
    tagging,
    versioning,
)

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[[RequestContext], Awaitable[Response]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "ListObjects": listing.list_objects,
    "ListObjectsV2": listing.list_objects_v2,
    "DeleteObjects": delete_objects.delete_objects,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "GetObjectAttributes": objects.get_object_attributes,
    "CopyObject": copy.copy_object,
    "UploadPartCopy": copy.upload_part_copy,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "ListObjectVersions": versioning.list_object_versions,
    "PutObjectTagging": tagging.put_object_tagging,
    "GetObjectTagging": tagging.get_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    "PutBucketCors": cors.put_bucket_cors,
    "GetBucketCors": cors.get_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
    "PutBucketPolicy": bucket_policy.put_bucket_policy,
    "GetBucketPolicy": bucket_policy.get_bucket_policy,
    "DeleteBucketPolicy": bucket_policy.delete_bucket_policy,
    "GetBucketPolicyStatus": bucket_policy.get_bucket_policy_status,
    "PutPublicAccessBlock": bucket_policy.put_public_access_block,
    "GetPublicAccessBlock": bucket_policy.get_public_access_block,
    "DeletePublicAccessBlock": bucket_policy.delete_public_access_block,
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "PutBucketOwnershipControls": acl.put_bucket_ownership_controls,
    "GetBucketOwnershipControls": acl.get_bucket_ownership_controls,
    "DeleteBucketOwnershipControls": acl.delete_bucket_ownership_controls,
}
