"""Issue 23, kind 6: relative choices. A new variant "the biggest", "the cheapest one available",
"the most expensive", "not more expensive", "closest in price but not more expensive" is chosen
among the *available* variants of the same product, other options kept as asked. "My last /
latest / most recent order" is the last order in the customer's list; "the order with the boots"
is the customer's order containing that product (asked when several do)."""

from __future__ import annotations

import re

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Talk,
    assert_cancelled,
    assert_exchanged,
    assert_modified,
    assert_returned,
    customer,
    db_order,
    fresh,
    item,
    money,
    names_in,
    only,
    other_variants,
    positions,
    seed_order,
)


def capacity(variant: dict) -> float:
    return float(re.match(r"[\d.]+", variant["options"]["capacity"]).group())


def test_the_biggest_kettle_in_the_same_white_glass(stack: Stack) -> None:
    who, order = customer("daiki_silva_5033"), "#W1579160"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    kettle = item(order, "Electric Kettle")
    same = other_variants(kettle, material="glass", color="white")
    biggest = max(same, key=capacity)
    assert [capacity(v) for v in same].count(capacity(biggest)) == 1
    readback = talk.until_readback(
        talk.say("on w1579160 can u swap the electric kettle for the biggest one you have, "
                 "same white glass"),
        {"payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Electric Kettle", biggest["options"]["capacity"],
                                       money(biggest["price"])])
    talk.yes(before)
    assert_modified(stack, order, {positions(order, "Electric Kettle")[0]: biggest},
                    who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_the_cheapest_helmet_available_in_size_s(stack: Stack) -> None:
    who, order = customer("yara_johansson_1629"), "#W9994227"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    helmet = item(order, "Cycling Helmet")
    cheapest = min(other_variants(helmet, size="S"), key=lambda v: v["price"])
    readback = talk.until_readback(
        talk.say("exchange the helmet from W9994227 for the cheapest one you have in size S"),
        {"payment": "my credit card"},
    )
    talk.check_readback(readback, has=[order, "Cycling Helmet", money(cheapest["price"]),
                                       cheapest["options"]["color"]])
    talk.yes(before)
    assert_exchanged(stack, order, [helmet], [cheapest], who.method("credit_card"), talk)
    before.unchanged(but=[order])


def test_the_most_expensive_500ml_water_bottle(stack: Stack) -> None:
    who, order = customer("yusuf_khan_7091"), "#W1787190"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    bottle = item(order, "Water Bottle")
    priciest = max(other_variants(bottle, capacity="500ml"), key=lambda v: v["price"])
    readback = talk.until_readback(
        talk.say("in my order W1787190 i want to change the water bottle to the most expensive "
                 "500ml one you have"),
        {"payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Water Bottle", "500ml",
                                       money(priciest["price"])],
                        lacks=["Laptop", "Perfume", "Headphones"])
    talk.yes(before)
    assert_modified(stack, order, {positions(order, "Water Bottle")[0]: priciest},
                    who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_a_bigger_kettle_but_not_more_expensive(stack: Stack) -> None:
    who, order = customer("james_kim_7213"), "#W9154975"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    kettle = item(order, "Electric Kettle")
    bigger = [v for v in other_variants(kettle, material="glass", color="white")
              if capacity(v) > capacity(kettle)]
    assert any(v["price"] > kettle["price"] for v in bigger)  # the price limit matters
    wanted = only([v for v in bigger if v["price"] <= kettle["price"]])
    readback = talk.until_readback(
        talk.say("can i change the electric kettle in W9154975 to a bigger one, same white "
                 "glass, but nothing more expensive than what i paid"),
        {"payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Electric Kettle", wanted["options"]["capacity"],
                                       money(wanted["price"])])
    talk.yes(before)
    assert_modified(stack, order, {positions(order, "Electric Kettle")[0]: wanted},
                    who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_closest_in_price_but_not_more_expensive_speaker(stack: Stack) -> None:
    who, order = customer("anya_brown_2024"), "#W1170711"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    speaker = item(order, "Bluetooth Speaker")
    cheaper = [v for v in other_variants(speaker)
               if v["price"] <= speaker["price"]
               and v["options"]["color"] != speaker["options"]["color"]]
    wanted = max(cheaper, key=lambda v: v["price"])
    assert [v["price"] for v in cheaper].count(wanted["price"]) == 1
    readback = talk.until_readback(
        talk.say("i'd like to swap the bluetooth speaker in W1170711 for another colour, "
                 "whichever is closest in price to mine but not more expensive"),
        {"payment": "the mastercard"},
    )
    talk.check_readback(readback, has=[order, "Bluetooth Speaker", wanted["options"]["color"],
                                       money(wanted["price"])],
                        lacks=["Wall Clock", "Desk Lamp", "Dumbbell"])
    talk.yes(before)
    assert_modified(stack, order, {positions(order, "Bluetooth Speaker")[0]: wanted},
                    who.method("credit_card"), talk)
    before.unchanged(but=[order])


def test_cancel_my_last_order(stack: Stack) -> None:
    who = customer("ivan_santos_6635")
    order = who.last_order
    fresh(stack, order)
    assert seed_order(order)["status"] == "pending"
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("please cancel my last order, i ordered it by "
                                            "mistake"))
    talk.check_readback(readback, has=[order, *names_in(order)])
    talk.yes(before)
    assert_cancelled(stack, order, "ordered by mistake", talk)
    before.unchanged(but=[order])


def test_return_the_keyboard_from_my_most_recent_order(stack: Stack) -> None:
    who = customer("lucas_santos_6600")
    order = who.last_order
    fresh(stack, order)
    keyboard = item(order, "Mechanical Keyboard")
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    readback = talk.until_readback(
        talk.say("i want to return the keyboard from my most recent order"),
        {"reason": "the switches are way too loud for the office", "payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Mechanical Keyboard", money(keyboard["price"])],
                        lacks=["Tablet", "Action Camera", "Vacuum"])
    talk.yes(before)
    assert_returned(stack, order, [keyboard["item_id"]], who.method("paypal"),
                    reason_has=["loud"], talk=talk)
    before.unchanged(but=[order])


def test_cancel_the_order_with_the_hiking_boots(stack: Stack) -> None:
    who = customer("isabella_santos_1643")
    order = only([o for o in who.orders if "Hiking Boots" in names_in(o)], "order with boots")
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("cancel the order with the hiking boots, "
                                            "dont need them anymore"))
    talk.check_readback(readback, has=[order, "Hiking Boots", "Smart Watch"], whole_order=True)
    talk.yes(before)
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order])


