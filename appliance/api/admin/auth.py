"""Admin API authentication and request hygiene: bearer tokens, the Host check (DNS rebinding), JSON bodies only,
no CORS, and one audit record per state-changing or denied admin request.

Order of checks per request: OPTIONS -> 405; Host not ours -> 421; a body that is not application/json -> 415;
no or bad token -> 401 with `WWW-Authenticate: Bearer` (except GET /health and POST /auth/token); the hook
`authorize(principal, action, resource)` says no -> 403.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quart import Quart, Response, g, request

from appliance.config import is_loopback_host
from appliance.service.admin_tokens import TokenRecord, TokenStore
from appliance.service.audit import Auditor
from appliance.service.identity import Credentials

__all__ = ["AdminAuth", "AdminPrincipal", "allowed_hosts", "register_auth", "root_only"]

log = logging.getLogger("appliance.admin")

_JSON = dict[str, Any]
# Probes stay open like /health: load balancers, systemd and Ansible ask /ready, whose answer names components and
# their state only (no detail: see api/error_text.py).
_OPEN = {("GET", "/health"), ("GET", "/ready"), ("POST", "/auth/token")}
_DENIED = {401, 403, 405, 415, 421, 429}


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """Who holds an admin token (the field names of model.Principal, so the IAM/policy hook can take either)."""

    user: str
    access_key: str
    is_root: bool = False

    @property
    def account(self) -> str:
        return self.access_key


def root_only(principal: AdminPrincipal, action: str, resource: str) -> bool:
    """The default `admin_authorize` hook until IAM policies are wired in: root may do everything."""
    return principal.is_root


@dataclass(frozen=True, slots=True)
class AdminAuth:
    """What the admin app needs to authenticate callers (built by the composition root)."""

    tokens: TokenStore
    root: Credentials
    hosts: frozenset[str]  # accepted Host header values (lower case, with port)
    default_ttl: float = 3600.0
    max_ttl: float = 30 * 86400.0
    # (access_key, secret) -> principal for IAM users; None: root only. The IAM work connects it.
    verify_key: Callable[[str, str], AdminPrincipal | None] | None = None
    authorize: Callable[[AdminPrincipal, str, str], bool] = root_only
    auditor: Auditor = field(default_factory=lambda: Auditor(None))

    def principal_for_key(self, access_key: str, secret_key: str) -> AdminPrincipal | None:
        """The identity a key pair proves (constant-time for root), None when it proves none."""
        root_ak = hmac.compare_digest(access_key.encode(), self.root.access_key.encode())
        root_sk = hmac.compare_digest(secret_key.encode(), self.root.secret_key.encode())
        if root_ak and root_sk:
            return AdminPrincipal(user="root", access_key=self.root.access_key, is_root=True)
        if root_ak or self.verify_key is None:
            return None
        return self.verify_key(access_key, secret_key)


def allowed_hosts(host: str, port: int, server_names: tuple[str, ...] = ()) -> frozenset[str]:
    """The Host header values the admin API answers: its own address:port, the configured names and, when bound
    to loopback, the loopback names with the port."""
    names = {f"{host}:{port}", *server_names}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]:{port}")
    if is_loopback_host(host):
        names.update({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})
    return frozenset(name.lower() for name in names)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> tuple[_JSON, int, dict[str, str]]:
    return {"error": message}, status, headers or {}


def _source_ip() -> str:
    client = request.scope.get("client")
    return str(client[0]) if client else ""


def register_auth(app: Quart, auth: AdminAuth) -> None:
    """Install the checks and the audit hook on the admin app (before any route is registered)."""

    @app.before_request
    async def _gate() -> tuple[_JSON, int, dict[str, str]] | None:
        g.principal = None
        g.token_id = ""
        if request.method == "OPTIONS":  # no CORS preflight is ever answered
            return _error("method not allowed", 405, {"Allow": "GET, HEAD, POST, PUT, DELETE"})
        if request.headers.get("Host", "").lower() not in auth.hosts:
            return _error("this admin API does not answer for that Host (DNS rebinding protection)", 421)
        has_body = request.content_length not in (None, 0) or "transfer-encoding" in request.headers
        if has_body and request.mimetype != "application/json":
            return _error("request bodies must be JSON (Content-Type: application/json)", 415)
        if (request.method, request.path) in _OPEN:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        record: TokenRecord | None = None
        if scheme.lower() == "bearer" and token.strip():
            record = auth.tokens.check(token.strip())
        if record is None:
            why = "missing" if not header else "invalid, expired or revoked"
            return _error(
                f"admin API token {why}: run `s3ipfs admin login` or pass Authorization: Bearer <token>",
                401,
                {"WWW-Authenticate": 'Bearer realm="s3ipfs-admin"'},
            )
        principal = AdminPrincipal(record.user, record.access_key, is_root=record.user == "root")
        g.principal = principal
        g.token_id = record.id
        action = f"admin:{request.endpoint or 'unknown'}"
        if not auth.authorize(principal, action, request.path):
            return _error(f"{principal.user} may not {action} on {request.path}", 403)
        return None

    @app.after_request
    async def _after(response: Response) -> Response:
        for name in [h for h in response.headers.keys() if h.lower().startswith("access-control-")]:  # noqa: SIM118
            del response.headers[name]
        if request.method not in ("GET", "HEAD") or response.status_code in _DENIED:
            principal: AdminPrincipal | None = g.get("principal")
            extra = {"token_id": g.get("token_id", "")} if g.get("token_id") else {}
            extra.update(g.get("audit_extra", {}))
            auth.auditor.record(
                api="admin",
                action=f"admin:{request.endpoint or 'unknown'}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id", ""),
                user=principal.user if principal else g.get("audit_user", ""),
                access_key=principal.access_key if principal else g.get("audit_key", ""),
                source_ip=_source_ip(),
                resource=request.path[:1024],
                code="" if response.status_code < 400 else str(response.status_code),
                bytes=request.content_length or 0,
                extra=extra,
            )
        return response
