"""change_form against the real shop: every change is read back, done only after "yes".

``FormDriver`` plays Rasa's part: it runs validate_change_form on each message, then the ask
action of the requested slot (or notes the response Rasa would utter), and when the form ends,
action_submit_change. The shop's state is read back through its API after each flow.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from actions.change_actions import (
    ActionAskChangeConfirmed,
    ActionAskChangeField,
    ActionAskChangeItems,
    ActionAskChangeNewItems,
    ActionAskChangeOrderId,
    ActionAskPaymentMethodId,
    ActionStopChange,
    ActionSubmitChange,
)
from actions.changes import ValidateChangeForm
from actions.shop_client import ShopClient
from actions.tests.conftest import Conversation, identified_slots, stored_order

OLIVIA = {"user_id": "olivia_ito_3591"}
ASK_ACTIONS = {
    a.slot: a
    for a in (
        ActionAskChangeOrderId(),
        ActionAskChangeItems(),
        ActionAskChangeNewItems(),
        ActionAskPaymentMethodId(),
        ActionAskChangeConfirmed(),
        ActionAskChangeField(),
    )
}


class FormDriver:
    """Runs change_form turns the way Rasa's FormAction does."""

    def __init__(self, conversation: Conversation) -> None:
        self.conv = conversation
        self.rejected = False
        self.submitted = False

    def say(self, text: str, intent: str = "inform", **entities: str) -> str:
        self.conv.user(text, intent, **entities)
        texts: List[str] = []
        self.last_buttons: List[Dict[str, str]] = []
        result = self.conv.run(ValidateChangeForm(), form=False)
        self.last_buttons += [b for m in result.messages for b in m.get("buttons") or []]
        texts.append(result.text)
        self.rejected = not result.events
        if self.rejected:
            return "\n".join(texts)
        if not self.conv.active_loop:  # activation, as Rasa records it
            self.conv.active_loop = {"name": "change_form"}
            self.conv.events.append({"event": "active_loop", "name": "change_form"})
        requested = self.conv.slots.get("requested_slot")
        if requested is None:
            self.conv.active_loop = {}
            self.conv.events.append({"event": "active_loop", "name": None})
            submit = self.conv.run(ActionSubmitChange())
            self.submitted = True
            texts.append(submit.text)
        elif requested in ASK_ACTIONS:
            asked = self.conv.run(ASK_ACTIONS[requested])
            self.last_buttons += [b for m in asked.messages for b in m.get("buttons") or []]
            texts.append(asked.text)
        else:
            texts.append(f"<utter_ask_{requested}>")
        return "\n".join(t for t in texts if t)

    @property
    def requested(self) -> Optional[str]:
        return self.conv.slots.get("requested_slot")


@pytest.fixture
def olivia(domain: Dict[str, Any]) -> FormDriver:
    return FormDriver(Conversation(domain, slots=identified_slots(OLIVIA, "Olivia")))


def order(client: ShopClient, order_id: str) -> Dict[str, Any]:
    return stored_order(client, order_id, OLIVIA["user_id"])


def test_cancel_is_read_back_and_done_only_after_yes(
    olivia: FormDriver, client: ShopClient
) -> None:
    text = olivia.say("cancel order #W7941031", intent="cancel_order", order_id="#W7941031")
    assert olivia.requested == "cancel_reason" and "<utter_ask_cancel_reason>" in text
    reason = "no longer needed"
    text = olivia.say(f'/inform{{"cancel_reason":"{reason}"}}', cancel_reason=reason)
    assert olivia.requested == "change_confirmed"
    assert "cancel order #W7941031" in text and "Wristwatch" in text and "$2,198.09" in text
    assert order(client, "#W7941031")["status"] == "pending"  # nothing before the yes
    text = olivia.say("yes", intent="affirm")
    assert olivia.submitted and "is cancelled" in text and "5 to 7 business days" in text
    after = order(client, "#W7941031")
    assert after["status"] == "cancelled" and after["cancel_reason"] == "no longer needed"
    assert olivia.conv.slots["change_type"] is None  # everything forgotten afterwards


