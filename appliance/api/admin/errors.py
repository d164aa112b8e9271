"""The admin API's error documents (JSON), by the same rule as S3's (api/error_text.py).

A client error keeps its message: `{"error": message}` with 400, or 404 for an unknown bucket or IAM entity, or 409
for an IAM entity that exists already, is in use or would pass a limit. Anything else gets
`{"error": generic text with the request id, "code": ..., "request_id": ...}` and the details go to the log:

    BackendUnavailable     503  ServiceUnavailable   (the IPFS node or the cluster cannot be reached)
    BackendError           502  BadGateway           (a daemon answered with an error)
    anything else          500  InternalError        (metadata store, config, unexpected exceptions)
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, request
from werkzeug.exceptions import HTTPException

from appliance.api.error_text import client_message, log_server_error, new_request_id
from appliance.errors import (
    BackendError,
    BackendUnavailable,
    DeleteConflict,
    EntityAlreadyExists,
    IamLimitExceeded,
    NoSuchBucket,
    NoSuchEntity,
    RequestError,
    S3IpfsError,
)

__all__ = ["REQUEST_ID_HEADER", "error_document", "register_error_handlers"]

log = logging.getLogger("appliance.admin")

REQUEST_ID_HEADER = "x-request-id"
_JSON = dict[str, Any]


def _server_code(error: BaseException) -> tuple[str, int]:
    if isinstance(error, BackendUnavailable):
        return "ServiceUnavailable", 503
    if isinstance(error, BackendError):
        return "BadGateway", 502
    return "InternalError", 500


def _client_status(error: RequestError) -> int:
    if isinstance(error, (NoSuchBucket, NoSuchEntity)):
        return 404
    if isinstance(error, (EntityAlreadyExists, DeleteConflict, IamLimitExceeded)):
        return 409
    return 400


def error_document(error: BaseException, what: str) -> tuple[_JSON, int, dict[str, str]]:
    """The JSON error for `error` raised while serving `what`, its status and headers; logs a server-side error."""
    if isinstance(error, RequestError):
        return {"error": error.message}, _client_status(error), {}
    request_id = new_request_id()
    log_server_error(log, request_id, what, error)
    code, status = _server_code(error)
    document = {"error": f"{client_message(error)} (request id {request_id})", "code": code, "request_id": request_id}
    return document, status, {REQUEST_ID_HEADER: request_id}


def register_error_handlers(app: Quart) -> None:
    """Every error a route raises becomes an error document (Quart's own 404/405 stay as they are)."""

    @app.errorhandler(S3IpfsError)
    async def _domain_error(error: S3IpfsError) -> tuple[_JSON, int, dict[str, str]]:
        return error_document(error, f"{request.method} {request.path[:200]}")

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> HTTPException | tuple[_JSON, int, dict[str, str]]:
        if isinstance(error, HTTPException):
            return error
        return error_document(error, f"{request.method} {request.path[:200]}")
