"""Issue 23, kind 3: a request made before identification is resumed exactly after it — same
change type, order, items, wanted options and reason as in the first message; nothing of it is
asked again and no order data is shown before the two facts are given."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Reply,
    Talk,
    assert_address,
    assert_cancelled,
    assert_exchanged,
    assert_modified,
    assert_paid_with,
    assert_returned,
    customer,
    db_customer,
    db_order,
    fresh,
    item,
    money,
    only,
    other_variants,
    total,
    variant_like,
)


def asks_identity_first(talk: Talk, reply: Reply, *hidden: str) -> None:
    assert reply.question() == "identity", f"no identification asked{talk.log}"
    for words in hidden:
        assert words not in reply.text, f"{words} shown before identification{talk.log}"


def test_cancel_with_its_reason_is_read_back_right_after_identification(stack: Stack) -> None:
    who, order = customer("daiki_johnson_9523"), "#W1436802"
    fresh(stack, order)
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("hi, please cancel order w1436802, i ordered it by mistake")
    asks_identity_first(talk, first, "Tea Kettle", money(total(order)))
    resumed = talk.finish_identification(talk.say(talk.two_facts("email")))
    readback = talk.until_readback(resumed)  # no question: order and reason were given
    talk.check_readback(readback, has=[order, "Tea Kettle", "ordered by mistake"])
    talk.yes(before)
    assert_cancelled(stack, order, "ordered by mistake", talk)
    before.unchanged(but=[order])


def test_return_with_item_reason_and_refund_method_resumes_whole(stack: Stack) -> None:
    who, order = customer("daiki_moore_8567"), "#W8032761"
    fresh(stack, order)
    keyboard = item(order, "Mechanical Keyboard")
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("I want to return the mechanical keyboard from W8032761, it arrived "
                     "broken. refund to my gift card pls")
    asks_identity_first(talk, first, money(keyboard["price"]))
    resumed = talk.finish_identification(talk.say(talk.two_facts("name")), "name")
    readback = talk.until_readback(resumed)
    talk.check_readback(readback, has=[order, "Mechanical Keyboard", money(keyboard["price"]),
                                       "damaged", "gift card"], lacks=["Backpack"])
    talk.yes(before)
    assert_returned(stack, order, [keyboard["item_id"]], who.method("gift_card"), "damaged",
                    talk=talk)
    before.unchanged(but=[order])


def test_exchange_with_wanted_options_and_method_resumes_whole(stack: Stack) -> None:
    who, order = customer("fatima_wilson_6873"), "#W7990410"
    fresh(stack, order)
    kettle = item(order, "Electric Kettle")
    wanted = variant_like(kettle, color="black")
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("hello! I'd like to exchange the electric kettle from order W7990410 for "
                     "the black one, still 1L glass. put any difference on my paypal")
    asks_identity_first(talk, first)
    resumed = talk.finish_identification(talk.say(talk.two_facts("email")))
    readback = talk.until_readback(resumed)
    talk.check_readback(readback, has=[order, "Electric Kettle", "black", money(kettle["price"]),
                                       money(wanted["price"])],
                        lacks=["Headphones", "Bookshelf"])
    talk.yes(before)
    assert_exchanged(stack, order, [kettle], [wanted], who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_new_shipping_address_given_before_identification(stack: Stack) -> None:
    who, order = customer("harper_santos_8115"), "#W6629830"
    fresh(stack, order)
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("please change the shipping address of W6629830 to 310 Birch Lane, Apt 4, "
                     "Madison, WI 53703 - we're staying at my mom's")
    asks_identity_first(talk, first, "Digital Camera")
    resumed = talk.finish_identification(talk.say(talk.two_facts("name")), "name")
    readback = talk.until_readback(resumed)
    talk.check_readback(readback, has=[order, "310 Birch Lane", "Madison", "53703"])
    talk.yes(before)
    assert_address(db_order(stack, order)["address"], "310 Birch Lane", "Madison", "WI", "53703")
    assert db_customer(stack, who.user_id) == before.customer  # the account keeps its address
    before.unchanged(but=[order])


def test_item_change_with_size_and_refund_card_resumes_whole(stack: Stack) -> None:
    who, order = customer("omar_kim_3528"), "#W1080318"
    fresh(stack, order)
    shirt = item(order, "T-Shirt")
    wanted = only(other_variants(shirt, size="M", color="blue", material="cotton"))
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("change the t-shirt in w1080318 to a medium, still blue cotton. refund "
                     "any difference to my credit card")
    asks_identity_first(talk, first)
    resumed = talk.finish_identification(talk.say(talk.two_facts("email_words")))
    # blue M cotton exists only as a crew neck (the shirt is a v-neck): offered, not taken
    assert "crew neck instead of v-neck" in resumed.text, talk.log
    readback = talk.until_readback(resumed, {"variant": "yes, that one is fine"})
    talk.check_readback(readback, has=[order, "T-Shirt", money(shirt["price"]),
                                       money(wanted["price"])])
    talk.yes(before)
    assert_modified(stack, order, {0: wanted}, who.method("credit_card"), talk)
    before.unchanged(but=[order])


def test_payment_change_asked_before_identification(stack: Stack) -> None:
    who, order = customer("sofia_li_9219"), "#W8855135"
    fresh(stack, order)
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("can I pay for order W8855135 with my paypal instead of the card?")
    asks_identity_first(talk, first, "Air Purifier")
    resumed = talk.finish_identification(talk.say(talk.two_facts("email")))
    readback = talk.until_readback(resumed)
    talk.check_readback(readback, has=[order, "PayPal", money(total(order))])
    talk.yes(before)
    assert_paid_with(stack, order, who.method("paypal"))
    before.unchanged(but=[order])


def test_identity_and_request_in_one_first_message(stack: Stack) -> None:
    who, order = customer("harper_ito_4653"), "#W1941216"
    fresh(stack, order)
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say(f"hi im {who.email}, zip {who.zip} - can you cancel W1941216? "
                     "dont need the running shoes anymore")
    assert who.first in first.text, f"not identified from the first message{talk.log}"
    readback = talk.until_readback(first)
    talk.check_readback(readback, has=[order, "Running Shoes", "no longer needed"])
    talk.yes(before)
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order])


def test_resumed_return_then_the_shopper_keeps_it(stack: Stack) -> None:
    who, order = customer("raj_davis_2615"), "#W9894882"
    fresh(stack, order)
    puzzle = item(order, "Jigsaw Puzzle")
    talk = Talk(stack, who)
    before = talk.snapshot()
    first = talk.say("i want to return the jigsaw puzzle from W9894882, it's missing about 20 "
                     "pieces. refund to my gift card")
    asks_identity_first(talk, first)
    resumed = talk.finish_identification(talk.say(talk.two_facts("name")), "name")
    readback = talk.until_readback(resumed)
    talk.check_readback(readback, has=[order, "Jigsaw Puzzle", money(puzzle["price"])],
                        lacks=["Bicycle", "Bookshelf"])
    talk.takes_back("hmm actually no, forget it, my kids want to keep it anyway")
    before.unchanged(why="after the shopper changed their mind")
