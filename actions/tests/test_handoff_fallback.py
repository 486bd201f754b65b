"""action_handoff opens a real ticket with a useful summary; action_fallback never stays silent."""

from __future__ import annotations

import sqlite3

from actions.fallback import ActionFallback
from actions.handoff import ActionHandoff
from actions.orders import ActionOrderStatus
from actions.tests.conftest import MOHAMED, Conversation, identified_slots


def test_handoff_creates_a_ticket_with_the_summary(domain: dict, client) -> None:
    convo = Conversation(domain, slots=identified_slots(MOHAMED))
    convo.user("status of W8844578", intent="order_status", order_id="W8844578")
    convo.run(ActionOrderStatus())
    convo.user("I want to cancel it", intent="cancel_order")
    convo.user("let me talk to a human", intent="request_human")
    result = convo.run(ActionHandoff())

    assert result.responses == ["utter_handoff_created"]
    ticket_id = result.slot("handoff_ticket")
    assert f"I've opened ticket {ticket_id}" in result.text

    ticket = client.get_handoff(ticket_id, MOHAMED["user_id"])  # only its customer reads it
    assert ticket["id"] == ticket_id
    assert ticket["user_id"] == MOHAMED["user_id"]
    assert ticket["conversation_id"] == convo.sender
    summary = ticket["summary"]
    assert "Reason: shopper wants to cancel an order." in summary
    assert "Customer: Mohamed (user id mohamed_li_1979)." in summary
    assert "Orders discussed: #W8844578." in summary
    assert "- [cancel_order] I want to cancel it" in summary
    assert "showed an order's status" in summary


def test_handoff_is_idempotent_per_turn(domain: dict) -> None:
    convo = Conversation(domain)
    convo.user("human please", intent="request_human")
    first = convo.run(ActionHandoff()).slot("handoff_ticket")
    again = convo.run(ActionHandoff()).slot("handoff_ticket")  # Rasa re-running the action
    assert first == again
    convo.user("another human please", intent="request_human")
    assert convo.run(ActionHandoff()).slot("handoff_ticket") != first


def test_handoff_for_an_unidentified_shopper(domain: dict, shop) -> None:
    convo = Conversation(domain, slots={"id_attempts": 3.0})
    convo.user("agent", intent="request_human")
    ticket_id = convo.run(ActionHandoff()).slot("handoff_ticket")
    # an anonymous ticket is nobody's to read through the API: straight from the database
    con = sqlite3.connect(shop.log.parent / "shop.db")
    con.row_factory = sqlite3.Row
    ticket = dict(con.execute("SELECT * FROM handoffs WHERE id = ?", (ticket_id,)).fetchone())
    con.close()
    assert ticket["user_id"] is None
    assert "Customer: not identified." in ticket["summary"]
    assert "could not be identified" in ticket["summary"]


def test_fallback_out_of_scope_gets_a_short_redirect(convo: Conversation, monkeypatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # no LLM needed for this
    convo.user("what's the weather like?", intent="out_of_scope")
    result = convo.run(ActionFallback())
    assert result.responses == [None] and "orders" in result.text


def test_fallback_question_with_the_llm_down_quotes_help_and_offers_an_agent(
    convo: Conversation, monkeypatch
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    convo.user("how many days until my paypal refund arrives?", intent="nlu_fallback")
    result = convo.run(ActionFallback())
    assert "5 to 7 business days" in result.text
    assert "human agent" in result.text


def test_fallback_on_a_typed_payload_is_the_canned_reply(convo: Conversation) -> None:
    convo.user("/nonsense", intent="nlu_fallback")
    result = convo.run(ActionFallback())
    assert result.responses == ["utter_default"]
    assert "I can help with orders" in result.text


def test_fallback_with_an_order_id_shows_that_order(domain: dict) -> None:
    convo = Conversation(domain, slots=identified_slots(MOHAMED))
    convo.user("what about W7824724", intent="nlu_fallback")
    result = convo.run(ActionFallback())
    assert result.text.startswith("Order #W7824724 is processed.")
    assert result.slot("order_id") == "#W7824724"


def test_fallback_with_an_order_id_still_needs_identification(convo: Conversation) -> None:
    convo.user("what about W7824724", intent="nlu_fallback", order_id="W7824724")
    result = convo.run(ActionFallback())
    assert result.responses == ["utter_ask_email"]
    assert "processed" not in result.text
