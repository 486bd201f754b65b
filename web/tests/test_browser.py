"""The shopper chat page in a real browser (Debian's Chromium driven by Playwright).

The module starts what it needs on free ports: the Rasa server with the trained model in
``models/`` (a temporary SQLite tracker store), and the page's static server in a thread.
Then it holds conversations and asserts what the shopper sees. Nothing is downloaded:
Playwright's pip wheel brings its driver, the browser is ``/usr/bin/chromium``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from playwright import sync_api  # noqa: E402 - never skipped: CI installs it

from tests.support import free_port
from web.server import make_server

REPO = Path(__file__).resolve().parents[2]
ACTIONS_TOKEN = secrets.token_hex(16)  # the action server's shared secret (endpoints.yml)
WEB_SESSION_SECRET = secrets.token_hex(16)  # signs the session ids the socket issues
RESULTS = REPO / "results"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
RASA_START_TIMEOUT = 240.0  # seconds; alone ~30-40 s, far more when the 2 cores are busy
REPLY_TIMEOUT_MS = 20_000
BIN = Path(sys.executable).parent
# The credentials Rasa runs with; an override only for trying a change before it lands.
CREDENTIALS = os.environ.get("WEB_TEST_CREDENTIALS") or "credentials.yml"
FIXED_CHANNEL = "web.rasa_channel.SocketIOInput"

GREETING_WORDS = ("virtual assistant",)  # both utter_greet variants say this
CAPABILITIES_TEXT = "Here is what I can do"
UNREACHABLE_TEXT = "Can't reach the assistant"
MARKUP = "<b>x</b><img src=x onerror=alert(1)>"
NEW_SESSION_TEXT = "Your earlier conversation has ended"
SIGNED_ID_RE = re.compile(r"[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43}")  # web/rasa_channel.py
CUSTOMER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.bm90LWEtcmVhbC1zaWduYXR1cmU"


def http_get(url: str, timeout: float = 2.0) -> Optional[int]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: Optional[subprocess.Popen[bytes]]) -> None:
    """SIGTERM the process group we started, SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class ChildServer:
    """A server process we start on a free port, wait for on its health URL, and stop."""

    name = "server"

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str], health: str) -> None:
        self.log_path = workdir / f"{self.name}.log"
        self.health = health
        with open(self.log_path, "ab") as log:
            self.proc: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
                args, cwd=REPO, env={**os.environ, **env}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited:\n{tail(self.log_path)}")
            if http_get(self.health) == 200:
                return
            time.sleep(0.5)
        pytest.fail(f"{self.name} not ready after {timeout:.0f} s:\n{tail(self.log_path)}")

    def stop(self) -> None:
        stop_process(self.proc)


