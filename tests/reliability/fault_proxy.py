"""A small fault-injecting HTTP proxy, placed between the action server and the shop or the LLM.

The only fake of the reliability suite, and only for faults injected on purpose: in ``pass`` mode
every request goes to the real upstream service unchanged. Modes (``FaultProxy.set``):

- ``pass``: forward to the upstream, return its answer;
- ``refuse``: nothing listens on the port (connection refused);
- ``delay``: wait ``delay`` seconds (beyond the caller's timeout), then forward;
- ``status``: answer ``status`` (500/502/503) with a small JSON error body, forward nothing;
- ``malformed``: answer 200 with a truncated JSON body, forward nothing;
- ``lose_reply``: forward (the upstream does the work), then answer 502 as if the reply was lost.

Every request that reaches the proxy is recorded (method, path, Idempotency-Key, mode), so the
tests can count retries of reads and check that writes are not repeated blindly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import requests

from tests.conversations.harness import free_port

HOP_BY_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding",
              "accept-encoding"}


@dataclass
class Seen:
    method: str
    path: str
    idem_key: Optional[str]
    mode: str
    at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a mode switch applies at once
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        mode, delay, status = proxy.mode, proxy.delay, proxy.status
        if proxy.only_method and self.command != proxy.only_method:
            mode = "pass"  # the fault hits one kind of request (e.g. the writes) only
        with proxy.lock:
            proxy.seen.append(Seen(self.command, self.path, self.headers.get("Idempotency-Key"),
                                   mode, time.monotonic()))
        try:
            if mode == "status":
                self._reply(status, b'{"error": {"code": "injected", "message": "injected"}}')
                return
            if mode == "malformed":
                self._reply(200, b'{"order_id": "#W70173')
                return
            if mode == "delay":
                time.sleep(delay)
            answer = self._forward(body)
            if mode == "lose_reply":
                self._reply(502, b"")
                return
            if answer is None:
                self._reply(502, b'{"error": {"code": "no_upstream", "message": "no upstream"}}')
            else:
                self._reply(answer.status_code, answer.content,
                            answer.headers.get("Content-Type", "application/json"))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (timeout): exactly what a slow service sees too

    def _forward(self, body: bytes) -> Optional[requests.Response]:
        upstream = self.server.proxy.upstream
        if not upstream:
            return None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            return requests.request(self.command, upstream + self.path, data=body or None,
                                    headers=headers, timeout=60)
        except requests.RequestException:
            return None

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class FaultProxy:
    """``FaultProxy(upstream).start()``; ``url`` is what the caller uses instead of upstream."""

    def __init__(self, upstream: Optional[str], port: Optional[int] = None) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.port = port or free_port()
        self.mode = "pass"
        self.only_method: Optional[str] = None
        self.delay = 6.0
        self.status = 503
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._server: Optional[_Server] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.proxy = self
        threading.Thread(target=server.serve_forever, daemon=True,
                         kwargs={"poll_interval": 0.1}).start()
        self._server = server

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set(self, mode: str, *, delay: Optional[float] = None,
            status: Optional[int] = None, only_method: Optional[str] = None) -> None:
        """Switch the fault; ``refuse`` closes the listening socket, any other mode reopens it.
        ``only_method`` (e.g. "POST") applies the fault to that method only."""
        self.only_method = only_method
        if delay is not None:
            self.delay = delay
        if status is not None:
            self.status = status
        self.mode = mode
        if mode == "refuse":
            self._close()
        else:
            self._listen()

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def requests_to(self, method: str, path_part: str = "") -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and path_part in s.path]

    def stop(self) -> None:
        self._close()
