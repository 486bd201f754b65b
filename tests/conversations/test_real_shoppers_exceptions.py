"""Issue 23, kind 4: exceptions and counts. "everything except the X", "all but the X", "all of
them apart from the X", "both X" (two units of one product) pick exactly those items; an
excepted item is never in the change — not in the read-back, not in the database."""

from __future__ import annotations

from tests.conversations.harness import Stack
from tests.conversations.shoppers import (
    Talk,
    assert_modified,
    assert_returned,
    customer,
    dollars,
    fresh,
    item_ids,
    items_named,
    money,
    original_method,
    positions,
    seed_order,
    variant_like,
)


def refund_of(order_id: str, ids: list[str]) -> str:
    """The refund of returning ``ids`` (one per unit), as the assistant writes it."""
    left = list(ids)
    amount = 0
    for line in seed_order(order_id)["items"]:
        if line["item_id"] in left:
            left.remove(line["item_id"])
            amount += round(line["price"] * 100)
    return money(dollars(amount))


def test_everything_except_the_bookshelf(stack: Stack) -> None:
    who, order = customer("liam_lee_5696"), "#W9710999"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    returned = item_ids(order, but=["Bookshelf"])
    readback = talk.until_readback(
        talk.say("i'd like to return everything except the bookshelf from W9710999"),
        {"reason": "we're moving into a much smaller flat and can't take it all",
         "payment": "back to my card"},
    )
    talk.check_readback(readback, has=[order, "Jigsaw Puzzle", "Electric Toothbrush",
                                       "Tea Kettle", "Coffee Maker", refund_of(order, returned)],
                        lacks=["Bookshelf"])
    talk.yes(before)
    assert_returned(stack, order, returned, original_method(order), talk=talk)
    before.unchanged(but=[order])


def test_all_but_the_laptop_includes_both_fleece_jackets(stack: Stack) -> None:
    who, order = customer("harper_brown_7363"), "#W1840144"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    returned = item_ids(order, but=["Laptop"])
    assert len(returned) == 4  # desk lamp, two identical fleece jackets, wall clock
    readback = talk.until_readback(
        talk.say("hi, i want to return all but the laptop from order W1840144"),
        {"reason": "changed my mind on them", "payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Desk Lamp", "Fleece Jacket", "Wall Clock",
                                       refund_of(order, returned)], lacks=["Laptop"])
    talk.yes(before)
    assert_returned(stack, order, returned, who.method("paypal"), "changed mind", talk=talk)
    before.unchanged(but=[order])


def test_both_helmets_are_two_different_variants(stack: Stack) -> None:
    who, order = customer("olivia_brown_4616"), "#W8033354"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email_words")
    before = talk.snapshot()
    helmets = [i["item_id"] for i in items_named(order, "Cycling Helmet")]
    assert len(set(helmets)) == 2
    readback = talk.until_readback(
        talk.say("please return both helmets from W8033354"),
        {"reason": "they're too small for my kids' heads",
         "payment": "the original payment method"},
    )
    talk.check_readback(readback, has=[order, "Cycling Helmet", refund_of(order, helmets)],
                        lacks=["Air Purifier", "Smart Watch"])
    talk.yes(before)
    assert_returned(stack, order, helmets, original_method(order), "wrong size", talk=talk)
    before.unchanged(but=[order])


def test_both_identical_backpacks_changed_before_shipping(stack: Stack) -> None:
    who, order = customer("harper_kovacs_8617"), "#W9093821"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    backpacks = items_named(order, "Backpack")
    assert len(backpacks) == 2 and backpacks[0]["item_id"] == backpacks[1]["item_id"]
    wanted = variant_like(backpacks[0], compartment="camera")
    readback = talk.until_readback(
        talk.say("can both backpacks in W9093821 be the camera compartment version instead? "
                 "same green, small, polyester"),
        {"payment": "my visa"},
    )
    talk.check_readback(readback, has=[order, "Backpack", "camera", money(wanted["price"])],
                        lacks=["Wall Clock", "Air Purifier", "Tea Kettle"])
    talk.yes(before)
    assert_modified(stack, order, dict.fromkeys(positions(order, "Backpack"), wanted),
                    who.method("credit_card"), talk)
    before.unchanged(but=[order])


def test_all_of_them_apart_from_the_two_vacuums(stack: Stack) -> None:
    who, order = customer("daiki_johnson_9523"), "#W9502127"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name_lower")
    before = talk.snapshot()
    returned = item_ids(order, but=["Vacuum Cleaner"])
    assert len(returned) == 3
    readback = talk.until_readback(
        talk.say("Return all of them apart from the vacuum cleaners, order W9502127"),
        {"reason": "we dont need them anymore", "payment": "paypal"},
    )
    talk.check_readback(readback, has=[order, "Air Purifier", "Patio Umbrella", "Dumbbell Set",
                                       refund_of(order, returned)], lacks=["Vacuum"])
    talk.yes(before)
    assert_returned(stack, order, returned, who.method("paypal"), "no longer needed", talk=talk)
    before.unchanged(but=[order])


def test_both_bookshelves_become_the_five_foot_one(stack: Stack) -> None:
    who, order = customer("mia_moore_8366"), "#W3130288"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    shelves = items_named(order, "Bookshelf")
    assert len(shelves) == 2
    wanted = variant_like(shelves[0], height="5 ft")
    assert variant_like(shelves[1], height="5 ft") == wanted
    readback = talk.until_readback(
        talk.say("swap both bookshelves in W3130288 for the 5 ft white glass one please"),
        {"payment": "my credit card"},
    )
    talk.check_readback(readback, has=[order, "Bookshelf", "5 ft", money(wanted["price"])],
                        lacks=["Vacuum", "Smart Watch", "Toothbrush"])
    talk.yes(before)
    assert_modified(stack, order, dict.fromkeys(positions(order, "Bookshelf"), wanted),
                    who.method("credit_card"), talk)
    before.unchanged(but=[order])


def test_both_earbuds_but_keep_the_camera_and_the_espresso_machine(stack: Stack) -> None:
    who, order = customer("noah_sanchez_2690"), "#W4864669"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("email")
    before = talk.snapshot()
    earbuds = item_ids(order, "Wireless Earbuds")
    assert len(earbuds) == 2
    readback = talk.until_readback(
        talk.say("return both earbuds from W4864669 but keep the camera and the espresso "
                 "machine"),
        {"reason": "they keep falling out of my ears when i run", "payment": "gift card"},
    )
    talk.check_readback(readback, has=[order, "Wireless Earbuds", refund_of(order, earbuds)],
                        lacks=["Digital Camera", "Espresso Machine"])
    talk.yes(before)
    assert_returned(stack, order, earbuds, who.method("gift_card"),
                    reason_has=["falling out"], talk=talk)
    before.unchanged(but=[order])


def test_all_but_the_vacuum_then_the_shopper_keeps_everything(stack: Stack) -> None:
    who, order = customer("yara_silva_7567"), "#W3964602"
    fresh(stack, order)
    talk = Talk(stack, who)
    talk.identify("name")
    before = talk.snapshot()
    readback = talk.until_readback(
        talk.say("return everything from W3964602 apart from the vacuum"),
        {"reason": "not needed anymore", "payment": "gift card"},
    )
    talk.check_readback(readback, has=[order, "Cycling Helmet", "Dumbbell Set",
                                       "Bluetooth Speaker"], lacks=["Vacuum"])
    talk.takes_back("hmm actually wait, my husband wants to keep them. forget it")
    before.unchanged(why="after the shopper changed their mind")