def test_other_cancel_reason_is_refused_and_nothing_changes(
    olivia: FormDriver, client: ShopClient
) -> None:
    olivia.say("cancel #W3657213", intent="cancel_order", order_id="#W3657213")
    text = olivia.say("I found it cheaper elsewhere")
    assert "only be cancelled because it's no longer needed or was ordered by mistake" in text
    assert olivia.requested == "cancel_reason"
    stop = olivia.conv.run(ActionStopChange())
    assert stop.responses == ["utter_change_stopped"]
    assert order(client, "#W3657213")["status"] == "pending"


def test_processed_order_cannot_be_cancelled_and_says_what_is_possible(
    olivia: FormDriver, client: ShopClient
) -> None:
    text = olivia.say("cancel W5353646", intent="cancel_order", order_id="W5353646")
    assert "being prepared in our warehouse" in text and "track" in text
    assert olivia.submitted and order(client, "#W5353646")["status"] == "processed"


def test_no_then_choose_what_to_change(olivia: FormDriver, client: ShopClient) -> None:
    olivia.say("cancel #W3657213", intent="cancel_order", order_id="#W3657213")
    olivia.say("ordered it by mistake")
    assert olivia.requested == "change_confirmed"
    text = olivia.say("no", intent="deny")
    assert olivia.requested == "change_field" and "nothing has been changed" in text
    olivia.say('/inform{"change_field":"cancel_reason"}', change_field="cancel_reason")
    assert olivia.requested == "cancel_reason"
    assert order(client, "#W3657213")["status"] == "pending"


def test_a_yes_counts_only_for_what_was_read_back(olivia: FormDriver, client: ShopClient) -> None:
    olivia.say("cancel #W3657213", intent="cancel_order", order_id="#W3657213")
    olivia.say("no longer needed")
    assert olivia.requested == "change_confirmed"
    # a typed payload that says yes AND switches the order: the read-back no longer matches
    text = olivia.say('/affirm{"order_id":"#W5442520"}', intent="affirm", order_id="#W5442520")
    assert not olivia.submitted
    assert order(client, "#W3657213")["status"] == "pending"
    assert order(client, "#W5442520")["status"] == "pending"
    # the new order is read back on its own and needs its own yes
    assert olivia.requested == "change_confirmed"
    assert "Please check: cancel order #W5442520" in text


def test_submit_without_read_back_does_nothing(olivia: FormDriver, client: ShopClient) -> None:
    conv = olivia.conv
    conv.slots.update(
        change_type="cancel",
        change_order_id="#W3657213",
        cancel_reason="no longer needed",
        change_confirmed=True,  # as if set by a forged event: no read-back fingerprint
    )
    conv.user("/affirm", intent="affirm")
    result = conv.run(ActionSubmitChange())
    assert "haven't done anything" in result.text
    assert order(client, "#W3657213")["status"] == "pending"


def test_return_to_a_gift_card(olivia: FormDriver, client: ShopClient) -> None:
    text = olivia.say("I want to return something", intent="return_order")
    assert olivia.requested == "change_order_id"
    payloads = [b["payload"] for b in olivia.last_buttons]
    assert payloads == ['/inform{"order_id":"#W5866402"}']  # only the delivered order fits
    olivia.say('/inform{"order_id":"#W5866402"}', order_id="#W5866402")
    assert olivia.requested == "change_items"
    olivia.say("the sneakers")
    assert olivia.requested == "return_reason"
    olivia.say("they are too small")
    assert olivia.requested == "payment_method_id"
    text = olivia.say("to my gift card please")
    assert olivia.requested == "change_confirmed"
    assert "Sneakers" in text and "Espresso" not in text and "$207.75" in text
    assert "gift card" in text and "wrong size" in text
    text = olivia.say("yes", intent="affirm")
    assert "email with the return instructions" in text
    after = order(client, "#W5866402")
    assert after["status"] == "return requested"
    assert after["return_items"] == ["9727387530"]
    assert after["return_payment_method_id"] == "gift_card_7794233"


