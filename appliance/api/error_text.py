"""What a client may read of an error, for the S3 and the admin API alike.

A client error (`RequestError`: 4xx, a message we wrote for the client) keeps its message. Anything else (an
unreachable or failing daemon, a metadata store error, a config error, an unexpected exception) may carry internal
detail (node and cluster URLs, LMDB messages, file paths, exception text): the client gets a generic text for its kind
and the request id, and the details go to the log under that request id.
"""

from __future__ import annotations

import logging
import secrets

from appliance.errors import BackendUnavailable, RequestError, S3IpfsError

__all__ = ["INTERNAL_MESSAGE", "UNAVAILABLE_MESSAGE", "client_message", "log_server_error", "new_request_id"]

INTERNAL_MESSAGE = "We encountered an internal error. Please try again."
UNAVAILABLE_MESSAGE = "Service is unavailable. Please retry."


def new_request_id() -> str:
    """A fresh request id (16 upper-case hex digits, like S3's)."""
    return secrets.token_hex(8).upper()


def client_message(error: BaseException) -> str:
    """The message a client may see for `error`."""
    if isinstance(error, RequestError):
        return error.message
    if isinstance(error, BackendUnavailable):
        return UNAVAILABLE_MESSAGE
    return INTERNAL_MESSAGE


def log_server_error(logger: logging.Logger, request_id: str, what: str, error: BaseException) -> None:
    """Log what the client was not told: the message and its cause under the request id; the traceback too unless
    the backend is merely unavailable (that is frequent while a node restarts, and its message says it all)."""
    if isinstance(error, BackendUnavailable):
        cause = f" (cause: {error.__cause__!r})" if error.__cause__ is not None else ""
        logger.warning("request %s %s: %s%s", request_id, what, error.message, cause)
    elif isinstance(error, S3IpfsError):
        logger.error("request %s %s: %s", request_id, what, error.message, exc_info=error)
    else:
        logger.error("request %s %s failed: %r", request_id, what, error, exc_info=error)
