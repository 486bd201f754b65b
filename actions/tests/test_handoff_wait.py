"""The bot's side of a live handoff (issue 19): the ticket's wording, the wait reminder, and
action_handoff_wait, which tells the shopper once that no colleague is free yet.

Trackers are built from the event dicts Rasa sends to the action server: the desk's takeover is
a ``pause`` event and bot messages whose metadata names the agent (web/rasa_channel.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import handoff
from actions.handoff import (
    WAIT_INTENT,
    WAIT_TOLD_SLOT,
    ActionHandoff,
    ActionHandoffWait,
    build_summary,
    wait_seconds,
)
from actions.tests.conftest import Conversation, Result, initial_slots, user_event

TICKET = "ho_00000000000000a1"
OLDER = "ho_00000000000000a0"
AGENT = {"agent_id": "alex", "agent_name": "Alex"}


def opened(ticket: str) -> List[Dict[str, Any]]:
    """The shopper asks for a person; action_handoff opens ``ticket`` and schedules the wait."""
    return [
        user_event("I want to talk to a human", "request_human", []),
        {"event": "action", "name": "action_handoff"},
        {"event": "bot", "text": f"I've opened ticket {ticket} ...",
         "metadata": {"utter_action": "utter_handoff_created"}},
        {"event": "slot", "name": "handoff_ticket", "value": ticket},
        {"event": "slot", "name": "handoff_pending", "value": None},
        handoff.wait_reminder(ticket),
        {"event": "action", "name": "action_listen"},
    ]


def reminder_fires(ticket: Optional[str]) -> Dict[str, Any]:
    """The external user event Rasa logs when the reminder of ``ticket`` triggers."""
    entities = [{"entity": "handoff_ticket", "value": ticket}] if ticket else []
    event = user_event(f"EXTERNAL: {WAIT_INTENT}", WAIT_INTENT, entities)
    event["metadata"] = {"is_external": True}
    return event


def agent_takes_over() -> List[Dict[str, Any]]:
    return [
        {"event": "pause"},
        {"event": "bot", "text": "Alex (agent) joined the chat", "metadata": dict(AGENT)},
    ]


def run_wait(domain: Dict[str, Any], events: List[Dict[str, Any]],
             slots: Optional[Dict[str, Any]] = None) -> Result:
    """Run action_handoff_wait on a tracker made of ``events`` (slots replayed from them)."""
    values = initial_slots(domain)
    for event in events:
        if event.get("event") == "slot":
            values[event["name"]] = event["value"]
    values.update(slots or {})
    latest = next((e for e in reversed(events) if e.get("event") == "user"), {})
    tracker = Tracker("test-wait", values, latest.get("parse_data") or {}, events, False, None,
                      {}, "action_listen")
    dispatcher = CollectingDispatcher()
    result = asyncio.run(ActionHandoffWait().run(dispatcher, tracker, domain))
    return Result(result, dispatcher.messages, domain)


# ------------------------------------------------------------------------------ the wording
@pytest.mark.no_shop
def test_ticket_wording_says_a_colleague_joins_this_chat(domain: dict) -> None:
    text = domain["responses"]["utter_handoff_created"][0]["text"]
    assert "{handoff_ticket}" in text
    assert "email" not in text.lower()  # nobody writes by email: the agent joins the chat
    assert "join this chat" in text and "keep chatting" in text
    assert "ticket stays open" in text and "same browser" in text


@pytest.mark.no_shop
def test_wait_wording_is_honest(domain: dict) -> None:
    text = domain["responses"]["utter_handoff_waiting"][0]["text"]
    assert "{handoff_ticket}" in text
    assert "No colleague is free yet" in text and "stays open" in text
    assert "reply in this chat" in text and "come back to this same chat" in text


# -------------------------------------------------------------------------- action_handoff_wait
@pytest.mark.no_shop
def test_speaks_when_nobody_joined(domain: dict) -> None:
    events = opened(TICKET) + [
        user_event("and where is my order?", "order_status", []),  # chatting on meanwhile
        {"event": "action", "name": "identify_form"},
        {"event": "bot", "text": "What's your email?"},
        {"event": "action", "name": "action_listen"},
        reminder_fires(TICKET),
    ]
    result = run_wait(domain, events)
    assert result.responses == ["utter_handoff_waiting"]
    assert TICKET in result.text and "No colleague is free yet" in result.text
    assert result.slot(WAIT_TOLD_SLOT) == TICKET


@pytest.mark.no_shop
def test_silent_after_an_agent_joined(domain: dict) -> None:
    events = opened(TICKET) + agent_takes_over() + [reminder_fires(TICKET)]
    result = run_wait(domain, events)
    assert result.messages == [] and result.events == []


@pytest.mark.no_shop
@pytest.mark.parametrize("joined", [
    [{"event": "pause"}],  # paused, before the agent's first message
    [{"event": "bot", "text": "Hi, I'm Alex", "metadata": dict(AGENT)}],  # a message, no pause
    agent_takes_over() + [  # the agent came, and handed back before the reminder
        {"event": "resume"},
        {"event": "bot", "text": "Alex handed the chat back to the assistant",
         "metadata": {"agent_id": "alex", "desk_event": "handed_back"}},
    ],
])
def test_silent_whenever_an_agent_was_there(domain: dict, joined: list) -> None:
    result = run_wait(domain, opened(TICKET) + joined + [reminder_fires(TICKET)])
    assert result.messages == []


@pytest.mark.no_shop
def test_silent_for_a_stale_ticket(domain: dict) -> None:
    """The reminder of an older ticket never speaks about the newer one."""
    events = opened(OLDER) + opened(TICKET) + [reminder_fires(OLDER)]
    assert run_wait(domain, events).messages == []
    # the newer ticket's own reminder does speak
    assert run_wait(domain, events + [reminder_fires(TICKET)]).responses == [
        "utter_handoff_waiting"
    ]


@pytest.mark.no_shop
def test_an_agent_of_an_earlier_ticket_does_not_count(domain: dict) -> None:
    events = (opened(OLDER) + agent_takes_over() + [{"event": "resume"}]
              + opened(TICKET) + [reminder_fires(TICKET)])
    result = run_wait(domain, events)
    assert result.responses == ["utter_handoff_waiting"] and TICKET in result.text


@pytest.mark.no_shop
def test_silent_without_a_ticket(domain: dict) -> None:
    events = [user_event("hi", "greet", []), reminder_fires(None)]
    assert run_wait(domain, events).messages == []
    assert run_wait(domain, [reminder_fires(TICKET)]).messages == []  # slot empty: silent


@pytest.mark.no_shop
def test_said_once_per_ticket(domain: dict) -> None:
    events = opened(TICKET) + [reminder_fires(TICKET)]
    first = run_wait(domain, events)
    assert first.responses == ["utter_handoff_waiting"]
    events += [{"event": "action", "name": "action_handoff_wait"}, *first.events,
               {"event": "action", "name": "action_listen"}, reminder_fires(TICKET)]
    again = run_wait(domain, events)
    assert again.messages == [] and again.events == []


# ---------------------------------------------------------------------------- the reminder
@pytest.mark.no_shop
def test_the_reminder_names_its_ticket_and_survives_messages() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    reminder = handoff.wait_reminder(TICKET, now=now)
    assert reminder["event"] == "reminder" and reminder["intent"] == WAIT_INTENT
    assert reminder["entities"] == [{"entity": "handoff_ticket", "value": TICKET}]
    assert TICKET in reminder["name"]  # Rasa's job id: one per ticket, across conversations
    assert reminder["kill_on_user_msg"] is False
    trigger = datetime.fromisoformat(reminder["date_time"])
    assert (trigger - now).total_seconds() == handoff.HANDOFF_WAIT_SECONDS


def test_handoff_schedules_the_wait_for_its_ticket(domain: dict) -> None:
    convo = Conversation(domain)
    convo.user("I need a human", intent="request_human")
    before = time.time()
    result = convo.run(ActionHandoff())
    ticket = result.slot("handoff_ticket")
    assert result.responses == ["utter_handoff_created"]
    assert f"I've opened ticket {ticket}" in result.text
    assert "email" not in result.text.lower()
    reminders = [e for e in result.events if e.get("event") == "reminder"]
    assert len(reminders) == 1
    assert reminders[0]["entities"] == [{"entity": "handoff_ticket", "value": ticket}]
    due = datetime.fromisoformat(reminders[0]["date_time"]).timestamp() - before
    assert handoff.HANDOFF_WAIT_SECONDS - 5 < due < handoff.HANDOFF_WAIT_SECONDS + 5


@pytest.mark.no_shop
@pytest.mark.parametrize("raw, seconds", [
    (None, 120.0), ("", 120.0), ("2", 2.0), ("0.5", 0.5), (" 300 ", 300.0),
])
def test_wait_seconds(raw: Optional[str], seconds: float) -> None:
    env = {} if raw is None else {"HANDOFF_WAIT_SECONDS": raw}
    assert wait_seconds(env) == seconds


@pytest.mark.no_shop
@pytest.mark.parametrize("raw", ["0", "-5", "two minutes", "inf", "nan"])
def test_wait_seconds_invalid_is_the_default_with_a_warning(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="actions.handoff"):
        assert wait_seconds({"HANDOFF_WAIT_SECONDS": raw}) == 120.0
    assert "HANDOFF_WAIT_SECONDS" in caplog.text


@pytest.mark.no_shop
def test_the_reminders_are_not_in_the_summary(domain: dict) -> None:
    """A later handoff's summary lists what the shopper wrote, not the reminder's trigger."""
    events = opened(TICKET) + [reminder_fires(TICKET)]
    convo = Conversation(domain, events=events)
    convo.user("still nobody? I want a person", intent="request_human")
    summary = build_summary(convo.tracker())
    assert WAIT_INTENT not in summary
    assert "- [request_human] still nobody? I want a person" in summary