def test_modify_items_then_payment_is_refused_after_item_change(
    olivia: FormDriver, client: ShopClient
) -> None:
    olivia.say("change the size of something in #W5442520", intent="modify_order",
                order_id="#W5442520")
    assert olivia.requested == "change_items"
    olivia.say("the hiking boots")
    assert olivia.requested == "change_new_items"
    text = olivia.say("not waterproof")
    if olivia.requested == "change_new_items":  # several fit: pick the first offered
        payload_id = olivia.last_buttons[0]["payload"].split('"item_id":"')[1].split('"')[0]
        text = olivia.say(f'/inform{{"item_id":"{payload_id}"}}', item_id=payload_id)
    assert olivia.requested == "payment_method_id", text
    text = olivia.say("paypal")
    assert olivia.requested == "change_confirmed"
    assert "Hiking Boots" in text and "only once" in text
    new_id = olivia.conv.slots["change_new_items"][0]
    olivia.say("yes", intent="affirm")
    after = order(client, "#W5442520")
    assert after["status"] == "pending (item modified)"
    assert new_id in [i["item_id"] for i in after["items"]]
    text = olivia.say("pay it with paypal", intent="change_payment", order_id="#W5442520")
    assert "already changed once" in text
    assert order(client, "#W5442520")["status"] == "pending (item modified)"


def test_address_of_an_order_from_free_text(olivia: FormDriver, client: ShopClient) -> None:
    olivia.say("change the shipping address of #W3657213", intent="change_address",
               order_id="#W3657213")
    assert olivia.requested == "new_address"
    text = olivia.say("123 Main St Apt 4, Austin, TX 78701")
    assert olivia.requested == "change_confirmed"
    assert "123 Main St, Apt 4, Austin, TX 78701, USA" in text
    olivia.say("yes", intent="affirm")
    address = order(client, "#W3657213")["address"]
    assert address["address1"] == "123 Main St" and address["zip"] == "78701"
    assert address["city"] == "Austin" and address["state"] == "TX"


def test_default_address(olivia: FormDriver, client: ShopClient) -> None:
    olivia.say("update my default address", intent="change_address")
    assert olivia.requested == "new_address"
    text = olivia.say("9 Elm Rd unit 2, Denver, Colorado 80202")
    assert "default address becomes" in text
    olivia.say("yes", intent="affirm")
    customer = client.get_customer(OLIVIA["user_id"])
    assert customer.address.address1.startswith("9 Elm")
    assert customer.address.state == "CO"


def test_switching_task_inside_the_form(olivia: FormDriver) -> None:
    olivia.say("I want to return something", intent="return_order")
    olivia.say("actually cancel #W3657213 instead", intent="cancel_order", order_id="#W3657213")
    assert olivia.conv.slots["change_type"] == "cancel"
    assert olivia.requested == "cancel_reason"


def test_digression_is_left_to_the_rules(olivia: FormDriver) -> None:
    olivia.say("cancel #W3657213", intent="cancel_order", order_id="#W3657213")
    olivia.say("how long do refunds take?", intent="faq")
    assert olivia.rejected  # Rasa then answers the FAQ and comes back to the form


def test_unidentified_shopper_gets_nothing(domain: Dict[str, Any]) -> None:
    driver = FormDriver(Conversation(domain))
    text = driver.say("/cancel_order{\"order_id\":\"#W3657213\"}", intent="cancel_order",
                      order_id="#W3657213")
    assert "identify you" in text and "Wristwatch" not in text


def test_shop_down_is_a_polite_answer(olivia: FormDriver, shop_down: str) -> None:
    text = olivia.say("cancel #W3657213", intent="cancel_order", order_id="#W3657213")
    assert "can't reach our order system" in text
    assert "Traceback" not in text


def test_what_the_request_already_says_is_taken(olivia: FormDriver, client: ShopClient) -> None:
    text = olivia.say("cancel #W3657213, I ordered it by mistake", intent="cancel_order",
                      order_id="#W3657213")
    assert olivia.requested == "change_confirmed"
    assert "ordered by mistake" in text and "Shall I go ahead?" in text
    assert order(client, "#W3657213")["status"] == "pending"
