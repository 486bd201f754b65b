"""Issue 23, kind 8: what the assistant can't do, complaints, and vague change requests.
Unsupported requests (password, invoices, newsletter, account email, loyalty points, price
matching, a new order) get "can't do that here" + what it can do + a button for a human, and
nothing is written; complaints open a handoff ticket with a summary; "help me change my order"
asks which change, with buttons."""

from __future__ import annotations

import re

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Reply,
    Talk,
    assert_address,
    assert_cancelled,
    customer,
    db_handoffs,
    db_order,
    db_order_ids,
    fresh,
)

CANT_RE = re.compile(r"can't|cannot|can not|not able|unable|isn't something|not something|"
                     r"don't have access|no way for me", re.IGNORECASE)
CAN_DO = ("status", "track", "cancel", "return", "exchange", "address", "payment", "product")
CHANGE_KINDS = {"cancel": ("cancel",), "items": ("item", "modify"), "address": ("address",),
                "payment": ("payment", "pay"), "return": ("return",),
                "exchange": ("exchange",)}


def unsupported(talk: Talk, reply: Reply) -> None:
    """The unsupported answer: can't do it here, what it can do, a human on a button; no
    ticket is opened by the offer alone."""
    assert CANT_RE.search(reply.text), f"doesn't say it can't do that{talk.log}"
    named = [w for w in CAN_DO if w in reply.lower]
    assert len(named) >= 3, f"doesn't say what it can do ({named}){talk.log}"
    talk.offers_human(reply)
    assert not reply.is_readback
    assert not db_handoffs(talk.stack, talk.sender), f"a ticket without asking{talk.log}"


PENDING_KINDS = ("cancel", "items", "address", "payment")


def asks_which_change(talk: Talk, reply: Reply, kinds: tuple[str, ...] = tuple(CHANGE_KINDS)
                      ) -> dict[str, dict[str, str]]:
    """The question which change, with a button per change ``kinds`` (only those: an order's
    status rules out the others); returns kind -> button."""
    assert reply.asks, f"no question{talk.log}"
    found = {}
    for kind, words in CHANGE_KINDS.items():
        button = next((b for b in reply.buttons
                       if any(w in (b["title"] + b["payload"]).lower() for w in words)), None)
        if kind in kinds:
            assert button, f"no button to {kind}{talk.log}"
            found[kind] = button
        elif kind in ("return", "exchange"):
            assert button is None, f"a button to {kind} a pending order{talk.log}"
    return found


def test_forgot_password_cant_log_in(stack: Stack) -> None:
    talk = Talk(stack)
    reply = talk.say("hi, i forgot my password and now i cant log in to the website, can you "
                     "reset it for me?")
    unsupported(talk, reply)


def test_vat_invoice_for_an_order(stack: Stack) -> None:
    who, order = customer("chen_lopez_3345"), "#W9360566"
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    reply = talk.say(f"could you send me a VAT invoice for {order}, i need it for my company's "
                     "expenses")
    unsupported(talk, reply)
    before.unchanged(why="after an invoice request")


def test_unsubscribe_from_marketing_emails(stack: Stack) -> None:
    talk = Talk(stack)
    reply = talk.say("please unsubscribe me from your marketing emails, i get like 3 a day!!")
    unsupported(talk, reply)


def test_change_the_email_on_the_account(stack: Stack) -> None:
    who = customer("ethan_johnson_5450")
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    reply = talk.say("can you change the email on my account to ethan.j.newmail@example.com? "
                     "i don't use the old one anymore")
    unsupported(talk, reply)
    talk.say("yes")
    before.unchanged(why="after asking to change the account email")


def test_place_a_new_order_for_me(stack: Stack) -> None:
    who = customer("raj_santos_9079")
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    reply = talk.say("can you order another electric kettle for me? the same 2L white steel "
                     "one as last time, ship it to my usual address")
    talk.not_catalog(reply)
    unsupported(talk, reply)
    before.unchanged(why="after asking for a new order")
    assert db_order_ids(stack, who.user_id) == sorted(who.orders)


def test_loyalty_points(stack: Stack) -> None:
    talk = Talk(stack)
    reply = talk.say("how many loyalty points do i have? can i use them on my next order?")
    unsupported(talk, reply)


def test_price_matching(stack: Stack) -> None:
    who = customer("noah_patel_6952")
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    reply = talk.say("do you do price matching? i saw the same office chair for $60 less at "
                     "another store")
    unsupported(talk, reply)
    before.unchanged(why="after a price-matching request")


def test_complaint_about_the_courier_opens_a_ticket(stack: Stack) -> None:
    talk = Talk(stack)
    reply = talk.say("this is unacceptable. the courier threw my parcel over the fence and was "
                     "rude to my wife. i want to file a complaint about the courier")
    tickets = db_handoffs(stack, talk.sender)
    assert len(tickets) == 1, f"{len(tickets)} tickets{talk.log}"
    ticket = tickets[0]
    assert ticket["summary"].strip() and "courier" in ticket["summary"].lower(), ticket
    assert ticket["id"] in reply.text, f"the shopper isn't told the ticket{talk.log}"
    assert any(w in reply.lower for w in ("sorry", "apolog")), f"no apology{talk.log}"


def test_identified_shoppers_complaint_ticket_names_them(stack: Stack) -> None:
    who = customer("mohamed_smith_9224")
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    reply = talk.say("worst service ever. nobody answers my emails and your support line just "
                     "hangs up on me")
    tickets = db_handoffs(stack, talk.sender)
    assert len(tickets) == 1, f"{len(tickets)} tickets{talk.log}"
    assert tickets[0]["user_id"] == who.user_id and tickets[0]["summary"].strip()
    assert tickets[0]["id"] in reply.text, talk.log
    before.unchanged(why="after a complaint")


def test_help_me_change_my_order_asks_which_change_then_cancels(stack: Stack) -> None:
    who, order = customer("emma_nguyen_5878"), "#W5809689"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    ask = talk.say("help me change my order")
    button = asks_which_change(talk, ask)["cancel"]
    readback = talk.until_readback(talk.say(button["payload"]),
                                   {"order": "W5809689", "reason": "dont need it anymore"})
    talk.check_readback(readback, has=[order, "Tea Kettle", "no longer needed"])
    talk.yes(before)
    assert_cancelled(stack, order, "no longer needed", talk)
    before.unchanged(but=[order])


def test_some_changes_to_an_order_then_its_shipping_address(stack: Stack) -> None:
    who, order = customer("mei_patel_7272"), "#W9583042"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    ask = talk.say("i need to make some changes to W9583042")
    assert not ask.is_readback, talk.log
    button = asks_which_change(talk, ask, PENDING_KINDS)["address"]
    readback = talk.until_readback(talk.say(button["payload"]), {
        "address": "77 Willow Court, Apt 2, Austin, TX 78745", "order": "W9583042"})
    talk.check_readback(readback, has=[order, "77 Willow Court", "Austin", "78745"])
    talk.yes(before)
    assert_address(db_order(stack, order)["address"], "77 Willow Court", "Austin", "TX",
                   "78745", address2="Apt 2")
    before.unchanged(but=[order])
