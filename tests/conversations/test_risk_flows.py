"""Issue 21: the shop's risk control on a change, through the assistant (REST, real shop).

A flagged change (here: a return right after three failed identifications of the account, an
account-takeover pattern, docs/risk.md) is not done: the shop refuses it with 409
``risk_review_required``, the assistant opens a ticket for a colleague with the reasons and tells
the shopper plainly; the order is unchanged. An ordinary change goes through as before, and its
decision is logged as allowed.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.conversations.harness import Conversation, Stack
from tests.conversations.shoppers import _query, db_order

YUSUF = {"email": "yusuf.patel5348@example.com", "zip": "94117", "order": "#W2274128"}
ETHAN = {"email": "ethan.lopez8943@example.com", "zip": "43275", "order": "#W8632528"}
BOOTS = "2185126308"  # Hiking Boots, in both orders


def text_of(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies if r.get("text"))


def buttons(replies: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [b for r in replies for b in r.get("buttons") or []]


def return_the_boots(chat: Conversation, who: dict[str, str], first: str) -> str:
    """Identify, ask to return the boots, answer the questions; the read-back's text."""
    assert first in chat.text(f"hi, {who['email']} and my zip is {who['zip']}")
    replies = chat.say(f"i want to return the hiking boots from {who['order'].lower()}, "
                       "they're too small")
    for _ in range(4):
        text = text_of(replies)
        if "Shall I" in text or "confirm" in text.lower() or "is that right" in text.lower():
            return text
        method = next((b for b in buttons(replies) if "payment_method_id" in b["payload"]),
                      None)
        if method is not None:
            replies = chat.say(method["payload"])
        elif "why" in text.lower():
            replies = chat.say("they don't fit")
        else:
            replies = chat.say("just the hiking boots")
    return text_of(replies)


def failed_lookups(stack: Stack, email: str, times: int) -> None:
    """Someone else guessing the account's zip, straight at the shop's lookup."""
    for guess in range(times):
        answer = requests.get(
            f"{stack.shop_url}/customers/lookup", params={"email": email, "zip": f"0000{guess}"},
            headers={"Authorization": f"Bearer {stack.env['SHOP_API_TOKEN']}",
                     "X-Client-Id": "203.0.113.7"}, timeout=10)
        assert answer.status_code == 404, answer.text


def decisions(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    return _query(stack, "SELECT * FROM risk_decisions WHERE order_id = ? ORDER BY at",
                  (order_id,))


def test_a_flagged_return_is_not_done_and_a_colleague_reviews_it(stack: Stack) -> None:
    failed_lookups(stack, YUSUF["email"], 3)
    before = db_order(stack, YUSUF["order"])
    chat = stack.conversation()
    readback = return_the_boots(chat, YUSUF, "Yusuf")
    assert "Hiking Boots" in readback, chat.transcript
    done = chat.text("yes")
    assert "haven't made this change" in done and "colleague" in done, chat.transcript
    ticket = chat.slots()["handoff_ticket"]
    assert ticket and ticket in done
    assert "identif" not in done.lower()  # the reasons are for the agent, not the shopper
    after = db_order(stack, YUSUF["order"])
    assert after["status"] == "delivered" and after == before  # nothing written
    [decision] = decisions(stack, YUSUF["order"])
    assert decision["decision"] == "flagged" and decision["refused"]
    reasons = decision["reasons"] if isinstance(decision["reasons"], list) else \
        json.loads(decision["reasons"])
    assert "identification_failures" in [r["code"] for r in reasons]
    [row] = _query(stack, "SELECT * FROM handoffs WHERE id = ?", (ticket,))
    assert "RISK REVIEW" in row["summary"] and decision["id"] in row["summary"]
    assert row["conversation_id"] == chat.sender
    # asking again does not get around it: a new "yes" is refused again, still nothing done
    again = return_the_boots(stack.conversation(), YUSUF, "Yusuf")
    assert "Hiking Boots" in again
    assert db_order(stack, YUSUF["order"]) == before


def test_an_ordinary_return_goes_through_and_is_logged_allowed(stack: Stack) -> None:
    chat = stack.conversation()
    readback = return_the_boots(chat, ETHAN, "Ethan")
    assert "Hiking Boots" in readback, chat.transcript
    done = chat.text("yes")
    assert "return" in done.lower() and "haven't made" not in done, chat.transcript
    row = db_order(stack, ETHAN["order"])
    assert row["status"] == "return requested" and row["return_items"] == [BOOTS]
    [decision] = decisions(stack, ETHAN["order"])
    assert decision["decision"] == "allowed" and not decision["refused"]