class ShopServer(ChildServer):
    """The real shop backend (``python -m shop``) with a fresh seeded database."""

    name = "shop"

    def __init__(self, workdir: Path, extra_env: Optional[dict[str, str]] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.db = workdir / "shop.db"
        super().__init__(
            workdir, [str(REPO / ".venv-services" / "bin" / "python"), "-m", "shop"],
            {"SHOP_PORT": str(self.port), "SHOP_API_TOKEN": self.token,
             "SHOP_DATABASE_URL": f"sqlite:///{self.db}", **(extra_env or {})},
            f"{self.url}/health",
        )


class ActionServer(ChildServer):
    """``rasa run actions`` talking to the real shop; the LLM points at a closed port (fail
    fast)."""

    name = "actions"

    def __init__(self, workdir: Path, shop: ShopServer) -> None:
        self.port = free_port()
        super().__init__(
            workdir,
            [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(self.port)],
            {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO), "SHOP_URL": shop.url,
             "ACTIONS_TOKEN": ACTIONS_TOKEN, "SANIC_HOST": "127.0.0.1",
             "SHOP_API_TOKEN": shop.token, "LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
             "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            f"http://127.0.0.1:{self.port}/health",
        )


class RasaServer:
    """A ``rasa run`` process that the tests can stop and start again on the same port."""

    def __init__(self, port: int, origin: str, workdir: Path, actions_port: int) -> None:
        self.port = port
        self.origin = origin
        self.url = f"http://127.0.0.1:{port}"
        self.tracker_db = workdir / "tracker.db"
        self.log_path = workdir / "rasa.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(REPO),
            "RASA_PORT": str(port),
            "ACTIONS_PORT": str(actions_port),
            "ACTIONS_TOKEN": ACTIONS_TOKEN,
            "WEB_SESSION_SECRET": WEB_SESSION_SECRET,
            "TRUSTED_PROXY_HOPS": "0",
            "RATE_LIMITS": "off",  # many pages a minute from one address: a load test here
            "RASA_TELEMETRY_ENABLED": "false",
            "WEB_ORIGIN": origin,  # the socket.io channel accepts sockets from this page only
            "TRACKER_DB_URL": f"sqlite:///{self.tracker_db}",
            "LOCK_STORE_URL": "",
        }

    def start(self) -> None:
        cmd = [
            str(BIN / "rasa"), "run",
            "--model", "models",
            "--endpoints", "endpoints.yml",
            "--credentials", CREDENTIALS,
            "--port", str(self.port),
            "--cors", self.origin,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        """Up when the REST channel answers a real message (so the model is loaded)."""
        deadline = time.monotonic() + RASA_START_TIMEOUT
        while time.monotonic() < deadline:
            body = json.dumps({"sender": f"probe-{time.monotonic_ns()}", "message": "hello"})
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"rasa exited with {self.proc.returncode}:\n{self.log_tail()}")
            req = urllib.request.Request(
                f"{self.url}/webhooks/rest/webhook", data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    if resp.status == 200 and isinstance(json.loads(resp.read()), list):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1.0)
        pytest.fail(f"rasa not ready after {RASA_START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self.proc)

    def log_tail(self) -> str:
        return tail(self.log_path)

    def user_events(self, sender_id: str) -> list[dict[str, Any]]:
        """What the tracker store holds as this conversation's user messages."""
        with sqlite3.connect(self.tracker_db) as db:
            rows = db.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
                (sender_id,),
            ).fetchall()
        return [json.loads(data) for (data,) in rows]

    def user_texts(self, sender_id: str) -> list[str]:
        return [event.get("text") for event in self.user_events(sender_id)]


class TcpProxy:
    """A byte-level TCP forwarder between the page and Rasa that the test can cut.

    Cutting it looks to the browser exactly like the Rasa host going away (open sockets
    drop, new connections are refused), and restoring it is instant, so reconnecting can be
    tested without paying for a second Rasa start.
    """

    def __init__(self, target_port: int) -> None:
        self.port = 0  # the first start binds a port the OS picks; later starts reuse it
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.server: Optional[asyncio.base_events.Server] = None
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.writers.difference_update({writer, up_writer})

    async def _start(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=5)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)


