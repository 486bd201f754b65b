"""The web channel's session ids and handlers, without a server (fast; issue 22).

The real stack is attacked in tests/security/test_socket_sessions.py; here the pieces:
signing and verifying ids, the client address, the refusal to start without a secret, and the
socket.io handlers driven directly with python-socketio's per-socket session faked.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any, Dict, List, Optional

import pytest

from web import rasa_channel
from web.rasa_channel import (
    MissingSessionSecret,
    SocketIOInput,
    client_address,
    issue_session_id,
    session_secret,
    trusted_proxy_hops,
    verify_session_id,
)

SECRET = "s3cret-for-the-unit-tests-0123456789"
RASA_SENDER_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


class FakeRequest:
    def __init__(self, ip: str) -> None:
        self.ip = ip


# ---------------------------------------------------------------- ids
def test_issued_ids_are_random_signed_and_valid_rasa_senders() -> None:
    secret = session_secret({"WEB_SESSION_SECRET": SECRET})
    ids = {issue_session_id(secret) for _ in range(200)}
    assert len(ids) == 200
    for session_id in ids:
        assert RASA_SENDER_RE.fullmatch(session_id), session_id
        assert verify_session_id(secret, session_id)


def test_unsigned_altered_or_foreign_ids_do_not_verify() -> None:
    secret = session_secret({"WEB_SESSION_SECRET": SECRET})
    other = session_secret({"WEB_SESSION_SECRET": "another-secret-0123456789"})
    good = issue_session_id(secret)
    random_part, signature = good.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = [
        None, "", 42, {"id": good}, random_part, f"{random_part}.", f"{random_part}.{flipped}",
        f"{random_part[:-1]}x.{signature}", issue_session_id(other), good.upper(), good + "x",
        good + "\n", "a" * 32 + "." + "b" * 43, "some-chosen-name",
    ]
    for session_id in forged:
        assert not verify_session_id(secret, session_id), session_id


@pytest.mark.parametrize("value", [None, "", "   ", "change-me-web-session-secret",
                                   "change-me-something-else-long", "short"])
def test_no_start_without_a_real_secret(value: Optional[str]) -> None:
    env = {} if value is None else {"WEB_SESSION_SECRET": value}
    with pytest.raises(MissingSessionSecret, match="WEB_SESSION_SECRET"):
        session_secret(env)


def test_the_channel_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_SESSION_SECRET", raising=False)
    channel = SocketIOInput.from_credentials({"session_persistence": True})
    with pytest.raises(MissingSessionSecret):
        channel.blueprint(lambda message: asyncio.sleep(0))


# ---------------------------------------------------------------- client address
def test_client_address_is_the_peer_unless_proxies_are_trusted() -> None:
    environ = {"REMOTE_ADDR": "127.0.0.1", "sanic.request": FakeRequest("203.0.113.7"),
               "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.2"}
    assert client_address(environ) == "203.0.113.7"  # engineio's REMOTE_ADDR is a constant
    assert client_address({"REMOTE_ADDR": "192.0.2.1"}) == "192.0.2.1"
    # one trusted proxy appended what it saw; the entry before it is the client's own claim
    assert client_address(environ, hops=1) == "198.51.100.2"
    assert client_address(environ, hops=2) == "6.6.6.6"
    assert client_address({**environ, "HTTP_X_FORWARDED_FOR": "198.51.100.9"}, hops=2) == (
        "198.51.100.9")
    assert client_address({**environ, "HTTP_X_FORWARDED_FOR": ""}, hops=1) == "203.0.113.7"
    assert client_address({**environ, "HTTP_X_FORWARDED_FOR": "not-an-ip"}, hops=1) == (
        "203.0.113.7")


def test_trusted_proxy_hops_setting() -> None:
    assert trusted_proxy_hops({}) == 0
    assert trusted_proxy_hops({"TRUSTED_PROXY_HOPS": " 2 "}) == 2
    for bad in ("-1", "two"):
        with pytest.raises(ValueError, match="TRUSTED_PROXY_HOPS"):
            trusted_proxy_hops({"TRUSTED_PROXY_HOPS": bad})


# ---------------------------------------------------------------- handlers
class Harness:
    """The channel's blueprint with python-socketio's sessions, rooms and emit faked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hops: Optional[str] = None,
                 **credentials: Any) -> None:
        monkeypatch.setenv("WEB_SESSION_SECRET", SECRET)
        if hops is None:
            monkeypatch.delenv("TRUSTED_PROXY_HOPS", raising=False)
        else:
            monkeypatch.setenv("TRUSTED_PROXY_HOPS", hops)
        monkeypatch.delenv("WEB_ORIGIN", raising=False)
        self.channel = SocketIOInput.from_credentials(
            {"session_persistence": True, "metadata_key": "customData", **credentials})
        self.seen: List[Any] = []
        self.emitted: List[tuple] = []
        self.mirrored: List[tuple] = []
        self.sessions: Dict[str, Dict[str, Any]] = {}
        self.rooms: Dict[str, set] = {}

        async def on_new_message(message: Any) -> None:
            self.seen.append(message)
            await message.output_channel.send_text_message(message.sender_id, "reply")

        self.channel.blueprint(on_new_message)
        sio = self.channel.sio
        assert sio is not None
        self.handlers = sio.handlers["/"]

        async def emit(event: str, data: Any = None, room: Optional[str] = None,
                       namespace: Optional[str] = None, **_: Any) -> None:
            if namespace == "/desk":  # shown to agents watching (web/desk.py)
                self.mirrored.append((event, data, room))
            else:
                self.emitted.append((event, data, room))

        async def get_session(sid: str, namespace: Optional[str] = None) -> Dict[str, Any]:
            return self.sessions[sid]

        async def save_session(sid: str, session: Dict[str, Any],
                               namespace: Optional[str] = None) -> None:
            self.sessions[sid] = dict(session)

        @contextlib.asynccontextmanager
        async def session(sid: str, namespace: Optional[str] = None) -> Any:
            data = dict(self.sessions[sid])
            yield data
            self.sessions[sid] = data

        async def enter_room(sid: str, room: str, namespace: Optional[str] = None) -> None:
            self.rooms.setdefault(sid, set()).add(room)

        async def leave_room(sid: str, room: str, namespace: Optional[str] = None) -> None:
            self.rooms.setdefault(sid, set()).discard(room)

        for name, fake in [("emit", emit), ("get_session", get_session),
                           ("save_session", save_session), ("session", session),
                           ("enter_room", enter_room), ("leave_room", leave_room)]:
            monkeypatch.setattr(sio, name, fake)

    def run(self, event: str, *args: Any) -> Any:
        return asyncio.run(self.handlers[event](*args))

    def connect(self, sid: str, ip: str = "198.51.100.4", **environ: Any) -> Any:
        return self.run("connect", sid, {"sanic.request": FakeRequest(ip), **environ}, None)

    def confirm(self, sid: str, presented: Any = None) -> str:
        self.emitted.clear()
        self.run("session_request", sid, {"session_id": presented})
        [(event, session_id, room)] = self.emitted
        assert (event, room) == ("session_confirm", sid)
        self.emitted.clear()
        return session_id


