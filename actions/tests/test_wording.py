"""actions/wording.py on the shop's real seed records (shop/data/db.json), no shop process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actions.shop_records import Address, Order, PaymentMethod, Product
from actions.wording import (
    describe_item,
    describe_method,
    describe_order,
    format_address,
    format_item,
    format_money,
    item_lines,
    order_label,
    refusal,
    settlement,
)

pytestmark = pytest.mark.no_shop

DB = json.loads((Path(__file__).resolve().parents[2] / "shop" / "data" / "db.json").read_text())


def method(user_id: str, method_id: str) -> PaymentMethod:
    return PaymentMethod.parse(DB["users"][user_id]["payment_methods"][method_id], method_id)


def test_money_is_half_up_cents_with_thousands() -> None:
    assert format_money(12) == "$12.00"
    assert format_money(1234.5) == "$1,234.50"
    assert format_money(-3) == "-$3.00"
    assert format_money("47.84") == "$47.84"
    assert format_money(0.005) == "$0.01"  # half up, not float's banker's rounding
    assert format_money(2.675) == "$2.68"
    assert format_money("n/a") == "n/a"  # never a crash on a value that is no number


def test_payment_methods_never_show_a_full_number() -> None:
    isabella = "isabella_lopez_6490"
    assert describe_method(method(isabella, "credit_card_8897086")) == "Visa ending 8902"
    assert describe_method(method(isabella, "credit_card_8554680")) == "Mastercard ending 4336"
    assert describe_method(method(isabella, "gift_card_8245350")) == "gift card (balance $60.00)"
    assert describe_method(method(isabella, "paypal_1621947")) == "PayPal"
    assert describe_method(PaymentMethod("x", "credit_card", "amex", "1000")) == (
        "American Express ending 1000")
    assert describe_method(None) == "the original payment method"


def test_items_and_options() -> None:
    boots = Product.parse(next(p for p in DB["products"].values() if p["name"] == "Hiking Boots"))
    variant = boots.variant("4127323219")
    assert format_item(boots.name, variant.options) == "Hiking Boots (10, synthetic, waterproof no)"
    order = Order.parse(DB["orders"]["#W1840144"])
    assert all(describe_item(i).startswith(i.name) for i in order.items)
    lines = item_lines(list(order.items) + [order.items[0]])  # a second unit of the first item
    assert lines[0].startswith("• 2 × ") and len(lines) == len({i.item_id for i in order.items})


def test_order_answers() -> None:
    order = Order.parse(DB["orders"]["#W1840144"])
    text = describe_order(order)
    assert text.startswith(f"Order #W1840144 is {order.status}.")
    assert f"Total: {format_money(order.total)}" in text
    assert order_label(order) == f"#W1840144 – {len(order.items)} items, {order.status}"
    assert format_address(order.address).endswith(", USA")
    empty = Address("1 Main St", "", "Austin", "TX", "", "78701")
    assert format_address(empty) == "1 Main St, Austin, TX 78701"


@pytest.mark.parametrize("status, words, buttons", [
    ("processed", "being prepared in our warehouse", ["Track it"]),
    ("delivered", "already been delivered", ["Return items", "Exchange items"]),
    ("cancelled", "which is final", []),
])
def test_refusals_say_what_is_possible_instead(status: str, words: str, buttons: list) -> None:
    order = Order.parse(dict(DB["orders"]["#W1840144"], status=status))
    text, offered = refusal(order, "cancel", "cancelled")
    assert words in text and [b["title"] for b in offered] == buttons
    for button in offered:
        assert button["payload"].endswith('{"order_id":"#W1840144"}')


def test_settlement_tenses() -> None:
    assert settlement(5, "PayPal") == "You pay the difference of $5.00 with your PayPal."
    assert settlement(5, "PayPal", "will").startswith("You'll pay")
    assert settlement(5, "PayPal", "paid").startswith("You've paid")
    assert settlement(-2, "PayPal", "paid") == "You'll get $2.00 back to your PayPal."
    assert settlement(0, "PayPal") == "Same price: nothing to pay or refund."
