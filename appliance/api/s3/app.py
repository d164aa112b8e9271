"""The S3 front end: a Quart app whose one catch-all route parses, authenticates, routes and renders every request."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from quart import Quart, Response, request
from werkzeug.routing import BaseConverter

from appliance.api.access import client_ip
from appliance.api.error_text import log_server_error, new_request_id
from appliance.api.s3.audit_hook import audit_s3
from appliance.api.s3.auth_owner import check_expected_owner
from appliance.api.s3.authorize import authorize_request, principal_of
from appliance.api.s3.connection import BackpressureConnection, StreamingRequest
from appliance.api.s3.context import Origin, RequestContext, S3Services
from appliance.api.s3.error_map import s3_error_for
from appliance.api.s3.h11_compat import install_reason_phrases
from appliance.api.s3.handlers import HANDLERS, acl, cors
from appliance.api.s3.handlers.post_object import is_browser_post, post_object
from appliance.api.s3.limits import throttle
from appliance.api.s3.render import error_response
from appliance.api.s3.request import S3Request, parse_request
from appliance.api.s3.routing import route
from appliance.api.s3.sigv2 import authenticate_v2, is_v2
from appliance.api.s3.sigv4 import AuthContext, authenticate
from appliance.errors import AccessDenied, AuthError, RequestError, S3IpfsError
from appliance.metrics import observe_s3_request, s3_action, s3_error

__all__ = ["S3Services", "create_app", "dispatch"]

log = logging.getLogger("appliance.s3")

_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]


class _AnyPath(BaseConverter):
    """Matches every path, including '', '//' and trailing slashes: the S3 layer parses the raw path itself."""

    regex = ".*"
    part_isolating = False


def create_app(services: S3Services) -> Quart:
    """The S3 ASGI app. Serve it with hypercorn; the caller owns the services' lifetimes."""
    install_reason_phrases()
    app = Quart(__name__)
    app.config.update(MAX_CONTENT_LENGTH=None, RESPONSE_TIMEOUT=None, BODY_TIMEOUT=None)
    app.asgi_http_class = BackpressureConnection
    app.request_class = StreamingRequest
    app.url_map.converters["anypath"] = _AnyPath
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.extensions["s3ipfs"] = services

    async def s3_entry(path: str = "") -> Response:
        with observe_s3_request(request.headers.get) as finish:  # metrics: one hook
            response = await dispatch(services)
            finish(response.status_code, response.headers.get("content-length"))
            return response

    app.add_url_rule("/<anypath:path>", "s3", s3_entry, methods=_METHODS, provide_automatic_options=False)
    return app


_SIGNATURE_ARGS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "AWSAccessKeyId", "Signature"})
# Payload modes an unsigned request may use (a signed streaming body needs a signing key).
_ANONYMOUS_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")


def _is_anonymous(s3req: S3Request) -> bool:
    return "authorization" not in s3req.headers and not any(name in _SIGNATURE_ARGS for name, _ in s3req.query)


def _anonymous_auth(s3req: S3Request) -> AuthContext:
    """What the body verifier needs for an unsigned request: no keys, the declared payload digest if any."""
    mode = s3req.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    if mode not in _ANONYMOUS_PAYLOADS and not (len(mode) == 64 and all(c in "0123456789abcdef" for c in mode)):
        raise AccessDenied()
    return AuthContext("", "", "", "", b"", "", mode, False)


def _origin() -> Origin:
    # The resolved client address (trusted proxies honoured; api/access.py): aws:SourceIp, logs and audit agree.
    return Origin(client_ip=client_ip(request.scope), secure=request.scope.get("scheme") == "https")


