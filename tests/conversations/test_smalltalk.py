"""Foundation: the trained assistant answers over REST and stores conversations in SQL."""

from __future__ import annotations

import sqlite3

from tests.conversations.harness import Stack


def test_greeting_and_capabilities(stack: Stack) -> None:
    chat = stack.conversation()
    assert "virtual assistant" in chat.text("hello there")
    capabilities = chat.text("what can you do?")
    assert "status of an order" in capabilities
    assert "human agent" in capabilities
    assert "virtual assistant, not a person" in chat.text("are you a bot?")
    assert "welcome" in chat.text("thanks!").lower() or "happy to help" in chat.text("ok")


def test_conversation_is_persisted_in_the_sql_tracker_store(stack: Stack) -> None:
    chat = stack.conversation()
    chat.text("hi")
    chat.text("bye")
    with sqlite3.connect(stack.tracker_db) as db:
        rows = db.execute(
            "SELECT type_name, intent_name, action_name FROM events WHERE sender_id = ?",
            (chat.sender,),
        ).fetchall()
    user_intents = [intent for kind, intent, _ in rows if kind == "user"]
    actions = [action for kind, _, action in rows if kind == "action"]
    assert user_intents == ["greet", "goodbye"]
    assert "utter_greet" in actions and "utter_goodbye" in actions


def test_gibberish_never_gets_silence(stack: Stack) -> None:
    chat = stack.conversation()
    replies = chat.say("qwzx plorf vrmmm")
    assert replies and all(r.get("text") for r in replies)
