"""Issue 23, kind 10: several requests in one conversation are each done in turn — each read
back, each done after its own "yes", nothing twice, nothing to the wrong order; a request that
can't be done (not eligible, another customer's order, a "no") writes nothing and doesn't stop
the others."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Talk,
    assert_address,
    assert_cancelled,
    assert_paid_with,
    assert_returned,
    customer,
    db_customer,
    db_order,
    fresh,
    fresh_customer,
    item,
    money,
    names_in,
    total,
)


def test_cancel_two_orders_both_ordered_by_mistake(stack: Stack) -> None:
    who, first, second = customer("daiki_muller_8062"), "#W7822344", "#W6790887"
    fresh(stack, first, second)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("please cancel W7822344 and W6790887, i ordered "
                                            "both by mistake"))
    talk.check_readback(readback, has=[first, *names_in(first)])
    done = talk.yes(before)
    assert_cancelled(stack, first, "ordered by mistake", talk)
    assert db_order(stack, second) == before.orders[second], "the second order went too early"
    middle = talk.snapshot()
    readback = talk.until_readback(done)
    talk.check_readback(readback, has=[second, *names_in(second)])
    talk.yes(middle)
    assert_cancelled(stack, second, "ordered by mistake", talk)
    before.unchanged(but=[first, second], methods=True)  # gift card credited at once
    talk.say("yes")  # nothing is done twice
    assert_cancelled(stack, first, "ordered by mistake", talk)
    assert_cancelled(stack, second, "ordered by mistake", talk)


def test_change_the_address_of_one_then_cancel_the_other(stack: Stack) -> None:
    who, first, second = customer("yusuf_gonzalez_8900"), "#W2806889", "#W2230795"
    fresh(stack, first, second)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say(
        "change the address of W2806889 to 1450 Lakeview Terrace, Apt 9B, Austin, TX 78704, "
        "then cancel W2230795 - dont need it anymore"))
    talk.check_readback(readback, has=[first, "1450 Lakeview Terrace", "78704"])
    done = talk.yes(before)
    assert_address(db_order(stack, first)["address"], "1450 Lakeview Terrace", "Austin", "TX",
                   "78704", address2="Apt 9B")
    assert db_order(stack, second) == before.orders[second]
    middle = talk.snapshot()
    readback = talk.until_readback(done)
    talk.check_readback(readback, has=[second, "no longer needed", *names_in(second)])
    talk.yes(middle)
    assert_cancelled(stack, second, "no longer needed", talk)
    assert db_order(stack, first)["status"] == "pending"  # the address change only
    before.unchanged(but=[first, second])


def test_return_boots_from_one_order_and_cancel_another(stack: Stack) -> None:
    who, delivered, pending = customer("anya_lee_8315"), "#W1335809", "#W3176007"
    fresh(stack, delivered, pending)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    boots = item(delivered, "Hiking Boots")
    readback = talk.until_readback(
        talk.say("two things: return the hiking boots from W1335809, they're too big, and "
                 "cancel W3176007 because i dont need it anymore"),
        {"payment": "paypal"},
    )
    talk.check_readback(readback, has=[delivered, "Hiking Boots", money(boots["price"])],
                        lacks=["Espresso Machine", "Electric Kettle"])
    done = talk.yes(before)
    assert_returned(stack, delivered, [boots["item_id"]], who.method("paypal"), "wrong size",
                    talk=talk)
    assert db_order(stack, pending) == before.orders[pending]
    middle = talk.snapshot()
    readback = talk.until_readback(done)
    talk.check_readback(readback, has=[pending, "no longer needed", *names_in(pending)])
    talk.yes(middle)
    assert_cancelled(stack, pending, "no longer needed", talk)
    before.unchanged(but=[delivered, pending])  # the third order, #W2989580, untouched


def test_yes_to_the_first_cancel_no_to_the_second(stack: Stack) -> None:
    who, first, second = customer("liam_santos_5468"), "#W6794581", "#W4011814"
    fresh(stack, first, second)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("cancel W6794581 and W4011814, no longer needed"))
    talk.check_readback(readback, has=[first, *names_in(first)])
    done = talk.yes(before)
    assert_cancelled(stack, first, "no longer needed", talk)
    readback = talk.until_readback(done)
    talk.check_readback(readback, has=[second, *names_in(second)])
    talk.say("no")
    talk.takes_back("actually leave that one, i'll keep it")
    assert db_order(stack, second) == before.orders[second], f"second cancelled{talk.log}"
    before.unchanged(but=[first])


def test_second_order_is_in_the_warehouse_only_the_first_is_cancelled(stack: Stack) -> None:
    who, first, processed = customer("james_johnson_9321"), "#W1006327", "#W3723163"
    fresh(stack, first, processed)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("cancel W1006327 and W3723163 please, ordered them "
                                            "both by mistake"))
    talk.check_readback(readback, has=[first, *names_in(first)], lacks=["Wall Clock"])
    done = talk.yes(before)
    assert_cancelled(stack, first, "ordered by mistake", talk)
    assert processed in done.text and not done.is_readback, f"no word on {processed}{talk.log}"
    talk.say("yes")
    assert db_order(stack, processed) == before.orders[processed]
    before.unchanged(but=[first])


def test_second_order_id_is_someone_elses(stack: Stack) -> None:
    who, mine, theirs = customer("chen_taylor_6919"), "#W4633848", "#W2579604"
    fresh(stack, mine)
    other = db_order(stack, theirs)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say("cancel W4633848 and W2579604, both by mistake"))
    talk.check_readback(readback, has=[mine, "Tablet"], lacks=["Thermostat", "Dumbbell"])
    done = talk.yes(before)
    assert_cancelled(stack, mine, "ordered by mistake", talk)
    assert not done.is_readback, f"read back another customer's order{talk.log}"
    for leak in ("Mia", "Taylor", "Thermostat", "Dumbbell", money(total(theirs))):
        assert leak not in done.text, f"{leak} leaked{talk.log}"
    talk.say("yes")
    assert db_order(stack, theirs) == other
    before.unchanged(but=[mine], methods=True)  # the gift card is credited at once


def test_default_address_and_the_payment_of_an_order(stack: Stack) -> None:
    who, order = customer("sophia_thomas_5301"), "#W4862767"
    fresh(stack, order)
    fresh_customer(stack, who.user_id)
    visa = who.method("credit_card", "visa")
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say(
        "update my default address to 77 Lake Shore Dr, Apt 1203, Chicago, IL 60611, and also "
        "pay W4862767 with my visa instead of paypal"))
    talk.check_readback(readback, has=["77 Lake Shore Dr", "60611"])
    done = talk.yes(before)
    assert_address(db_customer(stack, who.user_id), "77 Lake Shore Dr", "Chicago", "IL",
                   "60611", address2="Apt 1203")
    assert db_order(stack, order) == before.orders[order]  # not yet, and its address kept
    middle = talk.snapshot()
    readback = talk.until_readback(done)
    talk.check_readback(readback, has=[order, who.methods[visa]["last_four"],
                                       money(total(order))])
    talk.yes(middle)
    assert_paid_with(stack, order, visa)
    assert db_order(stack, order)["address"] == before.orders[order]["address"]
    before.unchanged(but=[order], customer=True)