def test_two_orders_with_a_helmet_the_assistant_asks_which(stack: Stack) -> None:
    who = customer("aarav_thomas_2711")
    with_helmet = [o for o in who.orders if "Cycling Helmet" in names_in(o)]
    assert len(with_helmet) == 2
    order = only([o for o in with_helmet if "Espresso Machine" in names_in(o)], "order")
    other = next(o for o in with_helmet if o != order)
    fresh(stack, order, other)
    talk = Talk(stack, who)
    talk.identify("name_lower")
    before = talk.snapshot()
    ask = talk.say("cancel the order with the cycling helmet please, ordered it by mistake")
    assert ask.asks and not ask.is_readback, talk.log
    offered = ask.text + " ".join(b["payload"] for b in ask.buttons)
    assert order in offered and other in offered, f"both orders should be offered{talk.log}"
    readback = talk.until_readback(talk.say("the one with the espresso machine"))
    talk.check_readback(readback, has=[order, "Espresso Machine", "Cycling Helmet"],
                        lacks=[other])
    talk.yes(before)
    assert_cancelled(stack, order, "ordered by mistake", talk)
    before.unchanged(but=[order], methods=True)  # the gift card is credited at once
    assert db_order(stack, other) == before.orders[other]


def test_my_latest_order_is_in_the_warehouse_nothing_cancelled(stack: Stack) -> None:
    who = customer("liam_thomas_8833")
    order = who.last_order
    assert seed_order(order)["status"] == "processed"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    reply = talk.say("cancel my latest order please, i dont need it")
    assert order in reply.text and not reply.is_readback, talk.log
    talk.say("yes")
    before.unchanged(why="after asking to cancel a processed order")
