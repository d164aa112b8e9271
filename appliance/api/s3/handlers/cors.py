"""Bucket CORS: Put/Get/DeleteBucketCors, the OPTIONS preflight and the response headers of matching requests."""

from __future__ import annotations

from quart import Response

from appliance.api.s3.context import RequestContext, S3Services
from appliance.api.s3.cors_rules import (
    AccessForbidden,
    BadRequest,
    CorsRule,
    NoSuchCORSConfiguration,
    allow_origin_value,
    header_safe,
    match,
    parse_cors,
    parse_header_list,
    render_cors,
    rules_from_json,
    rules_to_json,
)
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.request import S3Request
from appliance.errors import NoSuchBucket, RequestError

__all__ = ["decorate", "delete_bucket_cors", "get_bucket_cors", "preflight", "put_bucket_cors"]

CONFIG_NAME = "cors"
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
_NOT_ENABLED = "CORSResponse: CORS is not enabled for this bucket."


def _bucket(ctx: RequestContext) -> str:
    assert ctx.request.bucket is not None  # the routing table sends only bucket-level requests here
    return ctx.request.bucket


async def put_bucket_cors(ctx: RequestContext) -> Response:
    bucket = _bucket(ctx)
    await ctx.services.buckets.get_bucket(bucket)  # NoSuchBucket before reading the body
    rules = parse_cors(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes))
    await ctx.services.buckets.put_config(bucket, CONFIG_NAME, rules_to_json(rules))
    return empty_response(200)


async def get_bucket_cors(ctx: RequestContext) -> Response:
    stored = await ctx.services.buckets.get_config(_bucket(ctx), CONFIG_NAME)
    if stored is None:
        raise NoSuchCORSConfiguration()
    return xml_response(render_cors(rules_from_json(stored)))


async def delete_bucket_cors(ctx: RequestContext) -> Response:
    await ctx.services.buckets.delete_config(_bucket(ctx), CONFIG_NAME)
    return empty_response(204)


def _cors_headers(rule: CorsRule, origin: str) -> dict[str, str]:
    allow = allow_origin_value(rule, origin)
    headers = {"Access-Control-Allow-Origin": allow, "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods)}
    if allow != "*":
        headers["Access-Control-Allow-Credentials"] = "true"
    if rule.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age_seconds is not None:
        headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
    return headers


async def preflight(services: S3Services, request: S3Request) -> Response:
    """The answer to an (unauthenticated) OPTIONS preflight request."""
    origin = request.headers.get("origin", "")
    if not origin:
        raise BadRequest()
    method = request.headers.get("access-control-request-method", "")
    if not method:
        raise BadRequest("Invalid Access-Control-Request-Method: null")
    if request.bucket is None:
        raise AccessForbidden(_NOT_ENABLED)
    try:
        stored = await services.buckets.get_config(request.bucket, CONFIG_NAME)
    except NoSuchBucket:
        # A preflight carries no credentials: S3 does not confirm a bucket's existence to it either way.
        raise AccessForbidden("CORSResponse: Bucket not found") from None
    if stored is None:
        raise AccessForbidden(_NOT_ENABLED)
    requested = parse_header_list(request.headers.get("access-control-request-headers", ""))
    if not header_safe(origin) or not all(header_safe(name) for name in requested):
        raise AccessForbidden()  # nothing that cannot be echoed in a header is ever allowed
    rule = match(rules_from_json(stored), origin, method, requested)
    if rule is None:
        raise AccessForbidden()
    headers = _cors_headers(rule, origin)
    if requested:
        headers["Access-Control-Allow-Headers"] = ", ".join(requested)
    headers["Vary"] = VARY
    return empty_response(200, headers)


async def decorate(services: S3Services, request: S3Request, response: Response) -> None:
    """Add Access-Control-* headers to `response` when the request has an Origin a bucket CORS rule allows."""
    origin = request.headers.get("origin", "")
    if request.bucket is None or not origin or not header_safe(origin):
        return
    try:
        stored = await services.buckets.get_config(request.bucket, CONFIG_NAME)
    except RequestError:  # no such bucket, a name S3 cannot hold: the response already says so
        return
    if stored is None:
        return
    # On an actual request S3 matches Access-Control-Request-Method when sent, else the request's method; the
    # request's headers are not checked.
    method = request.headers.get("access-control-request-method") or request.method
    rule = match(rules_from_json(stored), origin, method)
    if rule is None:
        return
    for name, value in _cors_headers(rule, origin).items():
        response.headers[name] = value
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, {VARY}" if vary else VARY
