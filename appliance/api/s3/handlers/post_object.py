"""Browser-based uploads: POST to a bucket with a multipart/form-data body, a policy and its SigV4 signature."""

from __future__ import annotations

from collections.abc import AsyncIterator

from quart import Response

from appliance.api.s3.context import S3Services
from appliance.api.s3.request import S3Request
from appliance.errors import NotImplementedAction

__all__ = ["is_browser_post", "post_object"]


def is_browser_post(request: S3Request) -> bool:
    """A POST to a bucket (no key) whose body is multipart/form-data: authenticated by its form, not by headers."""
    return (
        request.method == "POST"
        and request.bucket is not None
        and request.key is None
        and not request.query
        and request.header("content-type").lower().startswith("multipart/form-data")
    )


async def post_object(
    services: S3Services, request: S3Request, body: AsyncIterator[bytes], request_id: str
) -> Response:
    """Parse the form as it streams, check the policy and signature, store the file field as the object."""
    raise NotImplementedAction("POST object uploads are being written.")
