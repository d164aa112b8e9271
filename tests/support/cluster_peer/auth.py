"""The REST API's auth (`api/common/api.go` `authHandler`): basic auth and HS256 JWTs signed with the issuer's
password (`POST /token`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

from tests.support.cluster_peer.shapes import ApiError, basic_credentials

__all__ = ["WWW_AUTHENTICATE", "check_auth", "make_token"]

WWW_AUTHENTICATE = 'Basic realm="Restricted IPFS Cluster API"'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(user: str, password: str) -> str:
    """An HS256 JWT `{"iss": user}` (no expiry, like `generateSignedTokenString`)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps({"iss": user}, separators=(",", ":")).encode())
    signature = hmac.new(password.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _token_user(token: str, credentials: Mapping[str, str]) -> str | None:
    try:
        head, body, signature = token.split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
        given = _unb64(signature)
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    user = claims.get("iss")
    if not isinstance(user, str) or user not in credentials:
        return None
    expected = hmac.new(credentials[user].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return user if hmac.compare_digest(expected, given) else None


def check_auth(authorization: str, credentials: Mapping[str, str] | None) -> str | None:
    """The authenticated user (None when auth is off); ApiError 401 with the cluster's messages otherwise."""
    if credentials is None:
        return None
    basic = basic_credentials(authorization)
    if basic is not None:
        user, password = basic
        known = credentials.get(user)
        if known is not None and hmac.compare_digest(known.encode(), password.encode()):
            return user
        raise ApiError(401, "unauthorized: access denied")
    if authorization.startswith("Bearer "):
        user_of_token = _token_user(authorization[7:].strip(), credentials)
        if user_of_token is None:
            raise ApiError(401, "unauthorized: invalid token")
        return user_of_token
    raise ApiError(401, "unauthorized: no auth provided")
