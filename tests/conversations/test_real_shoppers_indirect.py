"""Issue 23, kind 7: supported requests phrased indirectly ("could you ...", "would it be
possible to ...", "my parcel would be better off going to ...") are routed to them: read back in
full, done after "yes". A default-address change moves the account's address; orders keep
theirs."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Talk,
    assert_address,
    assert_exchanged,
    assert_modified,
    assert_paid_with,
    customer,
    db_customer,
    db_order,
    fresh,
    fresh_customer,
    item,
    money,
    positions,
    total,
    variant_like,
)


def test_default_address_to_the_sons_place(stack: Stack) -> None:
    who = customer("evelyn_lopez_5487")
    fresh_customer(stack, who.user_id)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say(
        "could you change the default address on my account to my son's place in Portland, "
        "48 Harbor View Rd, Portland, ME 04101? i'm staying with him for a while"))
    talk.check_readback(readback, has=["48 Harbor View Rd", "Portland", "04101"])
    talk.yes(before)
    assert_address(db_customer(stack, who.user_id), "48 Harbor View Rd", "Portland", "ME",
                   "04101")
    before.unchanged(customer=True)  # every order keeps its shipping address


def test_account_address_from_now_on_after_a_move(stack: Stack) -> None:
    who = customer("lucas_johansson_1090")
    fresh_customer(stack, who.user_id)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say(
        "I've moved house - can my account use 2250 Oak Grove Ave, Unit 12, Sacramento, CA "
        "95817 from now on?"))
    talk.check_readback(readback, has=["2250 Oak Grove Ave", "Sacramento", "95817"])
    talk.yes(before)
    assert_address(db_customer(stack, who.user_id), "2250 Oak Grove Ave", "Sacramento", "CA",
                   "95817", address2="Unit 12")
    before.unchanged(customer=True)


def test_parcel_better_off_going_to_the_office(stack: Stack) -> None:
    who, order = customer("yara_muller_8652"), "#W5056519"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say(
        "my parcel W5056519 would be better off going to my office: 500 Main Street, Suite "
        "300, Columbus, OH 43215 - can you sort that?"))
    talk.check_readback(readback, has=[order, "500 Main Street", "Columbus", "43215"])
    talk.yes(before)
    assert_address(db_order(stack, order)["address"], "500 Main Street", "Columbus", "OH",
                   "43215", address2="Suite 300")
    before.unchanged(but=[order])  # the account's default address too


def test_rather_have_it_charged_to_the_visa(stack: Stack) -> None:
    who, order = customer("james_martin_1500"), "#W3529525"
    fresh(stack, order)
    visa = who.method("credit_card", "visa")
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    readback = talk.until_readback(talk.say(
        "I'd rather have W3529525 charged to my visa than paypal, is that doable?"))
    talk.check_readback(readback, has=[order, who.methods[visa]["last_four"],
                                       money(total(order))])
    talk.yes(before)
    assert_paid_with(stack, order, visa)
    before.unchanged(but=[order])


def test_would_it_be_possible_to_get_the_earbuds_in_blue(stack: Stack) -> None:
    who, order = customer("chen_johnson_4204"), "#W5061109"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    earbuds = item(order, "Wireless Earbuds")
    wanted = variant_like(earbuds, color="blue")
    readback = talk.until_readback(
        talk.say("would it be possible to get the earbuds in W5061109 in blue rather than "
                 "white? nothing else about them"),
        {"payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Wireless Earbuds", "blue",
                                       money(wanted["price"])],
                        lacks=["Makeup Kit", "Office Chair", "Bluetooth Speaker"])
    talk.yes(before)
    assert_modified(stack, order, {positions(order, "Wireless Earbuds")[0]: wanted},
                    who.method("paypal"), talk)
    before.unchanged(but=[order])


def test_lovely_fleece_but_could_i_have_it_in_a_large(stack: Stack) -> None:
    who, order = customer("sofia_ito_7804"), "#W6075915"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    fleece = item(order, "Fleece Jacket")
    wanted = variant_like(fleece, size="L")
    visa = who.method("credit_card", "visa")
    readback = talk.until_readback(
        talk.say("the fleece jacket from W6075915 is lovely but a bit snug, could I have it in "
                 "a large instead?"),
        {"payment": f"my visa ending {who.methods[visa]['last_four']}"},
    )
    talk.check_readback(readback, has=[order, "Fleece Jacket", "L", money(wanted["price"])],
                        lacks=["Yoga Mat", "Skateboard"])
    talk.yes(before)
    assert_exchanged(stack, order, [fleece], [wanted], visa, talk)
    before.unchanged(but=[order])
