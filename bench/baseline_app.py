"""The bare-HTTP baseline: a trivial Quart app served by hypercorn exactly like the gateway (2 workers).

    python -m hypercorn --workers 2 --bind 127.0.0.1:PORT bench.baseline_app:app

PUT/POST on any path consumes the body and answers 200; GET on any path answers 1 KiB (or `?size=N` bytes).
"""

from __future__ import annotations

from quart import Quart, Response, request

__all__ = ["PAYLOAD", "app"]

PAYLOAD = bytes(range(256)) * 4  # 1 KiB

app = Quart(__name__)
app.config.update(MAX_CONTENT_LENGTH=None, RESPONSE_TIMEOUT=None, BODY_TIMEOUT=None)


@app.route("/", defaults={"path": ""}, methods=["GET", "PUT", "POST"])
@app.route("/<path:path>", methods=["GET", "PUT", "POST"])
async def handle(path: str) -> Response:
    if request.method == "GET":
        size = request.args.get("size", type=int)
        body = PAYLOAD if size is None else PAYLOAD * (size // len(PAYLOAD)) + PAYLOAD[: size % len(PAYLOAD)]
        return Response(body, status=200, content_type="application/octet-stream")
    received = 0
    async for chunk in request.body:
        received += len(chunk)
    return Response(b"", status=200, headers={"x-received": str(received)})
