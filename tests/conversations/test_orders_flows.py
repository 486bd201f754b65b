"""Issue 4 flows, whole conversations through the REST channel with the real action server
and shop backend (seeded from the store data)."""

from __future__ import annotations

import json

import requests

from tests.conversations.harness import Stack

# A shopper of the seed data with orders in several states.
MEI = {"email": "mei.martin4637@example.com", "first": "Mei", "last": "Martin", "zip": "32124",
       "pending": "#W7017301", "processed": "#W3288665", "delivered": "#W5564375"}
OTHER_CUSTOMERS_ORDER = "#W2579604"  # belongs to mia_taylor_6226


def identified_chat(stack: Stack):
    chat = stack.conversation()
    assert "email" in chat.text("hi, where is my order?").lower()
    assert "zip" in chat.text(MEI["email"]).lower()  # two facts: the email, then the zip
    assert "Mei" in chat.text(MEI["zip"])
    return chat


def test_order_status_asks_identification_then_offers_orders_as_buttons(stack: Stack) -> None:
    chat = stack.conversation()
    ask = chat.text("where is my order?")
    assert "email" in ask.lower()
    replies = chat.say(f"my email is {MEI['email']} and my zip is {MEI['zip']}")
    texts = " ".join(r.get("text", "") for r in replies)
    assert "Mei" in texts
    buttons = [b for r in replies for b in r.get("buttons") or []]
    payloads = " ".join(b["payload"] for b in buttons)
    for order in (MEI["pending"], MEI["processed"], MEI["delivered"]):
        assert order in payloads
    # clicking a button sends its payload
    processed = next(b for b in buttons if MEI["processed"] in b["payload"])
    status = chat.text(processed["payload"])
    assert MEI["processed"] in status and "processed" in status
    assert "Jigsaw Puzzle" in status
    assert chat.slots()["customer_id"] == "mei_martin_4260"


def test_identification_by_name_and_zip_then_tracking(stack: Stack) -> None:
    chat = stack.conversation()
    chat.text("I want to track my package")
    reply = chat.text(f"{MEI['first']} {MEI['last']}, zip {MEI['zip']}")
    assert "Mei" in reply
    track = chat.text(f"track order {MEI['processed'].lower().replace('#', '')}")
    assert "101031430076" in track  # tracking number of the processed order
    assert "estimated delivery" in track.lower()


def test_order_id_variants_are_understood(stack: Stack) -> None:
    chat = identified_chat(stack)
    for variant in ("w5564375", "# W5564375", "W 5564375"):
        reply = chat.text(f"what's the status of order {variant}")
        assert "#W5564375" in reply and "delivered" in reply, variant


def test_correction_of_the_order_id(stack: Stack) -> None:
    chat = identified_chat(stack)
    assert MEI["pending"] in chat.text(f"status of {MEI['pending']}")
    corrected = chat.text(f"no, I meant {MEI['delivered'][1:]}")
    assert MEI["delivered"] in corrected and "delivered" in corrected


def test_another_customers_order_reveals_nothing(stack: Stack) -> None:
    chat = identified_chat(stack)
    reply = chat.text(f"what is the status of {OTHER_CUSTOMERS_ORDER}")
    assert "couldn't find" in reply.lower()
    for leak in ("processed", "Mia", "Taylor", "item"):
        assert leak not in reply


def test_no_order_data_without_identification_even_with_a_typed_payload(stack: Stack) -> None:
    chat = stack.conversation()
    payload = "/order_status" + json.dumps({"order_id": MEI["processed"]})
    reply = chat.text(payload)
    assert "Jigsaw" not in reply and "processed" not in reply
    assert "email" in reply.lower()
    assert chat.slots()["identified"] is False


def test_three_failed_identifications_offer_a_human(stack: Stack) -> None:
    chat = stack.conversation()
    chat.text("list my orders")
    chat.text("nobody1@example.com 10001")
    chat.text("nobody2@example.com 10001")
    replies = chat.say("nobody3@example.com 10001")
    text = " ".join(r.get("text", "") for r in replies)
    assert "human agent" in text
    assert any(b["payload"] == "/request_human" for r in replies for b in r.get("buttons") or [])
    # rate limit: even a correct identity is refused for the rest of this conversation
    chat.text("list my orders")
    assert "Mei" not in chat.text(f"{MEI['email']} {MEI['zip']}")
    assert chat.slots()["identified"] is False


def test_list_orders_and_product_question(stack: Stack) -> None:
    chat = identified_chat(stack)
    listing = chat.text("show me all my orders")
    for order in (MEI["pending"], MEI["processed"], MEI["delivered"]):
        assert order in listing or order in json.dumps(chat.transcript)
    product = chat.text("how much is the office chair?")
    assert "Office Chair" in product and "$" in product


def test_faq_in_the_middle_of_identification_then_back(stack: Stack) -> None:
    chat = stack.conversation()
    chat.text("what's the status of my order")
    faq = chat.text("how long does a refund take?")
    assert "5 to 7 business days" in faq
    assert "email" in faq.lower()  # asks again for the identity
    assert "Mei" in chat.text(f"{MEI['email']}, zip {MEI['zip']}")


def test_stop_during_identification(stack: Stack) -> None:
    chat = stack.conversation()
    chat.text("where is my order")
    assert "left everything as it was" in chat.text("never mind").lower()
    assert chat.slots()["pending_request"] is None  # the stopped request is forgotten
    assert "virtual assistant" in chat.text("hello")


def test_handoff_creates_a_ticket_with_a_summary(stack: Stack) -> None:
    chat = identified_chat(stack)
    chat.text(f"status of {MEI['processed']}")
    reply = chat.text("I want to talk to a human")
    ticket = chat.slots()["handoff_ticket"]
    assert ticket and str(ticket) in reply
    stored = requests.get(
        f"{stack.shop_url}/handoffs/{ticket}",
        headers={"Authorization": f"Bearer {stack.env['SHOP_API_TOKEN']}",
                 "X-Customer-Id": "mei_martin_4260"}, timeout=10,
    ).json()
    summary = json.dumps(stored)
    assert "mei_martin_4260" in summary and MEI["processed"] in summary

def test_out_of_scope_gets_a_polite_answer(stack: Stack) -> None:
    chat = stack.conversation()
    reply = chat.text("what's the weather in Paris tomorrow?")
    assert reply.strip()
