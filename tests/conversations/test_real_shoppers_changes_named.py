"""Issue 23, kind 1: change requests that name products and options go to the change flow
(never a catalog answer). Cancel is whole-order: naming some items cancels the whole order, and
the read-back says so. Returns and exchanges take exactly the named items."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Talk,
    assert_cancelled,
    assert_exchanged,
    assert_returned,
    cancel_refunds,
    customer,
    db_order,
    fresh,
    item,
    money,
    names_in,
    original_method,
    total,
    variant_like,
)


def test_naming_the_kettle_cancels_the_whole_order(stack: Stack) -> None:
    who, order = customer("ivan_kim_7727"), "#W6443279"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email", opener="hi there,")
    before = talk.snapshot()

    first = talk.say("i dont need the tea kettle from w6443279 anymore, can u cancle it?")
    talk.not_catalog(first)
    readback = talk.until_readback(first)
    # the shopper named only the kettle: the read-back lists the skateboard too
    talk.check_readback(readback, has=[order, "Tea Kettle", "Skateboard", money(total(order))],
                        whole_order=True)
    done = talk.yes(before)
    assert order in done.text and "cancel" in done.lower, talk.log
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order])


def test_two_bookshelves_named_the_read_back_lists_all_five_items(stack: Stack) -> None:
    who, order = customer("liam_silva_3628"), "#W8367567"
    fresh(stack, order)
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say(
        f"Liam Silva here, zip {who.zip}. pls cancel the two glass bookshelves on order "
        "W8367567, i ordered them by mistake"
    )
    talk.not_catalog(first)
    first = talk.finish_identification(first, "name")
    readback = talk.until_readback(first)
    talk.check_readback(readback, has=[order, *names_in(order)], whole_order=True)
    talk.yes(before)
    assert_cancelled(stack, order, "ordered by mistake", talk)
    before.unchanged(but=[order])


def test_garden_hose_named_with_its_options_bought_by_accident(stack: Stack) -> None:
    who, order = customer("ava_nguyen_4072"), "#W2601346"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    first = talk.say("hey can you cancel the black 50ft garden hose in order #W2601346? "
                     "bought it by accident")
    talk.not_catalog(first)
    readback = talk.until_readback(first)
    talk.check_readback(readback, has=[order, "Garden Hose", "Makeup Kit", "ordered by mistake"],
                        whole_order=True)
    talk.yes(before, "yes please")
    assert_cancelled(stack, order, "ordered by mistake", talk)
    before.unchanged(but=["#W2601346"])


def test_espresso_machine_and_lamp_named_kettle_goes_too(stack: Stack) -> None:
    who, order = customer("mia_jackson_2250"), "#W7807323"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words", opener="Good morning!")
    before = talk.snapshot()
    first = talk.say("I need to cancel the espresso machine and the desk lamp from w 7807323, "
                     "we dont need them anymore since we moved in with my parents")
    talk.not_catalog(first)
    readback = talk.until_readback(first)
    refund = cancel_refunds(order)[0]
    talk.check_readback(readback, has=[order, "Espresso Machine", "Desk Lamp", "Electric Kettle",
                                       money(refund["amount"])], whole_order=True)
    talk.yes(before, "yes")
    assert_cancelled(stack, order, "no longer needed", talk)
    # the gift card it was paid with is credited at once; the other three orders untouched
    before.unchanged(but=[order], methods=True)


def test_red_headphones_sent_back_and_nothing_else(stack: Stack) -> None:
    who, order = customer("raj_sanchez_2970"), "#W7736708"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    headphones = item(order, "Headphones")
    first = talk.say("i want to send back the red on-ear headphones from w7736708, "
                     "the left ear stopped working after 2 days")
    talk.not_catalog(first)
    readback = talk.until_readback(first, {"payment": "to the card i paid with"})
    talk.check_readback(readback, has=[order, "Headphones", money(headphones["price"])],
                        lacks=["Luggage", "Notebook", "Jigsaw"])
    done = talk.yes(before)
    assert "return" in done.lower, talk.log
    assert_returned(stack, order, [headphones["item_id"]], original_method(order), "damaged",
                    talk=talk)
    before.unchanged(but=[order])


def test_glass_water_bottle_exchanged_for_the_named_steel_one(stack: Stack) -> None:
    who, order = customer("mia_garcia_4516"), "#W5490111"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name_lower")
    before = talk.snapshot()
    bottle = item(order, "Water Bottle")
    wanted = variant_like(bottle, material="stainless steel", color="red")
    first = talk.say("can i exchange the black glass water bottle from W5490111 for the red "
                     "stainless steel one? same 750ml size")
    talk.not_catalog(first)
    readback = talk.until_readback(first, {"payment": "paypal"})
    talk.check_readback(readback, has=[order, "Water Bottle", money(bottle["price"]),
                                       money(wanted["price"]), "red"],
                        lacks=["Keyboard", "Backpack", "Action Camera"])
    talk.yes(before)
    assert_exchanged(stack, order, [bottle], [wanted], who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_named_wristwatch_on_a_processed_order_is_not_cancelled(stack: Stack) -> None:
    who, order = customer("yara_sanchez_9145"), "#W9102482"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    reply = talk.say("please cancel the wristwatch from W9102482, i dont need it anymore")
    talk.not_catalog(reply)
    assert order in reply.text and not reply.is_readback, talk.log
    assert reply.question() != "reason", talk.log  # no reason asked for what can't be done
    talk.say("ok then just do it anyway, yes")
    before.unchanged(why="after a refused cancel")
    assert db_order(stack, order)["status"] == "processed"


def test_no_to_the_read_back_of_a_named_cancel_writes_nothing(stack: Stack) -> None:
    who, order = customer("mason_lopez_8519"), "#W9892169"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    first = talk.say("cancel the helmet and the tea kettle from W9892169, ordered them by "
                     "mistake")
    readback = talk.until_readback(first)
    talk.check_readback(readback, has=[order, "Cycling Helmet", "Tea Kettle"])
    talk.say("no")
    talk.takes_back("leave it, i'll keep the order after all")
    before.unchanged(why="after a no")
    assert db_order(stack, order)["status"] == "pending"


def test_another_customers_order_named_reveals_and_changes_nothing(stack: Stack) -> None:
    who, theirs = customer("yara_moore_6466"), "#W2579604"  # mia_taylor_6226's order
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    other = db_order(stack, theirs)
    reply = talk.say("the glass bookshelf from W2579604 came damaged, i want to return it")
    assert not reply.is_readback, talk.log
    for leak in ("Mia", "Taylor", "Thermostat", "Dumbbell", "processed", money(540.49)):
        assert leak not in reply.text, f"{leak} leaked{talk.log}"
    talk.say("yes")
    assert db_order(stack, theirs) == other
    before.unchanged(why="after another customer's order id")
