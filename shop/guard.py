"""ASGI guard in front of the app: the bearer token, and a hard limit on body size.

Plain ASGI rather than a dependency, so a refused request costs no routing or parsing, and a
chunked upload is cut off at the limit instead of read whole.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop.errors import error_body


class Guard:
    """Bearer-token check on everything but GET /health, and a hard limit on body size."""

    def __init__(self, app: ASGIApp, token: str, max_body: int) -> None:
        self.app = app
        self.token = f"Bearer {token}".encode()
        self.max_body = max_body

    async def _send_error(self, send: Send, status: int, code: str, message: str,
                          extra: list[tuple[bytes, bytes]] | None = None) -> None:
        payload = json.dumps(error_body(code, message)).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(payload)).encode())] + (extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = dict(scope.get("headers") or [])
        if not (path == "/health" and method in ("GET", "HEAD")):
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                await self._send_error(send, 401, "unauthorized",
                                       "Missing or wrong bearer token.",
                                       [(b"www-authenticate", b"Bearer")])
                return
        if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = True
            if too_big:
                await self._send_error(send, 413, "payload_too_large",
                                       f"Request body is limited to {self.max_body} bytes.")
                return
        # Read the (bounded) body up front so a chunked upload cannot exceed the limit.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._send_error(send, 413, "payload_too_large",
                                       f"Request body is limited to {self.max_body} bytes.")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