# ---------------------------------------------------------------- fixtures
# The proxy and the page server bind their ports (picked by the OS) at once, before Rasa's long
# start: a port only reserved by number could be taken meanwhile by another process.
@pytest.fixture(scope="module")
def rasa_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def proxy(rasa_port: int) -> Iterator[TcpProxy]:
    """The page reaches Rasa through this proxy, so a test can cut the line."""
    p = TcpProxy(rasa_port)
    p.start()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def page_server(proxy: TcpProxy) -> Iterator[ThreadingHTTPServer]:
    rasa_public_url = f"http://127.0.0.1:{proxy.port}"
    httpd = make_server("127.0.0.1", 0, env={"RASA_PUBLIC_URL": rasa_public_url})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def page_origin(page_server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{page_server.server_address[1]}"


@pytest.fixture(scope="module")
def rasa(page_origin: str, rasa_port: int,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    """Rasa with the latest model in models/, and the action server its stories call."""
    if not list((REPO / "models").glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `make train` first")
    if problem := credentials_problem():
        pytest.fail(problem)  # fail fast instead of every reply timing out
    workdir = tmp_path_factory.mktemp("rasa")
    shop = ShopServer(workdir)
    actions = ActionServer(workdir, shop)  # starts while Rasa loads its model
    server = RasaServer(rasa_port, page_origin, workdir, actions.port)
    try:
        shop.wait_ready()
        actions.wait_ready()
        server.start()
        yield server
    finally:
        server.stop()
        actions.stop()
        shop.stop()


@pytest.fixture(scope="module")
def web(rasa: RasaServer, page_origin: str) -> str:
    """The page's origin, once Rasa (behind the proxy) is up."""
    for _ in range(50):
        if http_get(f"{page_origin}/healthz") == 200:
            break
        time.sleep(0.1)
    return page_origin


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium chromium-driver")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: Any, web: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(REPLY_TIMEOUT_MS)
    dialogs: list[str] = []
    errors: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.dialogs = dialogs  # type: ignore[attr-defined]
    pg.errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()


# ---------------------------------------------------------------- helpers
def wait_connected(page: Any, timeout: float = REPLY_TIMEOUT_MS) -> None:
    # Arrow functions, not bare expressions: Playwright evals bare expressions while
    # polling, and the page's CSP (no 'unsafe-eval') rightly refuses that.
    page.wait_for_function(
        "() => Boolean(window.ShopChat && window.ShopChat.isConnected())", timeout=timeout
    )


def open_chat(page: Any, url: str) -> None:
    page.goto(url)
    wait_connected(page)


def bot_messages(page: Any) -> Any:
    return page.locator("#chat-log .msg--bot .msg__bubble")


def user_messages(page: Any) -> Any:
    return page.locator("#chat-log .msg--user .msg__bubble")


def say(page: Any, text: str) -> None:
    """Type into the labelled box and press Enter, as a shopper does."""
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def wait_bot_reply(page: Any, before: int, contains: Optional[str] = None) -> str:
    """Wait for a bot message after the first ``before`` ones; returns the newest text."""
    page.wait_for_function(
        "n => document.querySelectorAll('#chat-log .msg--bot').length > n", arg=before
    )
    if contains:
        page.locator("#chat-log .msg--bot .msg__bubble", has_text=contains).last.wait_for()
    return bot_messages(page).last.inner_text()


def watch_typing(page: Any) -> None:
    """Record in the page whether the typing indicator was ever switched on."""
    page.evaluate(
        """() => {
          window.__typingSeen = false;
          const el = document.getElementById('chat-typing');
          new MutationObserver(() => {
            if (el.classList.contains('chat__typing--on')) window.__typingSeen = true;
          }).observe(el, {attributes: true, attributeFilter: ['class']});
        }"""
    )


# ---------------------------------------------------------------- tests
def credentials_problem() -> Optional[str]:
    """Why the credentials can't serve the page, or None.

    Rasa 3.6's own ``socketio`` channel drops every reply when sessions persist
    (web/rasa_channel.py: with python-socketio >= 5.10 it never joins the session's room).
    """
    creds = yaml.safe_load((REPO / CREDENTIALS).read_text()) or {}
    if FIXED_CHANNEL not in creds:
        return f"{CREDENTIALS} must use `{FIXED_CHANNEL}:` instead of `socketio:` (same settings)"
    return None


def test_credentials_use_the_fixed_socketio_channel() -> None:
    assert credentials_problem() is None, credentials_problem()
    creds = yaml.safe_load((REPO / CREDENTIALS).read_text()) or {}
    assert "socketio" not in creds, "two socket.io channels would both claim /socket.io"
    assert creds[FIXED_CHANNEL].get("session_persistence") is True
    # the REST channel (same /webhooks/rest/webhook URL) with the length/empty/failure guard
    assert "addons.channels.RestInput" in creds and "rest" not in creds
    assert creds[FIXED_CHANNEL].get("max_message_chars") == 2000
    assert creds[FIXED_CHANNEL].get("metadata_key") == "customData"  # what chat.js sends


def test_page_is_served_with_safe_headers(web: str, proxy: TcpProxy) -> None:
    rasa_public_url = f"http://127.0.0.1:{proxy.port}"
    with urllib.request.urlopen(f"{web}/", timeout=5) as resp:
        headers = resp.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert f"ws://127.0.0.1:{proxy.port}" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    with urllib.request.urlopen(f"{web}/config.js", timeout=5) as resp:
        assert rasa_public_url in resp.read().decode()
    assert http_get(f"{web}/web/server.py") == 404
    assert http_get(f"{web}/static/../server.py") == 404
    assert http_get(f"{web}/vendor/") == 404


def test_rasa_cors_allows_only_the_page_origin(web: str, rasa: RasaServer) -> None:
    def allow_origin(origin: str) -> Optional[str]:
        req = urllib.request.Request(
            f"{rasa.url}/webhooks/rest/webhook", method="OPTIONS",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as err:
            return err.headers.get("Access-Control-Allow-Origin")

    assert allow_origin(web) == web
    assert allow_origin("http://evil.example") is None


def test_conversation_greet_capabilities_and_markup(page: Any, web: str) -> None:
    open_chat(page, web)
    # Labelled for screen readers.
    log = page.locator("#chat-log")
    assert log.get_attribute("role") == "log"
    assert log.get_attribute("aria-live") == "polite"
    assert page.get_by_role("button", name="Send").is_visible()
    assert page.evaluate("document.activeElement.id") == "chat-input"

    watch_typing(page)
    say(page, "hello")
    text = wait_bot_reply(page, 0)
    assert any(w in text for w in GREETING_WORDS), text
    assert page.evaluate("window.__typingSeen") is True

    n = bot_messages(page).count()
    say(page, "what can you do?")
    text = wait_bot_reply(page, n, contains=CAPABILITIES_TEXT)
    assert "status of an order" in page.locator("#chat-log").inner_text()

    # Screenshots of a real conversation, desktop and phone-sized (no horizontal scrolling).
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "web_chat.png"))
    page.set_viewport_size({"width": 390, "height": 760})
    page.wait_for_timeout(200)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(RESULTS / "web_chat_phone.png"))
    page.set_viewport_size({"width": 1100, "height": 800})

    n = bot_messages(page).count()
    say(page, MARKUP)
    mine = user_messages(page).last
    mine.wait_for()
    assert mine.inner_text() == MARKUP  # shown literally
    assert page.locator("#chat-log img, #chat-log b").count() == 0  # no element was created
    # Give the assistant a moment to answer (it may also stay silent), then check again.
    with contextlib.suppress(sync_api.TimeoutError):
        page.wait_for_function(
            "n => document.querySelectorAll('#chat-log .msg--bot').length > n", arg=n,
            timeout=8_000,
        )
    assert page.locator("#chat-log img, #chat-log b").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.errors == []  # type: ignore[attr-defined]
    # The input keeps focus after sending, so the shopper can go on typing.
    assert page.evaluate("document.activeElement.id") == "chat-input"

    page.screenshot(path=str(RESULTS / "web_chat_markup.png"))


def test_reload_continues_the_same_session(page: Any, web: str, rasa: RasaServer) -> None:
    open_chat(page, web)
    say(page, "hi there")
    wait_bot_reply(page, 0)
    session_id = page.evaluate("window.ShopChat.sessionId()")
    assert SIGNED_ID_RE.fullmatch(session_id or ""), session_id  # issued by the server
    assert page.evaluate("localStorage.getItem('shop-chat:session')")
    shown_before = user_messages(page).all_inner_texts()

    page.reload()
    wait_connected(page)
    assert page.evaluate("window.ShopChat.sessionId()") == session_id
    assert user_messages(page).all_inner_texts() == shown_before  # transcript restored

    n = bot_messages(page).count()
    say(page, "what can you do")
    wait_bot_reply(page, n, contains=CAPABILITIES_TEXT)
    # Server side: both messages are in one conversation of the tracker store.
    texts = rasa.user_texts(session_id)
    assert texts[-2:] == ["hi there", "what can you do"], texts


def test_buttons_send_their_payload_and_links_are_safe(page: Any, web: str) -> None:
    sent_frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: sent_frames.append(str(p))))
    open_chat(page, web)
    page.evaluate(
        """() => window.ShopChat.renderBotMessage({
            text: "Which order do you mean? See [our help page](https://example.com/help).",
            quick_replies: [
              {content_type: "text", title: "Order <b>#W1</b>", payload: "/greet"},
              {content_type: "text", title: "Something else", payload: "/ask_capabilities"}
            ]})"""
    )
    group = page.get_by_role("group", name="Suggested replies")
    first = group.get_by_role("button", name="Order <b>#W1</b>")
    assert first.is_visible()
    assert page.locator("#chat-log b").count() == 0

    link = page.get_by_role("link", name="our help page")
    assert link.get_attribute("href") == "https://example.com/help"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in (link.get_attribute("rel") or "")
    page.evaluate(
        """() => window.ShopChat.renderBotMessage({
            text: "bad [click](javascript:alert(1)) and <a href='javascript:alert(2)'>x</a>"})"""
    )
    assert page.locator("#chat-log a[href^='javascript']").count() == 0

    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "web_chat_buttons.png"))
    n = bot_messages(page).count()
    first.focus()
    page.keyboard.press("Enter")  # keyboard-usable
    user_messages(page).last.wait_for()
    assert user_messages(page).last.inner_text() == "Order <b>#W1</b>"  # the title is shown
    wait_bot_reply(page, n)
    text = bot_messages(page).last.inner_text()
    assert any(w in text for w in GREETING_WORDS), text  # /greet was understood
    assert any('"/greet"' in f and "user_uttered" in f for f in sent_frames), sent_frames
    assert group.get_by_role("button").first.is_disabled()  # a reply can be chosen once