def _authenticate(services: S3Services, s3req: S3Request, raw_path: bytes) -> AuthContext:
    now = datetime.fromtimestamp(services.clock(), UTC)
    if is_v2(s3req.query, s3req.headers):
        resource = raw_path.split(b"?", 1)[0].decode("latin-1")
        if s3req.virtual_host:
            resource = f"/{s3req.bucket}{resource}"
        if s3req.bucket is not None and s3req.key is None and not resource.endswith("/"):
            resource += "/"  # a bucket's resource is '/bucket/' however the path was written
        return authenticate_v2(
            method=s3req.method,
            resource=resource,
            query=s3req.query,
            headers=s3req.headers,
            lookup_secret=services.lookup_secret,
            now=now,
            max_skew_seconds=services.auth.max_skew_seconds,
            max_presign_expiry_seconds=services.auth.max_presign_expiry_seconds,
        )
    return authenticate(
        method=s3req.method,
        path=s3req.path,
        query=s3req.query,
        headers=s3req.headers,
        lookup_secret=services.lookup_secret,
        now=now,
        max_skew_seconds=services.auth.max_skew_seconds,
        max_presign_expiry_seconds=services.auth.max_presign_expiry_seconds,
        region=services.s3.region,
    )


def _authenticate_limited(services: S3Services, s3req: S3Request, raw_path: bytes, client: str) -> AuthContext:
    """Authenticate, then spend from the signer's bucket; a failed signature spends from the address's bucket
    (a forged key id must not drain its owner's budget)."""
    try:
        auth = _authenticate(services, s3req, raw_path)
    except AuthError:
        throttle(services, "", client)
        raise
    throttle(services, auth.access_key, client)
    return auth


async def dispatch(services: S3Services) -> Response:
    """Parse → authenticate → route → handle; every failure becomes an S3 error document."""
    request_id = new_request_id()
    scope = request.scope
    method = request.method
    resource = ""
    s3req: S3Request | None = None
    action = ""  # for the audit record: the routed handler's name, and who (once authenticated)
    user = access_key = ""
    code = ""
    try:
        client, allowed = services.access.admit(scope)
        if not allowed:
            raise AccessDenied()  # the allow/deny lists, before anything else is read
        raw_path = scope.get("raw_path") or request.path.encode("utf-8")
        s3req = parse_request(
            method=method,
            raw_path=raw_path,
            query_string=scope["query_string"],
            raw_headers=scope["headers"],
            domains=services.s3.domains,
            max_header_bytes=services.s3.max_header_bytes,
        )
        resource = s3req.path
        if s3req.method == "OPTIONS":
            throttle(services, "", client)
            response = await cors.preflight(services, s3req)  # preflights carry no credentials
        elif is_browser_post(s3req):
            action = "PostObject"
            throttle(services, "", client)  # its form signature is checked in the handler
            response = await post_object(services, s3req, aiter(request.body), request_id, _origin())  # signed form
        else:
            anonymous = _is_anonymous(s3req)
            if anonymous:
                throttle(services, "", client)  # anonymous requests spend from the address's bucket
                auth = _anonymous_auth(s3req)
            else:
                auth = _authenticate_limited(services, s3req, raw_path, client)
            principal = principal_of(services, None if anonymous else auth)
            user, access_key = principal.user, principal.access_key
            action = route(s3req)
            s3_action(action)
            signed = None if anonymous else auth
            origin = _origin()
            access = await authorize_request(services, s3req, action, principal, signed, origin=origin)
            await check_expected_owner(services, s3req)
            ctx = RequestContext(s3req, services, auth, aiter(request.body), request_id, principal, origin)
            response = await HANDLERS[action](ctx)
            await acl.apply_object_acl(ctx, action, access, response)
    except Exception as error:
        s3_error(error)
        # A client error is answered with its message; anything else is logged under the request id and answered
        # with a generic text (render.error_response), whatever detail it carries.
        if not isinstance(error, RequestError):
            log_server_error(log, request_id, f"{method} {resource[:200]}", error)
        domain = error if isinstance(error, S3IpfsError) else S3IpfsError()
        code = s3_error_for(domain)[0]
        response = error_response(domain, request_id=request_id, resource=resource[:1024], head=method == "HEAD")
    if s3req is not None and "origin" in s3req.headers and s3req.method != "OPTIONS":
        try:
            await cors.decorate(services, s3req, response)
        except Exception:
            log.exception("request %s: CORS headers could not be added", request_id)
    response.headers["x-amz-request-id"] = request_id
    response.headers["x-amz-id-2"] = request_id
    audit_s3(
        services.auditor,
        method=method,
        s3req=s3req,
        action=action,
        access_key=access_key,
        user=user,
        source_ip=_origin().client_ip,
        request_id=request_id,
        response=response,
        code=code,
    )
    return response
