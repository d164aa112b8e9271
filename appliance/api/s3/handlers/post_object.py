"""Browser-based uploads: POST to a bucket with a multipart/form-data body, a policy and its SigV4 signature."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from quart import Response

from appliance.api.s3.auth_owner import check_expected_owner
from appliance.api.s3.authorize import authorize_post
from appliance.api.s3.context import Origin, S3Services, timed
from appliance.api.s3.form import MAX_FIELDS_TOTAL_BYTES, FormReader, parse_boundary
from appliance.api.s3.handlers.objects import DEFAULT_CONTENT_TYPE, stored_headers
from appliance.api.s3.handlers.write_options import check_write_options
from appliance.api.s3.post_policy import (
    CheckedFileBody,
    check_conditions,
    check_expiration,
    parse_policy,
    verify_signature,
)
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.request import S3Request
from appliance.api.s3.usermeta import form_user_meta
from appliance.api.s3.xml import XmlBuilder
from appliance.errors import InvalidArgument, RequestTimeout, S3IpfsError
from appliance.service.objects import PutRequest

__all__ = ["is_browser_post", "post_object"]

FILENAME_VARIABLE = "${filename}"


def is_browser_post(request: S3Request) -> bool:
    """A POST to a bucket (no key) whose body is multipart/form-data: authenticated by its form, not by headers."""
    return (
        request.method == "POST"
        and request.bucket is not None
        and request.key is None
        and not request.query
        and request.header("content-type").lower().startswith("multipart/form-data")
    )


def _trusted_host(services: S3Services, request: S3Request) -> str | None:
    """The Host header if it names this endpoint (a configured `s3.domains` entry, a bucket under one, or the
    listen address), else None: a Location is never built from a name the operator did not configure."""
    host = request.header("host").strip()
    name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not sep:
        name, port = host, ""
    if port and (not port.isascii() or not port.isdigit() or len(port) > 5):
        return None
    name = name.lower().rstrip(".")
    trusted = {services.s3.host.lower(), *(d.lower() for d in services.s3.domains)}
    if name in trusted or any(name.endswith("." + d.lower()) for d in services.s3.domains):
        return f"{name}:{port}" if port else name
    return None


def _object_url(services: S3Services, request: S3Request, bucket: str, key: str) -> str:
    """Where the new object lives: absolute when the Host is one of ours, else a path relative to the endpoint."""
    path = quote(key.encode("utf-8", "surrogateescape"), safe="/~")
    host = _trusted_host(services, request)
    if host is None:
        return f"/{quote(bucket)}/{path}"
    scheme = "https" if services.s3.tls_certfile else "http"
    if request.virtual_host:
        return f"{scheme}://{host}/{path}"
    return f"{scheme}://{host}/{quote(bucket)}/{path}"


def _redirect_target(url: str, bucket: str, key: str, etag: str) -> str | None:
    """The success_action_redirect URL with bucket, key and etag added; None if it is not an http(s) URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c in url for c in "\r\n"):
        return None
    query = urlencode({"bucket": bucket, "key": key.encode("utf-8", "surrogateescape"), "etag": f'"{etag}"'})
    if parts.fragment:
        url = url.split("#", 1)[0]
    return url + ("&" if parts.query else ("" if url.endswith("?") else "?")) + query


_DISCARD_CAP = 64 * 1024 * 1024


async def _discard_rest(services: S3Services, body: AsyncIterator[bytes]) -> None:
    """Read and drop what the client is still sending (bounded), so it gets to read the error response: a client
    blocked writing a large upload into a connection nobody reads would otherwise never see it."""
    # Capped: a rejected multi-GiB upload is not worth reading whole; past the cap the connection just closes.
    limit = min(services.s3.max_single_put_bytes, _DISCARD_CAP) + MAX_FIELDS_TOTAL_BYTES
    seen = 0
    with contextlib.suppress(Exception):
        async for piece in timed(body, services.s3.body_read_timeout):
            seen += len(piece)
            if seen > limit:
                return


async def post_object(
    services: S3Services, request: S3Request, body: AsyncIterator[bytes], request_id: str, origin: Origin | None = None
) -> Response:
    """Parse the form as it streams, check the policy and signature, store the file field as the object."""
    body = aiter(body)
    try:
        return await _post_object(services, request, body, origin or Origin())
    except S3IpfsError as error:
        if not isinstance(error, RequestTimeout):
            await _discard_rest(services, body)
        raise


async def _post_object(
    services: S3Services, request: S3Request, body: AsyncIterator[bytes], origin: Origin
) -> Response:
    bucket = request.bucket
    assert bucket is not None  # is_browser_post
    form = FormReader(timed(body, services.s3.body_read_timeout), parse_boundary(request.header("content-type")))
    raw_fields, file_part = await form.read_fields()
    fields: dict[str, str] = {}
    for name, value in raw_fields:
        fields.setdefault(name.lower(), value)

    access_key = verify_signature(fields, services.lookup_secret, region=services.s3.region)
    await check_expected_owner(services, request)  # x-amz-expected-bucket-owner, once the form is authenticated
    policy = parse_policy(fields["policy"])
    check_expiration(policy, datetime.fromtimestamp(services.clock(), UTC))
    if "key" not in fields:
        raise InvalidArgument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields."
        )
    key = fields["key"].replace(FILENAME_VARIABLE, file_part.filename)
    allowed = check_conditions(policy, fields, bucket=bucket, alternatives={"key": key})
    if not key:
        raise InvalidArgument("User key must have a length greater than 0.")
    principal = await authorize_post(services, origin, access_key, bucket, key)
    check_write_options(fields)

    put = PutRequest(
        bucket=bucket,
        key=key,
        content_type=fields.get("content-type") or DEFAULT_CONTENT_TYPE,
        user_meta=form_user_meta(fields),
        headers=stored_headers(fields),
        owner=principal.account,
    )
    content = CheckedFileBody(form.file_stream(), allowed=allowed, max_size=services.s3.max_single_put_bytes)
    meta = await services.objects.put_object(put, content)

    location = _object_url(services, request, bucket, meta.key)
    headers = {
        "ETag": f'"{meta.etag}"',
        "Location": location,
        "x-amz-meta-cid": meta.cid,
        "x-ipfs-pin-status": await services.objects.pin_state(meta.cid),
    }
    if meta.version_id:
        headers["x-amz-version-id"] = meta.version_id
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        target = _redirect_target(redirect, bucket, meta.key, meta.etag)
        if target is not None:
            headers["Location"] = target
            return empty_response(303, headers)
    status = fields.get("success_action_status", "")
    if status == "201":
        builder = XmlBuilder("PostResponse", namespace=False)
        builder.leaf("Location", location).leaf("Bucket", bucket).leaf("Key", meta.key).leaf("ETag", f'"{meta.etag}"')
        response = xml_response(builder, 201)
        for name, value in headers.items():
            response.headers[name] = value
        return response
    return empty_response(200 if status == "200" else 204, headers)