def test_unreachable_message_then_reconnect(page: Any, web: str, proxy: TcpProxy) -> None:
    open_chat(page, web)
    status = page.locator("#chat-status")
    assert status.is_hidden()
    proxy.stop()  # the assistant's host goes away
    status.wait_for(state="visible", timeout=15_000)
    assert UNREACHABLE_TEXT in status.inner_text()
    assert status.get_attribute("role") == "alert"

    say(page, "what can you do")  # typed while offline: queued, sent after reconnecting
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "web_chat_offline.png"))
    proxy.start()  # back: socket.io reconnects by itself (back-off of at most 5 s)
    wait_connected(page, timeout=30_000)
    assert "Connected again" in (status.text_content() or "")
    wait_bot_reply(page, 0, contains=CAPABILITIES_TEXT)  # the queued message was answered
    status.wait_for(state="hidden", timeout=10_000)


def test_order_status_conversation(page: Any, web: str) -> None:
    """Greet, ask for an order, identify by email and zip, pick the order by button, see its
    status; then "New conversation" is not identified."""
    open_chat(page, web)
    say(page, "hello")
    wait_bot_reply(page, 0)
    n = bot_messages(page).count()
    say(page, "where is my order")
    wait_bot_reply(page, n, contains="email")
    n = bot_messages(page).count()
    say(page, "mei.martin4637@example.com, zip 32124")  # a shopper of the shop's seed data
    wait_bot_reply(page, n, contains="Which order")
    buttons = page.get_by_role("group", name="Suggested replies").last.get_by_role("button")
    assert buttons.count() == 3
    processed = page.get_by_role("button", name=re.compile("#W3288665"))
    n = bot_messages(page).count()
    processed.click()
    text = wait_bot_reply(page, n, contains="#W3288665")
    assert "processed" in text and "Jigsaw Puzzle" in text
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "web_chat_order_status.png"))

    # "New conversation" starts unidentified: a new session id, so the email is asked again.
    identified = page.evaluate("window.ShopChat.sessionId()")
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_function(
        "old => window.ShopChat.isConnected() && window.ShopChat.sessionId() !== old",
        arg=identified)
    assert bot_messages(page).count() == 0
    say(page, "where is my order")
    wait_bot_reply(page, 0, contains="email")


