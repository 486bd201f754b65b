"""Static server for the shopper chat page and the agent desk page.

Only these are served, so nothing else in the repo can leak through a crafted URL: ``/`` (the
shopper's page), ``/agent`` (the agent desk: its login happens over the desk's socket, against
the shop's agent accounts, so this server holds no secret), ``/config.js`` (generated from the
environment, so one build of the pages works for every deployment) and files under
``/static/`` and ``/vendor/``. Every answer carries
security headers; the Content-Security-Policy allows scripts from this origin only and network
connections to this origin and the configured Rasa server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import posixpath
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

logger = logging.getLogger("web")

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
VENDOR_DIR = WEB_DIR / "vendor"
MOUNTS = {"static": STATIC_DIR, "vendor": VENDOR_DIR}
SERVED_SUFFIXES = {".html", ".js", ".css", ".svg", ".png", ".ico", ".txt"}


def rasa_public_url(env: Optional[dict[str, str]] = None) -> str:
    """The Rasa URL the browser connects to: ``RASA_PUBLIC_URL`` or localhost on ``RASA_PORT``."""
    env = os.environ if env is None else env
    url = (env.get("RASA_PUBLIC_URL") or "").strip()
    if not url:
        url = f"http://localhost:{env.get('RASA_PORT') or '5005'}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"RASA_PUBLIC_URL must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def page_config(env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Settings handed to the page as ``window.SHOP_CHAT_CONFIG``."""
    env = os.environ if env is None else env
    return {
        "rasaUrl": rasa_public_url(env),
        "socketPath": env.get("RASA_SOCKET_PATH") or "/socket.io",
        "title": env.get("WEB_CHAT_TITLE") or "Store assistant",
        "storageKey": "shop-chat",
    }


def config_js(config: dict[str, Any]) -> bytes:
    """The ``config.js`` body; JSON is a valid JS literal, ``<`` escaped for good measure.

    Settings a store's page put in ``window.SHOP_CHAT_CONFIG`` before this script (a signed-in
    shopper's ``customerToken``, docs/web.md) are kept; the server's own settings win.
    """
    body = json.dumps(config, ensure_ascii=True).replace("<", "\\u003c")
    return (
        "window.SHOP_CHAT_CONFIG = Object.freeze("
        f"Object.assign({{}}, window.SHOP_CHAT_CONFIG || {{}}, {body}));\n"
    ).encode()


def content_security_policy(rasa_url: str) -> str:
    """CSP that lets the page talk to itself and to Rasa (HTTP polling and WebSocket) only."""
    parts = urlsplit(rasa_url)
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    rasa_origin = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: https:",
            f"connect-src 'self' {rasa_origin} {ws_scheme}://{parts.netloc}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class ChatPageHandler(SimpleHTTPRequestHandler):
    """Serves the page, its generated config and whitelisted static files."""

    server_version = "shop-chat"
    sys_version = ""
    config: dict[str, Any] = {}
    csp = ""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".html": "text/html; charset=utf-8",
        ".txt": "text/plain; charset=utf-8",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(STATIC_DIR), **kwargs)

    def end_headers(self) -> None:
        """Security and caching headers on every answer."""
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        # The page is tiny; always revalidate so a deploy is picked up at once.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        """Route ``/``, ``/config.js``, ``/healthz`` and static files; 404 for anything else."""
        path = urlsplit(self.path).path
        if path == "/config.js":
            self._send_bytes(config_js(self.config), "text/javascript; charset=utf-8")
        elif path == "/healthz":
            self._send_bytes(b'{"status":"ok"}', "application/json")
        else:
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        """HEAD follows the same routing as GET for static files."""
        super().do_HEAD()

    def _send_bytes(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def translate_path(self, path: str) -> str:
        """Map a URL to a file under a mount, or to a path that does not exist."""
        missing = str(WEB_DIR / "__missing__")
        url_path = posixpath.normpath(unquote(urlsplit(path).path))
        if url_path in ("/", "/index.html"):
            return str(STATIC_DIR / "index.html")
        if url_path in ("/agent", "/agent/"):
            return str(STATIC_DIR / "agent.html")
        parts = [p for p in url_path.split("/") if p]
        if len(parts) < 2 or parts[0] not in MOUNTS or any(p.startswith(".") for p in parts):
            return missing
        root = MOUNTS[parts[0]]
        target = root.joinpath(*parts[1:]).resolve()
        if root not in target.parents or target.suffix not in SERVED_SUFFIXES:
            return missing
        return str(target)

    def list_directory(self, path: Any) -> None:
        """Never list folders."""
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        logger.info("%s %s", self.address_string(), format % args)


def make_server(host: str, port: int, env: Optional[dict[str, str]] = None) -> ThreadingHTTPServer:
    """A ready-to-serve HTTP server; separate from ``main`` so tests can run it in a thread."""
    config = page_config(env)
    handler = type(
        "ConfiguredChatPageHandler",
        (ChatPageHandler,),
        {"config": config, "csp": content_security_policy(config["rasaUrl"])},
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: Optional[list[str]] = None) -> None:
    """``python -m web``: serve the chat page on ``WEB_HOST``:``WEB_PORT``."""
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("WEB_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT") or 8080))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = make_server(args.host, args.port)
    logger.info(
        "chat page on http://%s:%d/ talking to %s",
        args.host,
        args.port,
        server.RequestHandlerClass.config["rasaUrl"],  # type: ignore[attr-defined]
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
