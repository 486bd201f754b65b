"""The shopper-facing channels: length limit, a reply to every message, no silent failed turn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.run import create_http_input_channels
from sanic.exceptions import InvalidUsage

from addons.channels import (
    DEFAULT_MAX_MESSAGE_CHARS,
    NO_TEXT,
    PROCESSOR_LOGGER,
    SOMETHING_WENT_WRONG,
    TOO_LONG_TEXT,
    RestInput,
    guard_messages,
    has_content,
)
from web.rasa_channel import SocketIOInput

REPO = Path(__file__).resolve().parents[2]
TOO_LONG = TOO_LONG_TEXT.format(limit=DEFAULT_MAX_MESSAGE_CHARS)


class FakeRasa:
    """Stands in for ``agent.handle_message``: records messages, replies / fails as told."""

    def __init__(self, reply: Optional[str] = "hi!", fail: Optional[str] = None,
                 delay: float = 0.0) -> None:
        self.reply = reply
        self.fail = fail  # "log": an action failed (Rasa logs it and goes on); "raise"
        self.delay = delay
        self.seen: List[str] = []

    async def __call__(self, message: UserMessage) -> None:
        self.seen.append(message.text)
        await asyncio.sleep(self.delay)
        if self.fail == "raise":
            raise RuntimeError("tracker store exploded")
        if self.fail == "log":
            try:
                raise ConnectionError("action server at http://127.0.0.1:5055 refused")
            except ConnectionError:
                logging.getLogger(PROCESSOR_LOGGER).exception(
                    "Encountered an exception while running action 'action_order_status'."
                )
        await asyncio.sleep(self.delay)
        if self.reply:
            await message.output_channel.send_response(message.sender_id, {"text": self.reply})


def turn(rasa: FakeRasa, text: Any, limit: int = DEFAULT_MAX_MESSAGE_CHARS) -> List[str]:
    collector = CollectingOutputChannel()
    message = UserMessage(text, collector, "shopper-1", input_channel="rest")
    asyncio.run(guard_messages(rasa, limit)(message))
    return [m.get("text") for m in collector.messages]


# ---------------------------------------------------------------- length limit
def test_a_message_over_the_limit_is_not_processed() -> None:
    rasa = FakeRasa()
    assert turn(rasa, "x" * (DEFAULT_MAX_MESSAGE_CHARS + 1)) == [TOO_LONG]
    assert "2,000 characters" in TOO_LONG
    assert rasa.seen == []  # never reaches the NLU: no event, the conversation is unchanged


def test_a_message_at_the_limit_is_processed() -> None:
    rasa = FakeRasa()
    assert turn(rasa, "y" * DEFAULT_MAX_MESSAGE_CHARS) == ["hi!"]
    assert rasa.seen == ["y" * DEFAULT_MAX_MESSAGE_CHARS]


@pytest.mark.parametrize("text", ["x" * 100_000, "🙂" * 25_000, "a" * 99_990 + "@example"])
def test_100kb_messages_get_the_too_long_reply(text: str) -> None:
    rasa = FakeRasa()
    assert turn(rasa, text) == [TOO_LONG]
    assert rasa.seen == []


def test_the_limit_is_configurable() -> None:
    rasa = FakeRasa()
    assert turn(rasa, "x" * 11, limit=10) == [TOO_LONG_TEXT.format(limit=10)]
    assert turn(rasa, "x" * 10, limit=10) == ["hi!"]


# ---------------------------------------------------------------- messages without text
@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x1f", "\u200b\u200e\ufeff", "\t\n", None])
def test_a_message_without_text_gets_a_reply(text: Optional[str]) -> None:
    rasa = FakeRasa()
    assert turn(rasa, text) == [NO_TEXT]
    assert rasa.seen == []


@pytest.mark.parametrize("text", ["hi", "🙂", "שלום", "/greet", "  ok  ", "\x00a"])
def test_content(text: str) -> None:
    assert has_content(text)


# ---------------------------------------------------------------- failed turns
def test_a_turn_whose_action_failed_without_a_reply_gets_a_polite_one() -> None:
    assert turn(FakeRasa(reply=None, fail="log"), "status of #W3288665") == [SOMETHING_WENT_WRONG]
    for word in ("try again", "human"):
        assert word in SOMETHING_WENT_WRONG


def test_an_exception_in_rasa_gets_a_polite_reply() -> None:
    assert turn(FakeRasa(reply=None, fail="raise"), "hello") == [SOMETHING_WENT_WRONG]


def test_a_failed_action_that_still_replied_gets_nothing_extra() -> None:
    assert turn(FakeRasa(reply="Anything else?", fail="log"), "hello") == ["Anything else?"]


def test_a_legitimately_silent_turn_stays_silent() -> None:
    assert turn(FakeRasa(reply=None), "/session_start") == []


def test_a_failure_in_one_conversation_does_not_mark_another() -> None:
    """Two turns at once: only the one whose action failed gets the apology."""
    failing = FakeRasa(reply=None, fail="log", delay=0.05)
    silent = FakeRasa(reply=None, delay=0.05)
    outputs = {"a": CollectingOutputChannel(), "b": CollectingOutputChannel()}

    async def both() -> None:
        await asyncio.gather(
            guard_messages(failing)(UserMessage("status?", outputs["a"], "a")),
            guard_messages(silent)(UserMessage("/session_start", outputs["b"], "b")),
        )

    asyncio.run(both())
    assert [m["text"] for m in outputs["a"].messages] == [SOMETHING_WENT_WRONG]
    assert outputs["b"].messages == []


def test_replies_carry_no_internal_detail() -> None:
    for text in (TOO_LONG, NO_TEXT, SOMETHING_WENT_WRONG):
        for internal in ("Exception", "Error", "http", "127.0.0.1", ".py", "action_"):
            assert internal not in text


# ---------------------------------------------------------------- the REST channel
class FakeRequest:
    """What RestInput's handler reads of a Sanic request: ``json`` and ``args``."""

    def __init__(self, body: Any = None, raw: Optional[bytes] = None) -> None:
        self._body = body
        self._raw = raw
        self.args: Dict[str, str] = {}

    @property
    def json(self) -> Any:
        if self._raw is not None:
            raise InvalidUsage("Failed when parsing body as json")
        return self._body


