"""Issue 23, kind 5: reasons in the shopper's words. Any free-text return reason is accepted; a
known kind (damaged, wrong size, arrived late, ...) is stored as that kind, anything else as the
shopper's own words. Cancel reasons stay "no longer needed" / "ordered by mistake" (shop rule),
mapped from free text; any other cancel reason is refused and nothing is written."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    RETURN_KINDS,
    Talk,
    assert_cancelled,
    assert_returned,
    customer,
    db_order,
    fresh,
    item,
    money,
    original_method,
)


def test_own_words_reason_is_stored_as_said(stack: Stack) -> None:
    who, order = customer("sophia_garcia_1101"), "#W1023987"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    bed = item(order, "Pet Bed")
    readback = talk.until_readback(
        talk.say("i want to return the pet bed from W1023987"),
        {"reason": "my dog refuses to sleep in it, he keeps going back to the sofa",
         "payment": "gift card"},
    )
    talk.check_readback(readback, has=[order, "Pet Bed", money(bed["price"]), "sofa"],
                        lacks=["Luggage"])
    talk.yes(before)
    row = assert_returned(stack, order, [bed["item_id"]], who.method("gift_card"),
                          reason_has=["dog refuses to sleep in it"], talk=talk)
    assert row["return_reason"] not in RETURN_KINDS
    before.unchanged(but=[order])


def test_wont_turn_on_is_stored_as_damaged(stack: Stack) -> None:
    who, order = customer("mason_sanchez_7536"), "#W6209538"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    speaker = item(order, "Bluetooth Speaker")
    readback = talk.until_readback(
        talk.say("the bluetooth speaker from W6209538 made a crackling noise and now it won't "
                 "turn on at all, i want to return it"),
        {"payment": "gift card"},
    )
    talk.check_readback(readback, has=[order, "Bluetooth Speaker", "damaged"],
                        lacks=["Sunglasses"])
    talk.yes(before)
    assert_returned(stack, order, [speaker["item_id"]], who.method("gift_card"), "damaged",
                    talk=talk)
    before.unchanged(but=[order])


def test_way_too_tight_is_stored_as_wrong_size(stack: Stack) -> None:
    who, order = customer("harper_kim_2998"), "#W3433080"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    boots = item(order, "Hiking Boots")
    readback = talk.until_readback(
        talk.say("return the hiking boots from W3433080"),
        {"reason": "way too tight, my toes hurt after 10 minutes", "payment": "gift card"},
    )
    talk.check_readback(readback, has=[order, "Hiking Boots", "wrong size"],
                        lacks=["Electric Kettle"])
    talk.yes(before)
    assert_returned(stack, order, [boots["item_id"]], who.method("gift_card"), "wrong size",
                    talk=talk)
    before.unchanged(but=[order])


def test_came_too_late_for_the_race_is_stored_as_arrived_late(stack: Stack) -> None:
    who, order = customer("chen_silva_7485"), "#W8171054"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    shoes = item(order, "Running Shoes")
    readback = talk.until_readback(
        talk.say("return the running shoes from W8171054"),
        {"reason": "they arrived too late for my race last sunday",
         "payment": "to my gift card"},
    )
    talk.check_readback(readback, has=[order, "Running Shoes", "arrived late", "gift card"],
                        lacks=["Tea Kettle"])
    talk.yes(before)
    assert_returned(stack, order, [shoes["item_id"]], who.method("gift_card"), "arrived late",
                    talk=talk)
    before.unchanged(but=[order])


def test_birthday_present_reason_in_own_words(stack: Stack) -> None:
    who, order = customer("sofia_hernandez_5364"), "#W3947049"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    helmet = item(order, "Cycling Helmet")
    readback = talk.until_readback(
        talk.say("i'd like to send back the helmet from W3947049"),
        {"reason": "my son got the exact same one from his grandma for his birthday",
         "payment": "the original card"},
    )
    talk.check_readback(readback, has=[order, "Cycling Helmet", "birthday"])
    talk.yes(before)
    row = assert_returned(stack, order, [helmet["item_id"]], original_method(order),
                          reason_has=["grandma", "birthday"], talk=talk)
    assert row["return_reason"] not in RETURN_KINDS
    before.unchanged(but=[order])


def test_bought_it_by_accident_is_ordered_by_mistake(stack: Stack) -> None:
    who, order = customer("lucas_brown_6720"), "#W4860251"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("cancel W4860251 please, i bought it by accident"))
    talk.check_readback(readback, has=[order, "Luggage Set", "ordered by mistake"])
    talk.yes(before)
    assert_cancelled(stack, order, "ordered by mistake", talk)
    before.unchanged(but=[order])


def test_dont_need_it_anymore_is_no_longer_needed(stack: Stack) -> None:
    who, order = customer("lei_patel_3139"), "#W2403263"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name_lower")
    before = talk.snapshot()
    readback = talk.until_readback(
        talk.say("cancel order W2403263 please"),
        {"reason": "turns out i dont need it anymore, got a camera for christmas"},
    )
    talk.check_readback(readback, has=[order, "Digital Camera", "Perfume", "no longer needed"])
    talk.yes(before)
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order])


def test_found_it_cheaper_is_refused_then_a_valid_reason_is_taken(stack: Stack) -> None:
    who, order = customer("yusuf_ahmed_6232"), "#W7756209"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    reply = talk.say("cancel W7756209, i found the grill cheaper somewhere else")
    if reply.question() == "reason" and "cheaper" not in reply.lower:
        reply = talk.say("i found it cheaper somewhere else")
    assert not reply.is_readback, f"read back a cancel with a reason the shop refuses{talk.log}"
    assert reply.asks, f"no question for another reason{talk.log}"
    before.unchanged(why="after a refused cancel reason")
    readback = talk.until_readback(talk.say("ok fine, then i just dont need it anymore"))
    talk.check_readback(readback, has=[order, "Grill", "Backpack", "no longer needed"])
    talk.yes(before)
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order])


def test_slow_delivery_is_no_cancel_reason_and_nothing_is_written(stack: Stack) -> None:
    who, order = customer("ivan_santos_6635"), "#W8770097"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    reply = talk.say("cancel my office chair order W8770097, the delivery takes way too long")
    if reply.question() == "reason" and "long" not in reply.lower:
        reply = talk.say("because the delivery takes way too long")
    assert not reply.is_readback, f"read back a cancel with a reason the shop refuses{talk.log}"
    talk.takes_back("never mind then, i'll keep it")
    before.unchanged(why="after a refused reason and a change of mind")
    assert db_order(stack, order)["status"] == "pending"
