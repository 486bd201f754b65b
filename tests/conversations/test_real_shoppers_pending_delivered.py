"""Issue 23, kind 2: shoppers mix up the words. "Exchange" on a *pending* order is carried into
an item modification (same items and wanted options, no refusal); "modify / change the item" on
a *delivered* order is carried into an exchange."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Reply,
    Talk,
    assert_exchanged,
    assert_modified,
    customer,
    fresh,
    item,
    money,
    positions,
    variant_like,
)

REFUSED = ("hasn't been delivered", "has already been delivered", "can't be exchanged",
           "can't be changed")


def not_refused(talk: Talk, reply: Reply) -> None:
    for words in REFUSED:
        assert words not in reply.lower, f"refused instead of carrying the change{talk.log}"


def test_exchange_on_a_pending_order_becomes_an_item_change(stack: Stack) -> None:
    who, order = customer("emma_ito_4529"), "#W8664580"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    bottle = item(order, "Water Bottle")
    wanted = variant_like(bottle, capacity="750ml")
    first = talk.say("hi, i want to exchange the water bottle in W8664580 for the 750ml one, "
                     "same stainless steel and blue")
    not_refused(talk, first)
    readback = talk.until_readback(first, {"payment": "refund the difference to my paypal"})
    talk.check_readback(readback, has=[order, "Water Bottle", "750ml", money(bottle["price"]),
                                       money(wanted["price"])])
    talk.yes(before)
    assert_modified(stack, order, {0: wanted}, who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_exchange_of_an_action_camera_not_shipped_yet(stack: Stack) -> None:
    who, order = customer("james_sanchez_3954"), "#W7464385"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    camera = item(order, "Action Camera")
    wanted = variant_like(camera, resolution="4K", waterproof="yes")
    first = talk.say("could i exchange my action camera on order w7464385 for the 4K "
                     "waterproof silver one? i dont think it has shipped yet")
    not_refused(talk, first)
    readback = talk.until_readback(first, {"payment": "paypal"})
    talk.check_readback(readback, has=[order, "Action Camera", "4K", money(wanted["price"])])
    talk.yes(before)
    assert_modified(stack, order, {0: wanted}, who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_sunglasses_exchanged_before_shipping_pay_the_difference(stack: Stack) -> None:
    who, order = customer("yusuf_hernandez_6467"), "#W2033238"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    glasses = item(order, "Sunglasses")
    wanted = variant_like(glasses, **{"lens color": "brown", "frame material": "plastic"})
    assert wanted["price"] > glasses["price"]  # the shopper pays the difference
    first = talk.say("exchange the sunglasses on my pending order W2033238 for black frames "
                     "with the brown lenses pls, plastic frame is fine")
    not_refused(talk, first)
    readback = talk.until_readback(first, {"payment": "paypal"})
    talk.check_readback(readback, has=[order, "Sunglasses", "brown", money(wanted["price"]),
                                       money(round(wanted["price"] - glasses["price"], 2))])
    talk.yes(before)
    assert_modified(stack, order, {positions(order, "Sunglasses")[0]: wanted},
                    who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_modify_on_a_delivered_order_becomes_an_exchange(stack: Stack) -> None:
    who, order = customer("amelia_gonzalez_4098"), "#W7209932"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    backpack = item(order, "Backpack")
    wanted = variant_like(backpack, color="black", size="large")
    first = talk.say("i'd like to modify the backpack in order W7209932, can it be the black "
                     "one in large instead? the grey medium is too small for my laptop stuff")
    not_refused(talk, first)
    readback = talk.until_readback(first, {"payment": "my gift card"})
    talk.check_readback(readback, has=[order, "Backpack", "black", "large",
                                       money(wanted["price"])], lacks=["T-Shirt"])
    talk.yes(before)
    assert_exchanged(stack, order, [backpack], [wanted], who.method("gift_card"), talk)
    before.unchanged(but=[order])


def test_change_the_boots_size_of_a_delivered_order(stack: Stack) -> None:
    who, order = customer("sophia_nguyen_2370"), "#W6070601"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name_lower")
    before = talk.snapshot()
    boots = item(order, "Hiking Boots")
    wanted = variant_like(boots, size="8")
    first = talk.say("can you change the boots from W6070601 to a size 8? keep them "
                     "synthetic and not waterproof like now")
    not_refused(talk, first)
    readback = talk.until_readback(first, {"payment": "paypal"})
    talk.check_readback(readback, has=[order, "Hiking Boots", "8", money(wanted["price"])])
    talk.yes(before)
    assert_exchanged(stack, order, [boots], [wanted], who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_modify_the_helmet_ventilation_after_delivery(stack: Stack) -> None:
    who, order = customer("evelyn_wilson_8460"), "#W6392164"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    helmet = item(order, "Cycling Helmet")
    wanted = variant_like(helmet, ventilation="medium")
    first = talk.say("please modify the helmet in W6392164 to the medium ventilation one, same "
                     "size M and red")
    not_refused(talk, first)
    readback = talk.until_readback(first, {"payment": "gift card"})
    talk.check_readback(readback, has=[order, "Cycling Helmet", "medium",
                                       money(wanted["price"])])
    talk.yes(before)
    assert_exchanged(stack, order, [helmet], [wanted], who.method("gift_card"), talk)
    before.unchanged(but=[order])
