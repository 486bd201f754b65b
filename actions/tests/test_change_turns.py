"""The change form's reading of a turn (``prefill``, ``interpret``) on plain values: the shop's
real seed records (shop/data/db.json) and a parsed ``Turn`` — no Rasa tracker, no shop process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from actions.change_plans import PLANS, ChangeContext
from actions.changes import interpret, next_slot, prefill
from actions.shop_records import Customer, Order, Product
from actions.text_parsing import Turn

pytestmark = pytest.mark.no_shop

DB = json.loads((Path(__file__).resolve().parents[2] / "shop" / "data" / "db.json").read_text())
OLIVIA = Customer.parse(DB["users"]["olivia_ito_3591"])
DELIVERED, PENDING = "#W5866402", "#W5442520"  # espresso machine + sneakers; mouse, umbrella, boots


def context(change_type: str, order_id: str, **slots: Any) -> ChangeContext:
    values: Dict[str, Any] = {"change_type": change_type, "change_order_id": order_id, **slots}
    order = Order.parse(DB["orders"][order_id])
    products = {i.product_id: Product.parse(DB["products"][i.product_id]) for i in order.items}
    return ChangeContext(customer=OLIVIA, slots=values, order=order, products=products)


def said(text: str, intent: str = "inform", **entities: str) -> Turn:
    return Turn(text=text, intent=intent, entities=entities, entity_names=frozenset(entities))


def test_a_long_first_message_fills_what_it_says() -> None:
    ctx = context("return", DELIVERED)
    prefill(said("hi, i want to return the sneakers from my last order",
                 "return_order", return_reason="too small"), PLANS["return"], ctx)
    assert ctx.slots["change_items"] == ["9727387530"]
    assert ctx.slots["return_reason"] == "wrong size"
    assert next_slot(PLANS["return"], ctx) == "payment_method_id"


def test_a_cancel_reason_outside_the_rules_is_not_taken() -> None:
    ctx = context("cancel", PENDING)
    prefill(said("cancel it, i found it cheaper somewhere else", "cancel_order"),
            PLANS["cancel"], ctx)
    assert ctx.slots["cancel_reason"] is None
    assert next_slot(PLANS["cancel"], ctx) == "cancel_reason"


def test_the_original_payment_method_is_the_orders() -> None:
    ctx = context("return", DELIVERED, change_items=["9727387530"], return_reason="wrong size")
    assert interpret(said("refund it the same way i paid"), "payment_method_id",
                     PLANS["return"], ctx) is None
    assert ctx.slots["payment_method_id"] == "paypal_8049766"


def test_a_payload_for_a_method_that_is_not_allowed_is_ignored() -> None:
    ctx = context("return", DELIVERED, change_items=["9727387530"], return_reason="wrong size")
    # a credit card the order was not paid with: returns go to the original method or a gift card
    interpret(said('/inform{"payment_method_id":"credit_card_9753331"}',
                   payment_method_id="credit_card_9753331"), "payment_method_id",
              PLANS["return"], ctx)
    assert ctx.slots.get("payment_method_id") is None


def test_ambiguous_items_are_asked_about() -> None:
    ctx = context("modify_items", PENDING)
    problem = interpret(said("the black one"), "change_items", PLANS["modify_items"], ctx)
    assert problem is None or problem["response"] == "utter_which_item"
    problem = interpret(said("the boots"), "change_items", PLANS["modify_items"], ctx)
    assert problem is None and ctx.slots["change_items"] == ["2648909398"]


def test_a_new_variant_keeps_what_was_not_mentioned() -> None:
    ctx = context("modify_items", PENDING, change_items=["2648909398"], change_new_items=[])
    interpret(said("same boots but size 11"), "change_new_items", PLANS["modify_items"], ctx)
    (new_id,) = ctx.slots["change_new_items"]
    variant = ctx.variant(ctx.item("2648909398").product_id, new_id)
    assert variant.options == {"size": "11", "material": "leather", "waterproof": "yes"}


def test_a_yes_counts_only_for_the_change_read_back() -> None:
    plan = PLANS["cancel"]
    ctx = context("cancel", PENDING, cancel_reason="no longer needed")
    ctx.slots["change_readback"] = plan.fingerprint(ctx)
    ctx.slots["cancel_reason"] = "ordered by mistake"  # changed after the read-back
    problem = interpret(said("yes", "affirm"), "change_confirmed", plan, ctx)
    assert problem == {"response": "utter_readback_again"}
    assert ctx.slots["change_confirmed"] is None
    ctx.slots["change_readback"] = plan.fingerprint(ctx)
    assert interpret(said("yes", "affirm"), "change_confirmed", plan, ctx) is None
    assert ctx.slots["change_confirmed"] is True


def test_an_incomplete_address_says_what_is_missing() -> None:
    ctx = context("address", PENDING)
    problem = interpret(said("123 main street, austin"), "new_address", PLANS["address"], ctx)
    assert problem["response"] == "utter_address_incomplete" and "zip" in problem["missing"]
    assert ctx.slots.get("new_address") is None
