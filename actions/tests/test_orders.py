"""Order status, tracking, order list and resume, against the real shop."""

from __future__ import annotations

import json

import pytest

from actions.orders import (
    ActionListOrders,
    ActionOrderStatus,
    ActionResumeRequest,
    ActionTrackOrder,
)
from actions.tests.conftest import MOHAMED, NO_ORDERS, NOAH, Conversation, identified_slots

ORDERS = MOHAMED["orders"]


@pytest.fixture
def mohamed(domain: dict) -> Conversation:
    return Conversation(domain, slots=identified_slots(MOHAMED))


@pytest.mark.parametrize("typed", ["#W8844578", "W8844578", "w8844578", "w 8844578", "#w 8844578"])
def test_order_status_accepts_id_variants(mohamed: Conversation, typed: str) -> None:
    mohamed.user(f"status of {typed}", intent="order_status", order_id=typed)
    result = mohamed.run(ActionOrderStatus())
    text = result.text
    assert text.startswith("Order #W8844578 is pending.")
    assert "Items:" in text and "Total: $" in text
    assert "can still be cancelled" in text
    assert result.slot("order_id") == "#W8844578"


def test_order_status_lists_items_with_options(mohamed: Conversation) -> None:
    mohamed.user("what about W8864622", intent="order_status", order_id="W8864622")
    text = mohamed.run(ActionOrderStatus()).text
    assert "is delivered" in text
    assert "• Garden Hose (50ft, latex, black) — $102.90" in text
    assert "returned or exchanged" in text


@pytest.mark.parametrize(
    "status, expected",
    [
        ("processed", "can no longer be changed or cancelled"),
        ("cancelled", "5 to 7 business days"),
    ],
)
def test_order_status_explains_what_the_status_means(
    mohamed: Conversation, status: str, expected: str
) -> None:
    mohamed.user("status", intent="order_status", order_id=ORDERS[status])
    text = mohamed.run(ActionOrderStatus()).text
    assert f"is {status}." in text and expected in text


def test_cut_off_entity_falls_back_to_the_id_in_the_text(mohamed: Conversation) -> None:
    """Seen end to end: "status of order W 8864622" gave the entity "W" only."""
    mohamed.user("what's the status of order W 8864622", intent="order_status", order_id="W")
    assert mohamed.run(ActionOrderStatus()).text.startswith("Order #W8864622 is delivered.")


def test_bare_number_correction_tagged_as_zip(mohamed: Conversation) -> None:
    """Seen end to end: "no, I meant 7017301" -> inform with zip=7017301."""
    mohamed.slots["order_id"] = ORDERS["processed"]
    mohamed.user("no, I meant 8864622", intent="inform", zip="8864622")
    assert mohamed.run(ActionOrderStatus()).text.startswith("Order #W8864622 is delivered.")


def test_order_id_in_text_wins_when_the_nlu_missed_it(mohamed: Conversation) -> None:
    mohamed.slots["order_id"] = ORDERS["processed"]
    mohamed.user("no, I meant w 8864622", intent="inform")
    assert mohamed.run(ActionOrderStatus()).text.startswith("Order #W8864622 is delivered.")


def test_order_status_from_slot_when_message_has_no_id(mohamed: Conversation) -> None:
    mohamed.slots["order_id"] = ORDERS["processed"]
    mohamed.user("and its status?", intent="order_status")
    assert "Order #W7824724 is processed." in mohamed.run(ActionOrderStatus()).text


def test_order_status_without_id_offers_buttons(mohamed: Conversation) -> None:
    mohamed.user("where is my order", intent="order_status")
    result = mohamed.run(ActionOrderStatus())
    assert result.responses == ["utter_ask_which_order"]
    buttons = result.messages[0]["buttons"]
    assert len(buttons) == 4
    payloads = {b["payload"] for b in buttons}
    assert f'/order_status{{"order_id":"{ORDERS["pending"]}"}}' in payloads
    for button in buttons:
        assert json.loads(button["payload"][len("/order_status"):])["order_id"].startswith("#W")
    titles = {b["title"] for b in buttons}
    assert "#W8844578 – 5 items, pending" in titles


def test_another_customers_order_is_not_found_and_reveals_nothing(
    mohamed: Conversation, client
) -> None:
    noah_order = client.get_order(NOAH["order"], NOAH["user_id"])
    mohamed.user(f"status of {NOAH['order']}", intent="order_status", order_id=NOAH["order"])
    result = mohamed.run(ActionOrderStatus())
    assert result.responses == ["utter_order_not_found"]
    assert "I couldn't find order #W7678072 on your account" in result.text
    for item in noah_order.items:
        assert item.name not in result.text
    assert noah_order.status not in result.text
    assert mohamed.slots["order_id"] is None