def settled_texts(rasa: RasaServer, sender_id: str, count: int) -> list[str]:
    """The conversation's user texts once it holds ``count`` (Rasa stores the tracker after
    the replies went out), or what it holds after 15 s."""
    deadline = time.monotonic() + 15
    while len(found := rasa.user_texts(sender_id)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_new_conversation_gets_a_new_session_and_reload_keeps_it(
        page: Any, web: str, rasa: RasaServer) -> None:
    open_chat(page, web)
    say(page, "hello")
    wait_bot_reply(page, 0)
    first = page.evaluate("window.ShopChat.sessionId()")
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_function(
        "old => window.ShopChat.isConnected() && window.ShopChat.sessionId() !== old", arg=first)
    second = page.evaluate("window.ShopChat.sessionId()")
    assert SIGNED_ID_RE.fullmatch(second), second
    assert page.evaluate("localStorage.getItem('shop-chat:session')") == json.dumps(second)
    assert user_messages(page).count() == 0 and bot_messages(page).count() == 0

    page.reload()
    wait_connected(page)
    assert page.evaluate("window.ShopChat.sessionId()") == second  # the reload keeps the new id
    say(page, "what can you do")
    wait_bot_reply(page, 0, contains=CAPABILITIES_TEXT)
    assert settled_texts(rasa, second, 1) == ["what can you do"]
    assert rasa.user_texts(first) == ["hello"]  # the old conversation got nothing more


def test_an_id_the_server_did_not_sign_is_replaced(page: Any, web: str, rasa: RasaServer) -> None:
    """A stored id the server did not issue (or signed with an earlier secret) is not kept: the
    page gets a new one and drops the transcript of a conversation the server won't continue."""
    forged = "A" * 32 + "." + "B" * 43
    page.add_init_script(
        "if (!sessionStorage.getItem('seeded')) {"
        " sessionStorage.setItem('seeded', '1');"
        f" localStorage.setItem('shop-chat:session', {json.dumps(json.dumps(forged))});"
        " localStorage.setItem('shop-chat:log',"
        " JSON.stringify([{who: 'user', text: 'an old message'}])); }"
    )
    open_chat(page, web)
    issued = page.evaluate("window.ShopChat.sessionId()")
    assert issued != forged and SIGNED_ID_RE.fullmatch(issued), issued
    assert user_messages(page).count() == 0
    assert NEW_SESSION_TEXT in page.locator("#chat-status").inner_text()
    say(page, "hello")
    wait_bot_reply(page, 0)
    assert settled_texts(rasa, issued, 1) == ["hello"]
    assert rasa.user_texts(forged) == []


def test_customer_token_goes_with_each_message(page: Any, web: str, rasa: RasaServer) -> None:
    """A store's page that signed the shopper in hands the page their token (docs/web.md)."""
    sent_frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: sent_frames.append(str(p))))
    page.add_init_script(
        f"window.SHOP_CHAT_CONFIG = {{customerToken: {json.dumps(CUSTOMER_TOKEN)}}};")
    open_chat(page, web)
    session_id = page.evaluate("window.ShopChat.sessionId()")
    say(page, "hello")
    wait_bot_reply(page, 0)
    page.evaluate("window.ShopChat.setCustomerToken(null)")  # signed out
    n = bot_messages(page).count()
    say(page, "what can you do")
    wait_bot_reply(page, n, contains=CAPABILITIES_TEXT)
    uttered = [f for f in sent_frames if "user_uttered" in f]
    assert len(uttered) == 2 and CUSTOMER_TOKEN in uttered[0], uttered
    assert "customData" not in uttered[1]
    settled_texts(rasa, session_id, 2)
    metadata = [e.get("metadata") or {} for e in rasa.user_events(session_id)]
    assert metadata[0].get("customer_token") == CUSTOMER_TOKEN
    assert "customer_token" not in metadata[1]
    # the address the channel saw (the test's proxy on loopback), never one the page sent
    assert [m.get("client_address") for m in metadata] == ["127.0.0.1"] * 2
    assert CUSTOMER_TOKEN not in json.dumps(page.evaluate("() => ({...localStorage})"))


# Keep this one last: it stops the module's Rasa server for good.
def test_unreachable_message_when_rasa_stops(page: Any, web: str, rasa: RasaServer) -> None:
    open_chat(page, web)
    status = page.locator("#chat-status")
    rasa.stop()
    status.wait_for(state="visible", timeout=15_000)
    assert UNREACHABLE_TEXT in status.inner_text()
    # The page keeps trying and stays usable: typing still shows the shopper's message.
    say(page, "are you there?")
    assert user_messages(page).last.inner_text() == "are you there?"
    assert UNREACHABLE_TEXT in status.inner_text()
