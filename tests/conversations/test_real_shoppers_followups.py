"""Issue 23, kind 9: follow-ups about the order in focus. After an order's status or tracking
was shown, "ok and can I cancel it?", "can I send it back?", "can you ship it to ... instead?"
act on that order — and only when the order allows it."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Talk,
    assert_address,
    assert_cancelled,
    assert_exchanged,
    assert_paid_with,
    assert_returned,
    customer,
    db_order,
    fresh,
    item,
    money,
    original_method,
    seed_order,
    total,
    variant_like,
)


def shows_status(talk: Talk, message: str, order: str, status: str) -> None:
    reply = talk.say(message)
    assert order in reply.text and status in reply.lower, f"no status of {order}{talk.log}"


def test_status_then_ok_and_can_i_cancel_it(stack: Stack) -> None:
    who, order = customer("mason_li_6934"), "#W2392556"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    shows_status(talk, "whats the status of w2392556?", order, "pending")
    readback = talk.until_readback(talk.say("ok and can I cancel it? dont need it anymore"))
    talk.check_readback(readback, has=[order, "Desk Lamp", "no longer needed"])
    talk.yes(before)
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order], methods=True)  # the gift card is credited at once


def test_delivered_then_can_i_send_it_back(stack: Stack) -> None:
    who, order = customer("ava_kovacs_3448"), "#W6344370"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    board = item(order, "Skateboard")
    shows_status(talk, "did my order W6344370 arrive?", order, "delivered")
    readback = talk.until_readback(talk.say("great, but can i send it back?"), {
        "reason": "my son already got the same one for his birthday",
        "payment": "the original card", "items": "the skateboard"})
    talk.check_readback(readback, has=[order, "Skateboard", money(board["price"])])
    talk.yes(before)
    assert_returned(stack, order, [board["item_id"]], original_method(order),
                    reason_has=["birthday"], talk=talk)
    before.unchanged(but=[order])


def test_pending_status_then_ship_it_to_work_instead(stack: Stack) -> None:
    who, order = customer("sofia_moore_9773"), "#W1812830"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    shows_status(talk, "hey what's happening with W1812830", order, "pending")
    readback = talk.until_readback(talk.say(
        "can you send it to my work address instead? 200 Park Ave, Floor 12, New York, NY "
        "10166"))
    talk.check_readback(readback, has=[order, "200 Park Ave", "New York", "10166"])
    talk.yes(before)
    assert_address(db_order(stack, order)["address"], "200 Park Ave", "New York", "NY", "10166")
    before.unchanged(but=[order])


def test_tracked_processed_order_then_can_i_cancel_it_is_refused(stack: Stack) -> None:
    who, order = customer("lei_hernandez_8500"), "#W3101067"
    fresh(stack, order)
    assert seed_order(order)["status"] == "processed"
    talk = Talk(stack, who)
    talk.identify("name_lower")
    before = talk.snapshot()
    tracked = talk.say("where is my package W3101067")
    assert order in tracked.text, talk.log
    reply = talk.say("ok and can i cancel it?")
    assert order in reply.text and not reply.is_readback, f"not about {order}{talk.log}"
    assert reply.question() != "reason", talk.log
    talk.say("yes")
    before.unchanged(why="after asking to cancel a processed order")


def test_pending_status_then_pay_it_with_the_other_card(stack: Stack) -> None:
    who, order = customer("sophia_patel_6833"), "#W7905419"
    fresh(stack, order)
    paid = original_method(order)
    other = next(m for m in who.methods if m != paid)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    shows_status(talk, "status of W7905419?", order, "pending")
    readback = talk.until_readback(
        talk.say("could i pay for that with my other card instead?"),
        {"payment": f"the one ending {who.methods[other]['last_four']}"},
    )
    talk.check_readback(readback, has=[order, who.methods[other]["last_four"],
                                       money(total(order))])
    talk.yes(before)
    assert_paid_with(stack, order, other)
    before.unchanged(but=[order])


def test_delivered_pet_bed_then_exchange_it_for_a_large(stack: Stack) -> None:
    who, order = customer("noah_li_2316"), "#W8553554"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    bed = item(order, "Pet Bed")
    wanted = variant_like(bed, size="large", material="memory foam")
    shows_status(talk, "did W8553554 get delivered?", order, "delivered")
    readback = talk.until_readback(
        talk.say("thanks. the bed's too small for my dog though, could i exchange it for the "
                 "large memory foam one in brown?"),
        {"payment": "my card"},
    )
    talk.check_readback(readback, has=[order, "Pet Bed", "large", money(wanted["price"])])
    talk.yes(before)
    assert_exchanged(stack, order, [bed], [wanted], who.method("credit_card"), talk)
    before.unchanged(but=[order])