@pytest.mark.parametrize("typed", ["#W0000001", "W12", "banana"])
def test_unknown_or_malformed_order_id(mohamed: Conversation, typed: str) -> None:
    mohamed.user(f"status of {typed}", intent="order_status", order_id=typed)
    result = mohamed.run(ActionOrderStatus())
    assert result.responses == ["utter_order_not_found"]


@pytest.mark.parametrize("action", [ActionOrderStatus(), ActionTrackOrder(), ActionListOrders()])
def test_not_identified_refuses_even_with_order_id(domain: dict, action) -> None:
    # a typed payload /order_status{"order_id": ...} and even a customer_id without identified
    convo = Conversation(domain, slots={"customer_id": MOHAMED["user_id"]})
    convo.user('/order_status{"order_id":"#W8844578"}', intent="order_status",
               order_id="#W8844578")
    result = convo.run(action)
    assert result.responses == ["utter_ask_email"]
    assert len(result.messages) == 1
    assert "W8844578" not in result.text
    assert result.events == []


def test_track_processed_order(mohamed: Conversation) -> None:
    mohamed.user("track W7824724", intent="track_order", order_id="W7824724")
    result = mohamed.run(ActionTrackOrder())
    text = result.text
    assert text.startswith("Order #W7824724 is processed.")
    assert "Tracking number " in text and ": in transit." in text
    assert "Latest update (" in text
    assert "Estimated delivery: " in text
    assert any(c in text for c in ("UPS", "FedEx", "USPS", "DHL Express"))
    assert result.slot("order_id") == "#W7824724"


def test_track_delivered_order(mohamed: Conversation) -> None:
    mohamed.user("where's my parcel", intent="track_order", order_id=ORDERS["delivered"])
    text = mohamed.run(ActionTrackOrder()).text
    assert ": delivered." in text and "Delivered on " in text


def test_track_pending_order_is_not_shipped(mohamed: Conversation) -> None:
    mohamed.user("track it", intent="track_order", order_id=ORDERS["pending"])
    text = mohamed.run(ActionTrackOrder()).text
    assert "hasn't shipped yet" in text and "Tracking number" not in text


def test_track_cancelled_order_has_no_shipment(mohamed: Conversation) -> None:
    mohamed.user("track it", intent="track_order", order_id=ORDERS["cancelled"])
    text = mohamed.run(ActionTrackOrder()).text
    assert "was cancelled, so there is no shipment to track" in text


def test_track_without_id_offers_buttons_for_tracking(mohamed: Conversation) -> None:
    mohamed.user("track my order", intent="track_order")
    result = mohamed.run(ActionTrackOrder())
    assert result.responses == ["utter_ask_which_order"]
    assert result.messages[0]["buttons"][0]["payload"].startswith('/track_order{"order_id":"#W')


def test_list_orders(mohamed: Conversation) -> None:
    mohamed.user("show my orders", intent="list_orders")
    result = mohamed.run(ActionListOrders())
    text = result.text
    assert text.startswith("You have 4 orders:")
    for status, order_id in ORDERS.items():
        assert f"{order_id} – 5 items, {status}" in text
    assert len(result.messages[0]["buttons"]) == 4


def test_list_orders_when_there_are_none(domain: dict) -> None:
    convo = Conversation(domain, slots=identified_slots(NO_ORDERS, "Yusuf"))
    convo.user("my orders", intent="list_orders")
    assert convo.run(ActionListOrders()).responses == ["utter_no_orders"]


def test_resume_runs_the_pending_task_once(mohamed: Conversation) -> None:
    mohamed.slots["pending_request"] = "track_order"
    mohamed.slots["order_id"] = ORDERS["processed"]
    result = mohamed.run(ActionResumeRequest())
    assert "Tracking number" in result.text
    assert mohamed.slots["pending_request"] is None


def test_resume_without_pending_task_asks_what_next(mohamed: Conversation) -> None:
    result = mohamed.run(ActionResumeRequest())
    assert result.text.startswith("What can I do for you?")
    assert result.events == []


def test_resume_shows_an_order_id_typed_before_identifying(mohamed: Conversation) -> None:
    mohamed.slots["order_id"] = "#W8864622"
    assert mohamed.run(ActionResumeRequest()).text.startswith("Order #W8864622 is delivered.")


def test_identity_details_while_identified_change_nothing(mohamed: Conversation) -> None:
    """The lead's rule routes `inform` of an identified shopper to action_order_status."""
    mohamed.user(f"my email is {NOAH['email']}", intent="inform", email=NOAH["email"])
    result = mohamed.run(ActionOrderStatus())
    assert result.responses == ["utter_already_identified"]
    assert mohamed.slots["email"] is None
    assert mohamed.slots["customer_id"] == MOHAMED["user_id"]
