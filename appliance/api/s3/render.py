"""Turn results and errors into HTTP responses: XML bodies, error documents, common headers."""

from __future__ import annotations

from quart import Response

from appliance.api.error_text import client_message
from appliance.api.s3.error_map import s3_error_for
from appliance.api.s3.xml import XmlBuilder, http_date
from appliance.errors import (
    BackendUnavailable,
    DeleteMarkerError,
    InvalidRange,
    NotModified,
    S3IpfsError,
    SlowDown,
)

__all__ = ["empty_response", "error_response", "xml_response"]

XML_TYPE = "application/xml"


def xml_response(builder: XmlBuilder, status: int = 200) -> Response:
    return Response(builder.render(), status=status, content_type=XML_TYPE)


def empty_response(status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(b"", status=status)
    response.headers.remove("Content-Type")
    if headers:
        for name, value in headers.items():
            response.headers[name] = value
    return response


def error_response(error: S3IpfsError, *, request_id: str, resource: str, head: bool) -> Response:
    """The S3 error document (no body for HEAD), with Retry-After for an unavailable backend. Its message is
    `client_message`: a server-side error's own text (URLs, LMDB messages, paths) never reaches the client."""
    code, status = s3_error_for(error)
    if isinstance(error, NotModified):
        headers = {"ETag": f'"{error.etag}"'} if error.etag else {}
        if error.last_modified:
            headers["Last-Modified"] = http_date(error.last_modified)
        return empty_response(304, headers)
    builder = XmlBuilder("Error", namespace=False)
    builder.leaf("Code", code).leaf("Message", client_message(error))
    if resource:
        builder.leaf("Resource", resource)
    builder.leaf("RequestId", request_id).leaf("HostId", request_id)
    response = Response(b"" if head else builder.render(), status=status, content_type=XML_TYPE)
    if isinstance(error, BackendUnavailable | SlowDown):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, DeleteMarkerError):
        response.headers["x-amz-delete-marker"] = "true"
        if error.version_id:
            response.headers["x-amz-version-id"] = error.version_id
    if isinstance(error, InvalidRange):
        response.headers["Content-Range"] = f"bytes */{error.object_size}"
    return response
