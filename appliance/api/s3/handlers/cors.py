"""Bucket CORS: Put/Get/DeleteBucketCors, the OPTIONS preflight and the response headers of matching requests."""

from __future__ import annotations

from quart import Response

from appliance.api.s3.context import RequestContext, S3Services
from appliance.api.s3.request import S3Request
from appliance.errors import NotImplementedAction

__all__ = ["decorate", "delete_bucket_cors", "get_bucket_cors", "preflight", "put_bucket_cors"]


async def put_bucket_cors(ctx: RequestContext) -> Response:
    raise NotImplementedAction("PutBucketCors is being written.")


async def get_bucket_cors(ctx: RequestContext) -> Response:
    raise NotImplementedAction("GetBucketCors is being written.")


async def delete_bucket_cors(ctx: RequestContext) -> Response:
    raise NotImplementedAction("DeleteBucketCors is being written.")


async def preflight(services: S3Services, request: S3Request) -> Response:
    """The answer to an (unauthenticated) OPTIONS preflight request."""
    raise NotImplementedAction("CORS preflight is being written.")


async def decorate(services: S3Services, request: S3Request, response: Response) -> None:
    """Add Access-Control-* headers to `response` when the request has an Origin a bucket CORS rule allows."""
