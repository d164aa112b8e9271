"""The admin API's /auth routes: issue a token for a key pair, list and revoke tokens, who am I."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Quart, g, request

from appliance.api.admin.auth import AdminAuth, AdminPrincipal

__all__ = ["register_auth_routes"]

_JSON = dict[str, Any]


def register_auth_routes(app: Quart, auth: AdminAuth) -> None:
    @app.post("/auth/token")
    async def auth_token() -> tuple[_JSON, int]:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict):
            return {"error": 'give a JSON object {"access_key": ..., "secret_key": ..., "ttl": seconds}'}, 400
        access_key, secret_key, ttl = body.get("access_key"), body.get("secret_key"), body.get("ttl")
        if not isinstance(access_key, str) or not isinstance(secret_key, str) or not access_key or not secret_key:
            return {"error": "access_key and secret_key are required strings"}, 400
        if ttl is None:
            ttl = auth.default_ttl
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 60 <= ttl <= auth.max_ttl:
            return {"error": f"ttl must be a number of seconds from 60 to {auth.max_ttl:.0f}"}, 400
        g.audit_key = access_key[:128]  # who tried, for the audit record (never the secret)
        principal = await asyncio.to_thread(auth.principal_for_key, access_key, secret_key)
        if principal is None:
            return {"error": "unknown access key or wrong secret key"}, 401
        g.audit_user = principal.user
        if not auth.authorize(principal, "admin:*", "*"):
            return {"error": f"{principal.user} has no admin rights (a policy allowing admin:* is needed)"}, 403
        token, record = await asyncio.to_thread(
            auth.tokens.issue, user=principal.user, access_key=principal.access_key, ttl=float(ttl)
        )
        g.audit_extra = {"issued_token_id": record.id}
        return {"token": token, "token_id": record.id, "expires": record.expires, "user": record.user}, 200

    @app.get("/auth/tokens")
    async def auth_tokens() -> tuple[_JSON, int]:
        records = await asyncio.to_thread(auth.tokens.list)
        return {"tokens": [r.public() for r in records]}, 200

    @app.delete("/auth/tokens/<token_id>")
    async def auth_revoke(token_id: str) -> tuple[_JSON, int]:
        if not await asyncio.to_thread(auth.tokens.revoke, token_id):
            return {"error": f"no token with id {token_id[:40]!r}"}, 404
        return {"revoked": [token_id]}, 200

    @app.delete("/auth/tokens")
    async def auth_revoke_all() -> tuple[_JSON, int]:
        include_local = request.args.get("include_local") in ("1", "true")
        count = await asyncio.to_thread(auth.tokens.revoke_all, include_local=include_local)
        return {"revoked_count": count}, 200

    @app.get("/auth/whoami")
    async def auth_whoami() -> tuple[_JSON, int]:
        principal: AdminPrincipal = g.principal
        return {"user": principal.user, "access_key": principal.access_key, "token_id": g.token_id}, 200
