"""A shopper who answers the identification question with something the form can't use.

"I'd rather use my name" is no email, name or zip: the form rejects it, Rasa is unsure what
comes next and its core fallback (action_fallback) answers. Before the fix, the fallback was
predicted again after itself until Rasa's circuit breaker (10 replies in one turn), and the
conversation never answered again.
"""

from __future__ import annotations

from tests.conversations.harness import Stack

MEI = {"first": "Mei", "last": "Martin", "zip": "32124"}


def test_an_unusable_answer_gets_one_reply_and_the_form_goes_on(stack: Stack) -> None:
    chat = stack.conversation()
    assert "email" in chat.text("where is my order?")
    chat.text("I'd rather use my name")
    turn = chat.transcript[-1][1]
    assert len(turn) == 1, turn  # one answer, not ten
    events = stack.tracker(chat.sender)["events"]
    last_user = max(i for i, e in enumerate(events) if e["event"] == "user")
    fallbacks = [e for e in events[last_user:]
                 if e["event"] == "action" and e.get("name") == "action_fallback"]
    assert len(fallbacks) <= 2, fallbacks  # the reply, then at most the silent hand-over
    assert "zip" in chat.text(f"{MEI['first']} {MEI['last']}").lower()
    assert "Mei" in chat.text(MEI["zip"]), chat.transcript
    assert "#W" in chat.text("what are my orders?"), chat.transcript
