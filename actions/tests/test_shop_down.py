"""Shop down (closed port): every action answers politely, raises nothing, changes nothing."""

from __future__ import annotations

import json

import pytest

from actions.catalog import ActionProductInfo
from actions.handoff import ActionHandoff
from actions.identity import ValidateIdentifyForm
from actions.orders import (
    ActionListOrders,
    ActionOrderStatus,
    ActionResumeRequest,
    ActionTrackOrder,
)
from actions.shop_records import Order
from actions.tests.conftest import MOHAMED, Conversation, identified_slots

pytestmark = pytest.mark.usefixtures("shop_down")


@pytest.mark.parametrize(
    "action, intent, entities",
    [
        (ActionOrderStatus(), "order_status", {"order_id": "W8844578"}),
        (ActionOrderStatus(), "order_status", {}),
        (ActionTrackOrder(), "track_order", {"order_id": "W7824724"}),
        (ActionListOrders(), "list_orders", {}),
        (ActionProductInfo(), "product_info", {"product": "hiking boots"}),
    ],
)
def test_actions_say_the_shop_is_unavailable(domain: dict, action, intent, entities) -> None:
    convo = Conversation(domain, slots=identified_slots(MOHAMED))
    convo.user("hello?", intent=intent, **entities)
    result = convo.run(action)
    assert result.responses == ["utter_shop_unavailable"]
    assert result.events == []


def test_resume_says_the_shop_is_unavailable(domain: dict) -> None:
    slots = identified_slots(MOHAMED) | {"pending_request": "list_orders"}
    convo = Conversation(domain, slots=slots)
    result = convo.run(ActionResumeRequest())
    assert result.responses == ["utter_shop_unavailable"]
    assert convo.slots["pending_request"] is None


def test_identification_is_not_a_strike_when_the_shop_is_down(convo: Conversation) -> None:
    convo.user("my orders", intent="list_orders")
    convo.run(ValidateIdentifyForm(), form=True)
    convo.user(f"{MOHAMED['email']} {MOHAMED['zip']}", intent="inform", email=MOHAMED["email"])
    result = convo.run(ValidateIdentifyForm(), form=True)
    assert result.responses == ["utter_shop_unavailable"]
    assert result.slot("requested_slot") is None  # the form stops instead of looping
    assert convo.slots["identified"] is False and convo.slots["id_attempts"] == 0


def test_handoff_failure_is_reported(convo: Conversation) -> None:
    convo.user("human", intent="request_human")
    result = convo.run(ActionHandoff())
    assert result.responses == ["utter_handoff_failed"]
    # only the unconfirmed write is kept, to be resent with its key on the next try
    assert [e["name"] for e in result.events] == ["handoff_pending"]
    assert json.loads(result.slot("handoff_pending"))["idem_key"]


def test_unexpected_error_is_polite(domain: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in our own code still yields a reply, not a traceback."""
    from actions import orders

    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(orders, "describe_order", boom)
    convo = Conversation(domain, slots=identified_slots(MOHAMED))
    convo.user("status", intent="order_status", order_id="W8844578")
    # shop is down too in this module, so patch the client read as well
    monkeypatch.setattr(orders, "get_client", lambda: _FakeClient())
    result = convo.run(ActionOrderStatus())
    assert "something went wrong on my side" in result.text


class _FakeClient:
    def get_order(self, order_id: str, customer_id: str) -> Order:
        return Order.parse({"order_id": order_id, "status": "pending", "items": []})
