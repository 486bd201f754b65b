"""The desk's pure parts: transcripts, the shopper's backlog, refusals, text cleaning."""

from __future__ import annotations

from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from actions.shop_errors import AgentRefused, Conflict, NotFound, ShopUnavailable
from web.desk import agent_messages, agent_utterance, clean_text, refusal, transcript
from web.desk_client import AgentSession, DeskTicket

ALEX = AgentSession("alex", "Alex", "token", "2026-12-01T12:00:00Z")


def tracker_with(*events: object) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("c1", list(events))  # type: ignore[arg-type]


def test_transcript_names_shopper_bot_and_agent_and_skips_the_rest() -> None:
    joined = agent_utterance("Alex (agent) joined the chat.", ALEX, "joined")
    tracker = tracker_with(
        ActionExecuted("action_listen"), UserUttered("<b>hi</b>"), BotUttered("Hello!"),
        ConversationPaused(), joined, UserUttered("still there?"),
    )
    entries = transcript(tracker)
    assert [(e["who"], e["text"]) for e in entries] == [
        ("shopper", "<b>hi</b>"), ("bot", "Hello!"),
        ("agent", "Alex (agent) joined the chat."), ("shopper", "still there?"),
    ]
    assert entries[2]["name"] == "Alex"
    assert tracker.is_paused()


def test_backlog_has_only_the_agents_messages_with_their_ids() -> None:
    said = agent_utterance("On it.", ALEX)
    tracker = tracker_with(UserUttered("help"), BotUttered("bot text"), said)
    backlog = agent_messages(tracker)
    assert backlog == [{"text": "On it.", "agent": "Alex",
                        "desk_id": said.metadata["desk_id"], "desk_event": "message"}]
    assert agent_utterance("x", ALEX).metadata["desk_id"] != said.metadata["desk_id"]


def test_refusals_become_the_agents_sentence() -> None:
    assert refusal(AgentRefused("no", 429, "agent_login_locked", 42))["message"] == \
        "Too many failed logins. Try again in 42 seconds."
    assert refusal(AgentRefused("no", 401, "agent_login_failed"))["error"] == "login_failed"
    assert refusal(AgentRefused("no", 401, "agent_unauthorized"))["error"] == "session_ended"
    assert refusal(ShopUnavailable("down"))["error"] == "shop_unavailable"
    assert refusal(NotFound("gone", 404, "not_found"))["error"] == "not_found"
    assert refusal(Conflict("taken", 409, "already_claimed"))["error"] == "already_claimed"
    assert refusal(Conflict("x", 409, "claimed_by_other"))["error"] == "not_yours"
    assert refusal(Conflict("x", 409, "handoff_closed"))["error"] == "handoff_closed"


def test_clean_text_trims_caps_and_refuses_empty() -> None:
    assert clean_text("  hi  ") == "hi"
    assert clean_text("x" * 5000) == "x" * 2000
    assert clean_text("   ") is None
    assert clean_text(None) is None
    assert clean_text(["hi"]) is None


def test_a_ticket_is_held_only_by_its_claimant_and_hides_the_conversation_id() -> None:
    data = {"id": "ho_1", "status": "claimed", "created_at": "2026-12-01T10:00:00Z",
            "waiting_seconds": 30, "summary": "s", "reason": None, "user_id": None,
            "customer_name": None, "conversation_id": "secret-session-id",
            "claimed_by": "alex", "claimed_by_name": "Alex", "first_agent_reply_at": None,
            "outcome": None}
    ticket = DeskTicket.parse(data)
    assert ticket.held_by(ALEX)
    assert not ticket.held_by(AgentSession("sam", "Sam", "t", ""))
    assert "secret-session-id" not in str(ticket.public())
    assert ticket.public()["has_conversation"] is True


def test_a_reminder_is_not_shown_as_the_shopper() -> None:
    reminder = UserUttered("EXTERNAL: EXTERNAL_handoff_wait", metadata={"is_external": True})
    tracker = tracker_with(UserUttered("help me"), reminder, BotUttered("No colleague is free"))
    assert [e["text"] for e in transcript(tracker)] == ["help me", "No colleague is free"]


class FakeSio:
    """Just enough of python-socketio's AsyncServer for the desk's handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}
        self.sessions: dict[str, dict] = {}

    def on(self, event: str, handler: object = None, namespace: object = None) -> object:
        if handler is not None:
            self.handlers[event] = handler
            return handler

        def register(fn: object) -> object:
            self.handlers[event] = fn
            return fn

        return register

    async def get_session(self, sid: str, namespace: object = None) -> dict:
        return self.sessions[sid]

    async def save_session(self, sid: str, session: dict, namespace: object = None) -> None:
        self.sessions[sid] = session

    def session(self, sid: str, namespace: object = None) -> object:
        sessions = self.sessions

        class Ctx:
            async def __aenter__(self) -> dict:
                return sessions[sid]

            async def __aexit__(self, *exc: object) -> None:
                return None

        return Ctx()


def test_agent_logins_are_limited_per_client_address(monkeypatch) -> None:
    """The channel's own limit (DESK_LOGIN_LIMIT), before the shop's lock per agent id: the
    shop is down here (a closed port), so only the limit can answer the third attempt."""
    import asyncio

    from actions.shop_client import ShopClient
    from tests.support import free_port
    from web.desk import Desk
    from web.desk_client import DeskClient

    monkeypatch.setenv("RATE_LIMITS", "on")
    monkeypatch.setenv("DESK_LOGIN_LIMIT", "2/minute")
    sio = FakeSio()
    shop = ShopClient(base_url=f"http://127.0.0.1:{free_port()}", token="t", retries=0,
                      timeout=1.0)
    Desk(sio, "/", "bot_uttered", {"http://localhost:8080"}, lambda environ: "198.51.100.9",
         client=DeskClient(shop))
    connect, login = sio.handlers["connect"], sio.handlers["agent_login"]

    async def attempts() -> list[dict]:
        assert await connect("sid-1", {"HTTP_ORIGIN": "http://localhost:8080"}) is True
        assert await connect("sid-2", {"HTTP_ORIGIN": "http://evil.example"}) is False
        data = {"agent_id": "alex", "token": "guess"}
        return [await login("sid-1", data) for _ in range(3)]

    first, second, third = asyncio.run(attempts())
    assert first["error"] == second["error"] == "shop_unavailable"
    assert third["error"] == "login_locked" and "Try again in" in third["message"]
