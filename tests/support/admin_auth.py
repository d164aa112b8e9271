"""Admin API authentication for tests: an AdminAuth over a token file in a temporary directory, and an admin app
whose test client sends a root token and the right Host header by default.

    app = authed_admin_app(state, tmp_path)            # app.test_client() requests are authenticated as root
    app = create_admin_app(state, admin_auth(tmp_path)) # no default headers: for tests of the checks themselves
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quart import Quart
from quart.testing import QuartClient

from appliance.api.admin.app import AdminState, create_admin_app
from appliance.api.admin.auth import AdminAuth, allowed_hosts
from appliance.service.admin_tokens import TokenStore
from appliance.service.audit import Auditor
from appliance.service.identity import Credentials

__all__ = ["ADMIN_HOST", "ROOT", "admin_auth", "authed_admin_app", "install_cli_token", "root_token"]

ADMIN_PORT = 9001
ADMIN_HOST = f"127.0.0.1:{ADMIN_PORT}"
ROOT = Credentials("S3IPFSTESTROOTKEY000", "test-root-secret-0123456789abcdefghijklmn")


def admin_auth(directory: Path, *, auditor: Auditor | None = None, port: int = ADMIN_PORT, **kwargs: Any) -> AdminAuth:
    """An AdminAuth for ROOT with tokens in directory/keys, answering Host 127.0.0.1:port (and loopback names)."""
    return AdminAuth(
        tokens=TokenStore(Path(directory) / "keys" / "admin-tokens.json"),
        root=ROOT,
        hosts=allowed_hosts("127.0.0.1", port),
        auditor=auditor or Auditor(None),
        **kwargs,
    )


def root_token(auth: AdminAuth, ttl: float = 3600.0) -> str:
    token, _record = auth.tokens.issue(user="root", access_key=ROOT.access_key, ttl=ttl)
    return token


class _DefaultHeaders(QuartClient):
    """A test client that adds the app's default headers (a request's own headers win)."""

    def _merged(self, given: Any) -> dict[str, str]:
        headers = dict(self.app.config.get("TEST_DEFAULT_HEADERS", {}))
        for name, value in dict(given or {}).items():
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            headers[name] = value
        return headers

    async def open(self, path: str, **kwargs: Any) -> Any:  # type: ignore[override]
        return await super().open(path, headers=self._merged(kwargs.pop("headers", None)), **kwargs)

    def request(self, path: str, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().request(path, headers=self._merged(kwargs.pop("headers", None)), **kwargs)


def with_default_headers(app: Quart, headers: dict[str, str]) -> Quart:
    app.config["TEST_DEFAULT_HEADERS"] = headers
    app.test_client_class = _DefaultHeaders
    return app


def authed_admin_app(
    state: AdminState, directory: Path, *, auditor: Auditor | None = None, port: int = ADMIN_PORT
) -> Quart:
    """The admin app whose test client is authenticated as root (Authorization and Host sent by default). The
    token is also in app.config["TEST_ROOT_TOKEN"] (for CLI tests that serve the app on `port`)."""
    auth = admin_auth(directory, auditor=auditor, port=port)
    app = create_admin_app(state, auth)
    token = root_token(auth)
    app.config["TEST_ROOT_TOKEN"] = token
    app.extensions["admin_auth"] = auth
    return with_default_headers(app, {"Authorization": f"Bearer {token}", "Host": f"127.0.0.1:{port}"})


def install_cli_token(app: Quart, state_dir: Path, monkeypatch: Any) -> str:
    """Write the app's root token where the CLI finds the local root token (state_dir/keys/admin.token), and point
    the login file at an empty place (so a developer's own login never counts)."""
    token: str = app.config["TEST_ROOT_TOKEN"]
    keys = Path(state_dir) / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "admin.token").write_text(token + "\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(Path(state_dir) / "xdg"))
    return token
