"""The handoff's wait reminder through the running assistant (issue 19, the bot's side).

``action_handoff`` schedules a Rasa reminder HANDOFF_WAIT_SECONDS after the ticket; if no agent
has joined by then, ``action_handoff_wait`` tells the shopper once that no colleague is free yet.
The REST channel returns only the replies of the request itself, so the reminder's message is read
from the tracker (Rasa's HTTP API, enabled by the harness). The agent's takeover is what the desk
appends to the tracker: a ``pause`` event and a bot message with ``agent_id`` in its metadata.

The action server reads HANDOFF_WAIT_SECONDS once at start: this module restarts it with 2 s
and restores it afterwards (a few seconds each way; Rasa and the shop keep running).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conversations.harness import Conversation, Stack

WAIT_SECONDS = 2
WAITING = "No colleague is free yet"
MEI = {"email": "mei.martin4637@example.com", "zip": "32124", "pending": "#W7017301"}


@pytest.fixture(scope="module")
def quick_wait(stack: Stack) -> Iterator[Stack]:
    """The shared stack with an action server whose handoffs wait WAIT_SECONDS for an agent."""
    before = dict(stack.overrides.get("actions", {}))
    stack.overrides["actions"] = {**before, "HANDOFF_WAIT_SECONDS": str(WAIT_SECONDS)}
    stack.restart("actions")
    try:
        yield stack
    finally:
        stack.overrides["actions"] = before
        stack.restart("actions")


def tail_events(stack: Stack, sender: str, n: int = 14) -> list[str]:
    """The last events, short: what happened when a note is missing."""
    out = []
    for e in stack.tracker(sender)["events"][-n:]:
        what = e.get("name") or e.get("text") or (e.get("parse_data") or {}).get("intent")
        out.append(f"{e['event']}:{what}" + (f"={e.get('value')}" if e["event"] == "slot" else ""))
    return out


def bot_texts(stack: Stack, sender: str) -> list[str]:
    return [e.get("text") or "" for e in stack.tracker(sender)["events"] if e["event"] == "bot"]


def waiting_notes(stack: Stack, sender: str, after: float) -> list[str]:
    """The wait notes in the tracker, once ``after`` seconds have passed (polled until then)."""
    deadline = time.monotonic() + after
    notes: list[str] = []
    while time.monotonic() < deadline:
        time.sleep(0.5)
        notes = [t for t in bot_texts(stack, sender) if WAITING in t]
    return notes


def ask_for_a_person(chat: Conversation) -> str:
    reply = chat.text("I want to talk to a human")
    ticket = str(chat.slots()["handoff_ticket"])
    assert ticket in reply and "join this chat" in reply, reply
    assert "email" not in reply.lower(), reply
    return ticket


def append(stack: Stack, sender: str, event: dict[str, Any]) -> None:
    """What the desk does through Rasa's HTTP API when an agent takes over."""
    requests.post(
        f"{stack.rasa_url}/conversations/{sender}/tracker/events",
        params={"token": stack.env["RASA_AUTH_TOKEN"]}, json=event, timeout=10,
    ).raise_for_status()


def test_nobody_joined_the_shopper_is_told_once(quick_wait: Stack) -> None:
    chat = quick_wait.conversation()
    ticket = ask_for_a_person(chat)
    notes = waiting_notes(quick_wait, chat.sender, after=WAIT_SECONDS + 4)
    assert len(notes) == 1, f"{notes}\n{chat.transcript}"
    assert ticket in notes[0] and "stays open" in notes[0]
    # the shopper chats on: the assistant still answers, and the note is not said again
    assert "5 to 7 business days" in chat.text("how long does a refund take?")
    assert len(waiting_notes(quick_wait, chat.sender, after=1)) == 1


def test_silent_once_an_agent_joined(quick_wait: Stack) -> None:
    chat = quick_wait.conversation()
    ask_for_a_person(chat)
    append(quick_wait, chat.sender, {"event": "pause"})
    append(quick_wait, chat.sender, {
        "event": "bot", "text": "Alex (agent) joined the chat",
        "metadata": {"agent_id": "alex", "agent_name": "Alex"},
    })
    try:
        assert waiting_notes(quick_wait, chat.sender, after=WAIT_SECONDS + 3) == []
    finally:
        append(quick_wait, chat.sender, {"event": "resume"})
    assert waiting_notes(quick_wait, chat.sender, after=1) == []


def test_a_second_ticket_gets_one_note_about_itself(quick_wait: Stack) -> None:
    chat = quick_wait.conversation()
    first = ask_for_a_person(chat)
    second = ask_for_a_person(chat)  # asked again at once: a new ticket, its own reminder
    assert second != first
    waiting_notes(quick_wait, chat.sender, after=WAIT_SECONDS + 4)
    texts = bot_texts(quick_wait, chat.sender)
    opened = next(i for i, t in enumerate(texts) if second in t)
    later = [t for t in texts[opened + 1:] if WAITING in t]
    # the first ticket's reminder may have spoken before the second ticket (a busy machine);
    # after it, only the second ticket's own note, once: the stale reminder stays silent
    assert len(later) == 1, f"{later}\n{chat.transcript}"
    assert second in later[0] and first not in later[0]


def test_during_the_rating_the_note_then_the_question_again(quick_wait: Stack) -> None:
    """The rating form rejects the reminder (it is no rating, no comment): the note, then the
    rating question again."""
    chat = quick_wait.conversation()
    chat.text("hi, where is my order?")
    chat.text(MEI["email"])
    assert "Mei" in chat.text(MEI["zip"])
    chat.text(f"status of {MEI['pending']}")
    ticket = ask_for_a_person(chat)
    assert "rate" in chat.text("bye")
    notes = waiting_notes(quick_wait, chat.sender, after=WAIT_SECONDS + 4)
    assert len(notes) == 1 and ticket in notes[0], f"{notes}\n{chat.transcript}"
    assert "rate" in bot_texts(quick_wait, chat.sender)[-1]
    assert chat.slots()["rating"] is None and chat.slots()["rating_comment"] is None


def test_during_identification_the_note_then_the_question_again(quick_wait: Stack) -> None:
    """The reminder's text is no name, email or zip: the identification form keeps what it had,
    the note is said, and the shopper's next answer still identifies them."""
    chat = quick_wait.conversation()
    ticket = ask_for_a_person(chat)
    chat.text("actually, where is my order?")  # the form asks for the email (or name)
    notes = waiting_notes(quick_wait, chat.sender, after=WAIT_SECONDS + 4)
    assert len(notes) == 1 and ticket in notes[0], tail_events(quick_wait, chat.sender)
    slots = chat.slots()
    assert not slots.get("first_name") and not slots.get("last_name"), slots
    chat.text(MEI["email"])
    assert "Mei" in chat.text(MEI["zip"]), chat.transcript


def test_during_a_change_the_reminder_is_no_answer(quick_wait: Stack) -> None:
    chat = quick_wait.conversation()
    chat.text("hi, i want to cancel an order")
    chat.text(MEI["email"])
    chat.text(MEI["zip"])
    ticket = ask_for_a_person(chat)
    chat.text(f"cancel {MEI['pending']}")  # the change form asks for the reason
    notes = waiting_notes(quick_wait, chat.sender, after=WAIT_SECONDS + 4)
    assert len(notes) == 1 and ticket in notes[0], tail_events(quick_wait, chat.sender)
    assert not chat.slots().get("cancel_reason"), chat.slots()