def post(channel: RestInput, rasa: FakeRasa, request: FakeRequest) -> Any:
    blueprint = channel.blueprint(rasa)
    (receive,) = [r.handler for r in blueprint._future_routes if r.uri == "/webhook"]
    response = asyncio.run(receive(request))
    assert response.status == 200
    body = json.loads(response.body)
    assert isinstance(body, list)
    return body


def test_rest_channel_answers_a_message() -> None:
    rasa = FakeRasa()
    body = post(RestInput(), rasa, FakeRequest({"sender": "s1", "message": "hello"}))
    assert body == [{"recipient_id": "s1", "text": "hi!"}]
    assert rasa.seen == ["hello"]


def test_rest_channel_refuses_a_long_message_with_a_json_list() -> None:
    rasa = FakeRasa()
    body = post(RestInput(), rasa, FakeRequest({"sender": "s1", "message": "x" * 100_000}))
    assert [m["text"] for m in body] == [TOO_LONG]
    assert rasa.seen == []


def test_rest_channel_apologises_for_a_failed_turn() -> None:
    body = post(RestInput(), FakeRasa(reply=None, fail="log"),
                FakeRequest({"sender": "s1", "message": "status of #W3288665"}))
    assert [m["text"] for m in body] == [SOMETHING_WENT_WRONG]


@pytest.mark.parametrize("request_", [
    FakeRequest(raw=b"{not json"), FakeRequest(["a list"]), FakeRequest({"sender": "s1"}),
    FakeRequest({"sender": "s1", "message": 12}), FakeRequest({"message": {"text": "x"}}),
], ids=["invalid-json", "list", "no-message", "number", "object"])
def test_rest_channel_answers_malformed_requests_with_a_json_list(request_: FakeRequest) -> None:
    rasa = FakeRasa()
    assert [m["text"] for m in post(RestInput(), rasa, request_)] == [NO_TEXT]
    assert rasa.seen == []