def test_session_request_issues_keeps_and_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch)
    h.connect("sid-a")
    first = h.confirm("sid-a")
    assert verify_session_id(SECRET.encode(), first)
    assert h.rooms["sid-a"] == {first}
    assert h.sessions["sid-a"]["session_id"] == first
    h.connect("sid-b")
    assert h.confirm("sid-b", first) == first  # the page's own id after a reload
    random_part = first.split(".")[0]
    for presented in (random_part, first[:-2] + "xx", "chosen-name", {"x": 1}):
        h.connect("sid-c")
        got = h.confirm("sid-c", presented)
        assert got != first and verify_session_id(SECRET.encode(), got)
    # a second request (New conversation) leaves the old room
    again = h.confirm("sid-a")
    assert again != first and h.rooms["sid-a"] == {again}


def test_messages_go_to_the_bound_session_only(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch)
    h.connect("sid-a")
    h.connect("sid-b")
    h.run("user_uttered", "sid-a", {"message": "too early", "session_id": "anything"})
    h.run("user_uttered", "sid-a", {"message": "too early"})
    assert h.seen == [] and h.emitted == []
    a = h.confirm("sid-a")
    b = h.confirm("sid-b")
    h.run("user_uttered", "sid-b", {"message": "into a", "session_id": a})
    h.run("user_uttered", "sid-b", "not an object")
    assert h.seen == [] and h.emitted == []
    h.run("user_uttered", "sid-b", {"message": "mine", "session_id": b})
    h.run("user_uttered", "sid-b", {"message": "mine too"})  # the bound one is implied
    assert [(m.text, m.sender_id, m.input_channel) for m in h.seen] == [
        ("mine", b, "socketio"), ("mine too", b, "socketio")]
    assert h.emitted == [("bot_uttered", {"text": "reply"}, b)] * 2
    # agents watching the conversation see the shopper's message and the reply (web/desk.py)
    assert [(e, d["who"], r) for e, d, r in h.mirrored][:2] == [
        ("transcript_entry", "shopper", f"conversation:{b}"),
        ("transcript_entry", "bot", f"conversation:{b}")]


def test_metadata_client_address_is_the_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch)
    h.connect("sid-a", ip="203.0.113.9", HTTP_X_FORWARDED_FOR="6.6.6.6")
    a = h.confirm("sid-a")
    h.run("user_uttered", "sid-a", {"message": "hi", "session_id": a, "customData": {
        "client_address": "6.6.6.6", "customer_token": "header.payload.sig", "x": 1}})
    h.run("user_uttered", "sid-a", {"message": "hi", "session_id": a,
                                    "customData": '{"customer_token": "t2"}'})
    h.run("user_uttered", "sid-a", {"message": "hi", "session_id": a})
    assert [m.metadata for m in h.seen] == [
        {"client_address": "203.0.113.9", "customer_token": "header.payload.sig", "x": 1},
        {"client_address": "203.0.113.9", "customer_token": "t2"},
        {"client_address": "203.0.113.9"},
    ]
    h.seen.clear()
    for bad in ("{not json", ["a"], {"blob": "x" * rasa_channel.MAX_METADATA_BYTES}):
        h.run("user_uttered", "sid-a", {"message": "hi", "session_id": a, "customData": bad})
    assert h.seen == []


def test_trusted_proxy_address(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, hops="1")
    h.connect("sid-a", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")
    a = h.confirm("sid-a")
    h.run("user_uttered", "sid-a", {"message": "hi", "session_id": a})
    assert h.seen[0].metadata == {"client_address": "203.0.113.5"}


def test_the_guard_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, max_message_chars=10)
    h.connect("sid-a")
    a = h.confirm("sid-a")
    h.run("user_uttered", "sid-a", {"message": "x" * 11, "session_id": a})
    h.run("user_uttered", "sid-a", {"message": " ", "session_id": a})
    assert h.seen == []
    assert [(e, r) for e, _, r in h.emitted] == [("bot_uttered", a), ("bot_uttered", a)]
