"""The TUI's one door to the daemon: the shared admin API client, plus typed calls the screens use.

The client is the one the CLI uses (`appliance.api.admin.client.AdminClient`, with its bearer token).
Every call here blocks (httpx), so screens call them from thread workers, never from the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from appliance.api.admin.client import AdminClient, find_token
from appliance.errors import BackendUnavailable, RequestError

if TYPE_CHECKING:
    from appliance.config import AppConfig

__all__ = ["AdminApi", "AdminClient", "Ready"]

_JSON = dict[str, Any]
_PROBE_TIMEOUT = 3.0  # a dashboard refresh must not hang on a wedged daemon


@dataclass(frozen=True, slots=True)
class Ready:
    """The daemon's readiness: `ready` overall and (component, ready, reason) for each component."""

    ready: bool
    components: tuple[tuple[str, bool, str], ...]


class AdminApi:
    """Typed calls over one AdminClient; raises the client's domain errors (BackendUnavailable when down)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        client: AdminClient | None = None,
        token_finder: Callable[[], str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client = client if client is not None else AdminClient(self.base_url, token=token)
        # The daemon writes a new local root token at every start: a finder (re-reading it) keeps the TUI working
        # across a restart of the daemon.
        self._finder = token_finder
        # The polled reads (health, ready, metrics) reuse one connection pool: a new httpx client per call builds
        # an SSL context each time, which alone costs a few % of a core at a 1 s refresh.
        self._http = httpx.Client(timeout=_PROBE_TIMEOUT, verify=self._client.verify)

    @property
    def client(self) -> AdminClient:
        """The admin client, with the current token."""
        if self._finder is not None:
            token = self._finder()
            if token and token != self._token:
                self._token = token
                self._client = AdminClient(self.base_url, token=token, verify=self._client.verify)
        return self._client

    def close(self) -> None:
        self._http.close()

    @classmethod
    def from_config(cls, config: AppConfig) -> AdminApi:
        """The admin API the config names (admin.host/admin.port; a wildcard host means loopback)."""
        client = AdminClient.from_config(config)
        return cls(
            client.base_url,
            token=client.token,
            client=client,
            token_finder=lambda: find_token(None, config.admin_token_path),
        )

    def health(self) -> bool:
        """True when the daemon's admin API answers /health; BackendUnavailable when it does not."""
        data = self._get_json_any_status("/health")
        return data.get("status") == "ok"

    def ready(self) -> Ready:
        # /ready answers 503 with the same document when a component is down: read it either way.
        data = self._get_json_any_status("/ready")
        found = data.get("components")
        components: dict[str, Any] = found if isinstance(found, dict) else {}
        rows = tuple(
            (str(name), bool(info.get("ready")), str(info.get("reason", "")))
            for name, info in sorted(components.items())
            if isinstance(info, dict)
        )
        return Ready(ready=data.get("status") == "ready", components=rows)

    def metrics_text(self) -> str:
        """The Prometheus exposition text of /metrics (not JSON, so not through `call`)."""
        response = self._get("/metrics")
        if response.status_code >= 400:
            raise RequestError(f"HTTP {response.status_code} from GET /metrics")
        return response.text

    def pins_summary(self) -> _JSON:
        return dict(self.client.call("GET", "/pins/summary"))

    def peers(self) -> list[_JSON]:
        data = self.client.call("GET", "/peers")
        return [p for p in data.get("peers", []) if isinstance(p, dict)]

    def reconcile(self, *, dry_run: bool) -> _JSON:
        return dict(self.client.call("POST", f"/reconcile?dry_run={int(dry_run)}", long=True))

    def rebalance(self, *, dry_run: bool) -> _JSON:
        return dict(self.client.call("POST", f"/rebalance?dry_run={int(dry_run)}", long=True))

    def batches(self) -> list[_JSON]:
        data = self.client.call("GET", "/batches")
        return [b for b in data.get("batches", []) if isinstance(b, dict)]

    def cancel_batch(self, batch_id: str) -> _JSON:
        return dict(self.client.call("DELETE", f"/batches/{batch_id}"))

    def _get(self, path: str) -> httpx.Response:
        self.client  # noqa: B018 - picks up a new token
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            return self._http.get(self.base_url + path, headers=headers)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the gateway's admin API at {self.base_url} ({type(exc).__name__}); is s3ipfs running?"
            ) from exc

    def _get_json_any_status(self, path: str) -> _JSON:
        response = self._get(path)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RequestError(f"HTTP {response.status_code} from GET {path}")
        return data