@pytest.mark.parametrize("body, status", [
    ({"message": "hi"}, 400), ({"sender": "", "message": "hi"}, 400),
    ({"sender": "a b", "message": "hi"}, 400), ({"sender": 7, "message": "hi"}, 400),
    ({"sender": "s" * 129, "message": "hi"}, 400),
    ({"sender": "s1", "message": "hi", "metadata": {"x": "y" * 5000}}, 413),
    ({"sender": "s1", "message": "hi"}, None),
    ({"sender": "web:7f3a-b_2.x@shop", "message": ""}, None),
    ({"sender": "s1", "message": "hi", "metadata": {"page": "/help"}}, None),
], ids=["missing", "empty", "space", "number", "too-long", "big-metadata", "ok", "ok-chars",
        "ok-metadata"])
def test_rest_channel_refuses_requests_without_their_own_sender(body: Any, status: Any) -> None:
    request = FakeRequest(body)
    request.method = "POST"
    refused = RestInput().refusal(request)
    assert (refused.status if refused is not None else None) == status
    if refused is not None:
        assert json.loads(refused.body)["message"]


# ---------------------------------------------------------------- configuration
def test_credentials_use_the_guarded_channels() -> None:
    channels = create_http_input_channels(None, str(REPO / "credentials.yml"))
    by_type = {type(c): c for c in channels}
    assert set(by_type) == {RestInput, SocketIOInput}
    rest, web = by_type[RestInput], by_type[SocketIOInput]
    assert rest.name() == "rest" and rest.url_prefix() == "rest"  # /webhooks/rest/webhook
    assert rest.max_message_chars == web.max_message_chars == 2000
    assert web.session_persistence is True
    assert web.user_message_evt == "user_uttered" and web.bot_message_evt == "bot_uttered"


def test_max_message_chars_must_be_positive() -> None:
    assert RestInput.from_credentials({"max_message_chars": "500"}).max_message_chars == 500
    assert RestInput.from_credentials(None).max_message_chars == DEFAULT_MAX_MESSAGE_CHARS
    with pytest.raises(ValueError):
        RestInput.from_credentials({"max_message_chars": 0})


# ---------------------------------------------------------------- the web page's socket.io channel
def test_socketio_channel_guards_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_SESSION_SECRET", "a-test-secret-of-enough-characters")
    channel = SocketIOInput.from_credentials(
        {"session_persistence": True, "max_message_chars": 10}
    )
    rasa = FakeRasa(reply=None, fail="log")
    channel.blueprint(rasa)
    sio = channel.sio
    emitted: List[tuple] = []
    sessions: Dict[str, Dict[str, Any]] = {}

    async def emit(event: str, data: Any, room: Optional[str] = None,
                   namespace: Optional[str] = None, **_: Any) -> None:
        if namespace != "/desk":  # not the copies shown to agents watching (web/desk.py)
            emitted.append((event, data, room))

    async def get_session(sid: str, namespace: Optional[str] = None) -> Dict[str, Any]:
        return sessions[sid]

    async def save_session(sid: str, session: Dict[str, Any], **_: Any) -> None:
        sessions[sid] = dict(session)

    @contextlib.asynccontextmanager
    async def session(sid: str, namespace: Optional[str] = None) -> Any:
        yield sessions[sid]

    async def rooms(*_: Any, **__: Any) -> None:
        return None

    for name, fake in [("emit", emit), ("get_session", get_session), ("session", session),
                       ("save_session", save_session), ("enter_room", rooms),
                       ("leave_room", rooms)]:
        monkeypatch.setattr(sio, name, fake)
    handlers = sio.handlers["/"]

    async def talk() -> str:
        await handlers["connect"]("sid-1", {"REMOTE_ADDR": "198.51.100.4"}, None)
        await handlers["session_request"]("sid-1", {})
        ((_, session_id, _),) = emitted  # session_confirm: the id this server signed
        emitted.clear()
        for text in ("x" * 11, "\x00", "status?"):
            await handlers["user_uttered"]("sid-1", {"message": text, "session_id": session_id})
        return session_id

    session_id = asyncio.run(talk())
    assert [(e, d["text"], r) for e, d, r in emitted] == [
        ("bot_uttered", TOO_LONG_TEXT.format(limit=10), session_id),
        ("bot_uttered", NO_TEXT, session_id),
        ("bot_uttered", SOMETHING_WENT_WRONG, session_id),
    ]
    assert rasa.seen == ["status?"]
