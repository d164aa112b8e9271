"""The one client of the admin API, for the CLI, the TUI and scripts.

Synchronous (httpx): the CLI calls it directly and the TUI from Textual thread workers (`@work(thread=True)`), which
keeps one implementation. Token lookup, first found wins: the explicit `token`, `$S3IPFS_ADMIN_TOKEN`, the login
file (`~/.config/s3ipfs/admin-token`, written by `s3ipfs admin login`), the local root token the daemon writes
(`<state_dir>/keys/admin.token`, readable by root and the s3ipfs user).
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any

import httpx

from appliance.config import AppConfig
from appliance.errors import BackendError, BackendUnavailable, RequestError

__all__ = ["TOKEN_ENV", "AdminAuthError", "AdminClient", "find_token", "login_token_path"]

TOKEN_ENV = "S3IPFS_ADMIN_TOKEN"  # noqa: S105 (a variable name)
_TIMEOUT = 30.0
_LONG_TIMEOUT = 3600.0  # a reconcile or rebalance pass over a large pinset


class AdminAuthError(RequestError):
    """The admin API refused the caller (401/403) or the request's form (415/421); the message says what to do."""


def login_token_path() -> Path:
    """Where `s3ipfs admin login` keeps its token (XDG config dir)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "s3ipfs" / "admin-token"


def _read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""  # absent or not readable by this user: try the next source


def find_token(explicit: str | None = None, local_token_file: Path | None = None) -> str:
    """The token to send, by the order in the module docstring; "" when there is none."""
    for candidate in (explicit or "", os.environ.get(TOKEN_ENV, "")):
        if candidate.strip():
            return candidate.strip()
    for path in (login_token_path(), local_token_file):
        if path is not None:
            token = _read_token(path)
            if token:
                return token
    return ""


class AdminClient:
    """A small JSON client of the admin API; turns HTTP failures into domain errors with the API's message."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeout: float = _TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._verify = verify
        self._timeout = timeout
        self._token = token
        self._transport = transport  # injectable for tests (httpx.MockTransport, WSGI/ASGI bridges)

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """How the server's certificate is checked (the admin listener's own certificate file under HTTPS)."""
        return self._verify

    @property
    def token(self) -> str:
        """The bearer token this client sends ("" when none was found)."""
        return self._token

    @classmethod
    def from_config(cls, config: AppConfig, *, token: str | None = None) -> AdminClient:
        host = config.admin.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        found = find_token(token, config.admin_token_path)
        if not config.admin.tls_certfile:
            return cls(f"http://{host}:{config.admin.port}", token=found)
        # HTTPS on the admin port: trust the listener's own certificate file (this is the same host), whatever
        # names it carries (it need not name 127.0.0.1).
        context = ssl.create_default_context(cafile=config.admin.tls_certfile)
        context.check_hostname = False
        return cls(f"https://{host}:{config.admin.port}", token=found, verify=context)

    def call(self, method: str, path: str, *, body: Any = None, long: bool = False, auth: bool = True) -> Any:
        """One request; the answer's JSON (None when it has none). Failures raise domain errors (module docstring)."""
        response = self._send(method, path, body=body, long=long, auth=auth)
        try:
            return response.json()
        except ValueError:
            return None

    def text(self, path: str) -> str:
        """A GET whose answer is text (/metrics)."""
        return self._send("GET", path).text

    def _send(
        self, method: str, path: str, *, body: Any = None, long: bool = False, auth: bool = True
    ) -> httpx.Response:
        url = self._base + path
        timeout = httpx.Timeout(_LONG_TIMEOUT if long else self._timeout, connect=5.0)
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            with httpx.Client(transport=self._transport, timeout=timeout, verify=self._verify) as client:
                response = client.request(method, url, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise BackendUnavailable(f"the gateway's admin API at {self._base} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the gateway's admin API at {self._base} ({type(exc).__name__}); is s3ipfs running?"
            ) from exc
        if response.status_code < 400:
            return response
        try:
            data = response.json()
        except ValueError:
            data = None
        message = data.get("error") if isinstance(data, dict) else None
        text = message or f"HTTP {response.status_code} from {method} {path}"
        status = response.status_code
        if status == 401:
            hint = "" if self._token else f" (no token found: run `s3ipfs admin login` or set ${TOKEN_ENV})"
            raise AdminAuthError(f"not authenticated: {text}{hint}")
        if status == 403:
            raise AdminAuthError(f"not allowed: {text}")
        if status in (415, 421):
            raise AdminAuthError(f"the admin API refused the request's form: {text}")
        if status == 503:
            raise BackendUnavailable(text)
        if status >= 500:
            raise BackendError(text)
        raise RequestError(text)
