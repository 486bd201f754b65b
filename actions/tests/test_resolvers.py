"""actions/resolvers.py on the shop's REAL seed data (shop/data/db.json), no shop process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from actions.resolvers import (
    CANCEL_REASONS,
    RETURN_REASONS,
    AddressParse,
    canonical_cancel_reason,
    canonical_return_reason,
    parse_address,
    resolve_items,
    resolve_payment_method,
    resolve_variant,
)
from actions.shop_records import Address, Item, Order, PaymentMethod, Product
from actions.wording import describe_item, format_address

pytestmark = pytest.mark.no_shop

DB: Dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "shop" / "data" / "db.json").read_text("utf-8")
)
ORDERS, PRODUCTS, USERS = DB["orders"], DB["products"], DB["users"]


def order(order_id: str, status: str) -> Tuple[Item, ...]:
    assert ORDERS[order_id]["status"] == status  # the seed still is what the test assumes
    return Order.parse(ORDERS[order_id]).items


def product(name: str) -> Product:
    return Product.parse(next(p for p in PRODUCTS.values() if p["name"] == name))


def variant_id(name: str, **options: str) -> str:
    wanted = {k.replace("_", " "): v for k, v in options.items()}
    return next(v.item_id for v in product(name).variants if v.options == wanted)


def methods(user_id: str) -> Dict[str, PaymentMethod]:
    return {k: PaymentMethod.parse(v, k) for k, v in USERS[user_id]["payment_methods"].items()}


# ------------------------------------------------------------------------------ reasons
@pytest.mark.parametrize(
    "text, reason",
    [
        ("broken", "damaged"),
        ("it's defective", "damaged"),
        ("its defectve", "damaged"),
        ("The screen is CRACKED", "damaged"),
        ("it stopped working after a day", "damaged"),
        ("damagd", "damaged"),
        ("too small", "wrong size"),
        ("they are too big for me", "wrong size"),
        ("doesn't fit", "wrong size"),
        ("wrong size", "wrong size"),
        ("looks different from the picture", "not as described"),
        ("not as descibed", "not as described"),
        ("it's not as advertised", "not as described"),
        ("don't like it", "changed mind"),
        ("I changed my mind", "changed mind"),
        ("they sent me the wrong thing", "wrong item"),
        ("the color is wrong", "wrong item"),
        ("not what I ordered", "wrong item"),
        ("arrived late", "arrived late"),
        ("it came too late for the party", "arrived late"),
        ("no longer needed", "no longer needed"),
        ("I don't need it anymore", "no longer needed"),
        ("Changed Mind", "changed mind"),
        ("it's not broken, I just don't like it", "changed mind"),
        ("not damaged but too small", "wrong size"),
        ("whatever", None),
        ("", None),
        (None, None),
    ],
)
def test_return_reason(text: str, reason: str) -> None:
    assert canonical_return_reason(text) == reason


def test_return_reasons_are_their_own_canonical_form() -> None:
    assert len(RETURN_REASONS) == 7
    for reason in RETURN_REASONS:
        assert canonical_return_reason(reason) == reason
        assert canonical_return_reason(reason.upper()) == reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("no longer needed", "no longer needed"),
        ("ordered by mistake", "ordered by mistake"),
        ("i don't need it anymore", "no longer needed"),
        ("I do not need this", "no longer needed"),
        ("dont want it anymore", "no longer needed"),
        ("no need for it now", "no longer needed"),
        ("ordered it by accident", "ordered by mistake"),
        ("by mistak", "ordered by mistake"),
        ("I ordered the wrong size", "ordered by mistake"),
        ("oops, I ordered it twice", "ordered by mistake"),
        ("I need it", None),
        ("I still need it", None),
        ("I really need it by Friday", None),
        ("found it cheaper", None),
        ("found it cheaper elsewhere", None),
        ("too slow shipping", None),
        ("i changed my mind", None),
        ("", None),
    ],
)
def test_cancel_reason(text: str, reason: str) -> None:
    assert canonical_cancel_reason(text) == reason
    assert reason is None or reason in CANCEL_REASONS


# ------------------------------------------------------------------------------ items
TWO_SHIRTS = "#W7532822"  # delivered: T-Shirt twice (same item id), camera, boots, backpack
SHIRT, CAMERA, BOOTS, BACKPACK = "2060066974", "4326528037", "4127323219", "7824298782"
HELMETS = "#W6735441"  # delivered: perfume, two different cycling helmets, pet bed
RED_M_HELMET, BLUE_L_HELMET = "6401214406", "7907773809"


@pytest.mark.parametrize(
    "text, ids",
    [
        ("the shirt", [SHIRT]),
        ("one of the t-shirts", [SHIRT]),
        ("The T-Shirt", [SHIRT]),
        ("the tshrt", [SHIRT]),
        ("both shirts", [SHIRT, SHIRT]),
        ("the two t-shirts", [SHIRT, SHIRT]),
        ("both of the tees", [SHIRT, SHIRT]),
        ("the shirts", [SHIRT, SHIRT]),
        ("all of them", [SHIRT, CAMERA, BOOTS, BACKPACK, SHIRT]),
        ("everything", [SHIRT, CAMERA, BOOTS, BACKPACK, SHIRT]),
        ("the boots", [BOOTS]),
        ("the hiking boots", [BOOTS]),
        ("the camera", [CAMERA]),
        ("the black backpack", [BACKPACK]),
        ("the tshirt and the hiking boots", [SHIRT, BOOTS]),
        ("the backpack, the camera", [CAMERA, BACKPACK]),
        ("the first one", [SHIRT]),
        ("the second", [CAMERA]),
        ("the 3rd one", [BOOTS]),
        ("the last one", [SHIRT]),
        (SHIRT, [SHIRT]),
        (f"{CAMERA} and {BOOTS}", [CAMERA, BOOTS]),
    ],
)
def test_items_with_a_duplicated_item(text: str, ids: List[str]) -> None:
    choice = resolve_items(text, order(TWO_SHIRTS, "delivered"))
    assert choice.item_ids == ids
    assert choice.ambiguous == [] and choice.unmatched == []


@pytest.mark.parametrize(
    "text, ids",
    [
        ("the blue helmet", [BLUE_L_HELMET]),
        ("the red one", [RED_M_HELMET]),
        ("the large helmet", [BLUE_L_HELMET]),
        ("the bike helmet in size L", [BLUE_L_HELMET]),
        ("the medium red helmet", [RED_M_HELMET]),
        ("the second helmet", [BLUE_L_HELMET]),
        ("the first helmet", [RED_M_HELMET]),
        ("both helmets", [RED_M_HELMET, BLUE_L_HELMET]),
        ("perfume", ["5421902839"]),
        ("the perfume and the dog bed", ["5421902839", "4537595158"]),
    ],
)
def test_items_by_options_and_ordinals(text: str, ids: List[str]) -> None:
    choice = resolve_items(text, order(HELMETS, "delivered"))
    assert choice.item_ids == ids
    assert choice.ambiguous == []


def test_two_different_helmets_are_ambiguous() -> None:
    items = order(HELMETS, "delivered")
    choice = resolve_items("the helmet", items)
    assert choice.item_ids == []
    assert [i.item_id for i in choice.ambiguous] == [RED_M_HELMET, BLUE_L_HELMET]


def test_ambiguous_part_does_not_block_the_clear_part() -> None:
    choice = resolve_items("the perfume and the helmet", order(HELMETS, "delivered"))
    assert choice.item_ids == ["5421902839"]
    assert len(choice.ambiguous) == 2


def test_item_not_in_the_order_is_unmatched() -> None:
    items = order(TWO_SHIRTS, "delivered")
    # the backpack has a "laptop" compartment, yet "the laptop" is not the backpack
    choice = resolve_items("the laptop", items)
    assert choice.item_ids == [] and choice.unmatched == ["laptop"]
    choice = resolve_items("the boots and the toaster", items)
    assert choice.item_ids == [BOOTS] and choice.unmatched == ["toaster"]
    assert resolve_items("the ninth one", items).item_ids == []
    assert resolve_items("", items).item_ids == []


def test_identical_kettles_once_or_both() -> None:
    items = order("#W4316152", "delivered")
    assert resolve_items("the kettle", items).item_ids == ["7292993796"]
    assert resolve_items("both", items).item_ids == ["7292993796"] * 2
    assert resolve_items("both kettles", items).item_ids == ["7292993796"] * 2
    assert resolve_items("all", items).item_ids == ["7292993796"] * 2


def test_identical_jackets_among_other_items() -> None:
    items = order("#W1840144", "delivered")
    assert resolve_items("the fleece jacket", items).item_ids == ["8590708195"]
    assert resolve_items("both jackets", items).item_ids == ["8590708195"] * 2
    assert resolve_items("the lamp and the clock", items).item_ids == ["8384507844", "6534134392"]
    assert resolve_items("the laptop", items).item_ids == ["6017636844"]


@pytest.mark.parametrize(
    "text, ids",
    [
        ("the jacket, navy, size XL", ["8590708195"]),
        ("just one of the jackets", ["8590708195"]),
        ("all the jackets", ["8590708195", "8590708195"]),
        ("the clock and both jackets", ["8590708195", "8590708195", "6534134392"]),
        ("the white lamp", ["8384507844"]),
        ("the 15 inch laptop", ["6017636844"]),
        ("the space gray laptop", ["6017636844"]),
        ("item 2", ["6017636844"]),
        ("number 5", ["6534134392"]),
    ],
)
def test_items_in_a_five_item_order(text: str, ids: List[str]) -> None:
    assert resolve_items(text, order("#W1840144", "delivered")).item_ids == ids


def test_both_of_five_items_is_a_question() -> None:
    choice = resolve_items("both", order("#W1840144", "delivered"))
    assert choice.item_ids == [] and len(choice.ambiguous) == 4  # distinct items


def test_pending_order_with_two_backpacks() -> None:
    items = order("#W9093821", "pending")
    assert resolve_items("the backpack", items).item_ids == ["3557711149"]
    assert resolve_items("both backpacks and the wall clock", items).item_ids == [
        "3557711149", "8917609800", "3557711149"]


def test_every_item_of_many_orders_by_id_and_by_description() -> None:
    for order_id in list(ORDERS)[:120]:
        items = Order.parse(ORDERS[order_id]).items
        assert resolve_items("all of them", items).item_ids == [i.item_id for i in items]
        for item in items:
            assert resolve_items(item.item_id, items).item_ids == [item.item_id]
            choice = resolve_items(describe_item(item), items)
            assert choice.item_ids == [item.item_id], (order_id, describe_item(item))


# ------------------------------------------------------------------------------ variants
BOOTS_10_SYNTH_DRY = "4127323219"  # size 10, synthetic, not waterproof


def test_waterproof_keeps_size_and_material() -> None:
    choice = resolve_variant("same boots but waterproof", product("Hiking Boots"),
                             BOOTS_10_SYNTH_DRY)
    assert choice.variant is not None
    assert choice.variant.options == {"size": "10", "material": "synthetic",
                                         "waterproof": "yes"}
    assert choice.variant.available is True
    assert choice.variant.item_id == variant_id("Hiking Boots", size="10",
                                                   material="synthetic", waterproof="yes")
    assert choice.mentioned == {"waterproof": "yes"}


PUZZLE_2000_ART = variant_id("Jigsaw Puzzle", pieces="2000", theme="art",
                             difficulty_level="intermediate")
GLASSES_BLACK_GREEN = variant_id("Sunglasses", frame_color="black", lens_color="green",
                                 lens_type="polarized", frame_material="metal")
SHIRT_BLACK_XL, BOTTLE_1000_GLASS_BLUE = "2060066974", "6469567736"


@pytest.mark.parametrize(
    "name, current, text, options",
    [
        ("Hiking Boots", BOOTS_10_SYNTH_DRY, "size 10 waterproof",
         {"size": "10", "material": "synthetic", "waterproof": "yes"}),
        ("T-Shirt", SHIRT_BLACK_XL, "the blue one in M",
         {"color": "blue", "size": "M", "material": "cotton", "style": "crew neck"}),
        ("T-Shirt", SHIRT_BLACK_XL, "blu in medium",
         {"color": "blue", "size": "M", "material": "cotton", "style": "crew neck"}),
        ("T-Shirt", SHIRT_BLACK_XL, "purple",
         {"color": "purple", "size": "XL", "material": "cotton", "style": "crew neck"}),
        ("T-Shirt", SHIRT_BLACK_XL, "RED XXL",
         {"color": "red", "size": "XXL", "material": "cotton", "style": "crew neck"}),
        ("Jigsaw Puzzle", PUZZLE_2000_ART, "2000 piece animals",
         {"pieces": "2000", "theme": "animals", "difficulty level": "intermediate"}),
        ("Sunglasses", GLASSES_BLACK_GREEN, "non-polarized",
         {"frame color": "black", "lens color": "green", "lens type": "non-polarized",
          "frame material": "metal"}),
    ],
)
def test_one_variant(name: str, current: str, text: str, options: Dict[str, str]) -> None:
    choice = resolve_variant(text, product(name), current)
    assert choice.variant is not None, choice
    assert choice.variant.options == options
    assert choice.variant.available and choice.variant.item_id != current
    assert choice.variant.price == product(name).variant(choice.variant.item_id).price


def test_several_fit_then_candidates_to_ask() -> None:
    choice = resolve_variant("1000 pieces", product("Jigsaw Puzzle"), PUZZLE_2000_ART)
    assert choice.variant is None
    assert len(choice.candidates) >= 2
    assert all(c.options["pieces"] == "1000" and c.available for c in choice.candidates)
    # the 1000-piece art puzzle (what "keep the rest" means) is sold out: said, not chosen
    assert any(u.options["theme"] == "art" for u in choice.unavailable)
    assert all(not u.available for u in choice.unavailable)


def test_only_sold_out_variants_fit() -> None:
    choice = resolve_variant("non waterproof size 9", product("Hiking Boots"),
                             BOOTS_10_SYNTH_DRY)
    assert choice.variant is None and choice.candidates == []
    assert choice.unavailable and not any(u.available for u in choice.unavailable)
    assert {u.options["size"] for u in choice.unavailable} == {"9"}


def test_nothing_matches() -> None:
    boots = product("Hiking Boots")
    for text in ("nothing like that", "", "a pink one"):
        choice = resolve_variant(text, boots, BOOTS_10_SYNTH_DRY)
        assert choice.variant is None and not choice.candidates and not choice.unavailable
    # understood, but the catalog has no such combination
    choice = resolve_variant("red plastic", product("Water Bottle"), "6469567736")
    assert choice.variant is None and not choice.candidates
    assert choice.mentioned == {"color": "red", "material": "plastic"}


def test_item_id_from_a_button() -> None:
    boots = product("Hiking Boots")
    available = next(v.item_id for v in boots.variants
                     if v.available and v.item_id != BOOTS_10_SYNTH_DRY)
    sold_out = next(v.item_id for v in boots.variants if not v.available)
    assert resolve_variant(available, boots, BOOTS_10_SYNTH_DRY).variant.item_id == available
    choice = resolve_variant(sold_out, boots, BOOTS_10_SYNTH_DRY)
    assert choice.variant is None and choice.unavailable[0].item_id == sold_out
    # the current variant is never "another" variant
    assert resolve_variant(BOOTS_10_SYNTH_DRY, boots, BOOTS_10_SYNTH_DRY).variant is None


def test_same_value_in_two_options_and_the_key_named_next_to_it() -> None:
    choice = resolve_variant("brown lenses", product("Sunglasses"), GLASSES_BLACK_GREEN)
    assert choice.mentioned == {"lens color": "brown"}
    assert all(c.options["lens color"] == "brown" for c in choice.candidates)


def test_no_backlight_means_none() -> None:
    keyboard = product("Mechanical Keyboard")
    current = variant_id("Mechanical Keyboard", switch_type="clicky", backlight="RGB",
                         size="60%")
    choice = resolve_variant("no backlight", keyboard, current)
    assert choice.mentioned == {"backlight": "none"}
    assert all(c.options["backlight"] == "none" for c in choice.candidates)


def test_every_available_variant_is_reachable_by_its_options() -> None:
    for prod in map(Product.parse, PRODUCTS.values()):
        variants = list(prod.variants)
        current = variants[0].item_id
        for target in variants[1:]:
            # yes/no options are said with their name: "waterproof", "no water resistance"
            text = " ".join(
                k if v == "yes" else f"no {k}" if v in ("no", "none") else str(v)
                for k, v in target.options.items()
            )
            choice = resolve_variant(text, prod, current)
            picked = [choice.variant] if choice.variant else choice.candidates
            assert all(v.available and v.item_id != current for v in picked)
            if target.available:
                assert target in picked, (prod.name, text)
            else:
                assert target in choice.unavailable, (prod.name, text)


# ------------------------------------------------------------------------------ addresses
@pytest.mark.parametrize(
    "text, expected",
    [
        ("123 Main St Apt 4, Austin, TX 78701",
         ("123 Main St", "Apt 4", "Austin", "TX", "78701")),
        ("45 Oak Avenue, Springfield IL 62704 USA",
         ("45 Oak Avenue", "", "Springfield", "IL", "62704")),
        ("ship it to 9 Elm Rd unit 2 Denver Colorado 80202",
         ("9 Elm Rd", "Unit 2", "Denver", "CO", "80202")),
        ("123 main st apt 4, austin, tx 78701",
         ("123 Main St", "Apt 4", "Austin", "TX", "78701")),
        ("101 n main st, san antonio, texas 78205-1234",
         ("101 N Main St", "", "San Antonio", "TX", "78205-1234")),
        ("500 5th Ave #3B New York NY 10110",
         ("500 5th Ave", "#3B", "New York", "NY", "10110")),
        ("55 West 3rd Street, Apt. 5B, Columbus, OH 43215, United States of America",
         ("55 West 3rd Street", "Apt. 5B", "Columbus", "OH", "43215")),
        ("77 Sunset Blvd, Los Angeles, Californa 90001",
         ("77 Sunset Blvd", "", "Los Angeles", "CA", "90001")),
        ("986 Sunset Drive, Suite 259, Denver, CO 80279",  # noah_brown_6181's own address
         ("986 Sunset Drive", "Suite 259", "Denver", "CO", "80279")),
    ],
)
def test_parse_address(text: str, expected: tuple) -> None:
    parsed = parse_address(text)
    assert (parsed.address1, parsed.address2, parsed.city, parsed.state, parsed.zip) == expected
    assert parsed.country == "USA" and parsed.missing == []


def test_address_missing_fields() -> None:
    assert parse_address("986 Sunset Drive, Suite 259, Denver, CO").missing == ["zip"]
    assert parse_address("Austin TX 78701").missing == ["address1"]
    assert set(parse_address("hello").missing) >= {"address1", "state", "zip"}
    assert parse_address("").missing == ["address1", "city", "state", "zip"]


def test_parsed_address_round_trips_the_seed_addresses() -> None:
    for user in list(USERS.values())[:60]:
        addr = Address.parse(user["address"])
        parsed = parse_address(format_address(addr))
        assert parsed.as_address() == addr, format_address(addr)


def test_format_address() -> None:
    addr = Address.parse(USERS["noah_brown_6181"]["address"])
    assert format_address(addr) == "986 Sunset Drive, Suite 259, Denver, CO 80279, USA"
    parsed = parse_address("9 elm rd denver colorado 80202")
    assert isinstance(parsed, AddressParse)
    assert format_address(parsed.as_address()) == "9 Elm Rd, Denver, CO 80202, USA"
    assert set(parsed.as_dict()) == {"address1", "address2", "city", "state", "country", "zip"}


# ------------------------------------------------------------------------------ payment
ISABELLA = "isabella_lopez_6490"  # visa 8902, gift card $60, mastercard 4336, paypal


@pytest.mark.parametrize(
    "text, method_id",
    [
        ("gift card", "gift_card_8245350"),
        ("my giftcard", "gift_card_8245350"),
        ("the gift crad", "gift_card_8245350"),
        ("paypal", "paypal_1621947"),
        ("Pay Pal please", "paypal_1621947"),
        ("paypl", "paypal_1621947"),
        ("visa ending 8902", "credit_card_8897086"),
        ("the VISA", "credit_card_8897086"),
        ("the mastercard", "credit_card_8554680"),
        ("card ending in 4336", "credit_card_8554680"),
        ("credit_card_8554680", "credit_card_8554680"),
    ],
)
def test_payment_method(text: str, method_id: str) -> None:
    choice = resolve_payment_method(text, methods(ISABELLA).values())
    assert choice.method_id == method_id
    assert choice.method == methods(ISABELLA)[method_id]
    assert not choice.original and not choice.candidates


def test_payment_ambiguous_and_excluded() -> None:
    pm = methods(ISABELLA)
    choice = resolve_payment_method("the card", pm.values())
    assert choice.method_id is None
    assert [c.id for c in choice.candidates] == ["credit_card_8897086", "credit_card_8554680"]
    # "the card" when the current one is excluded leaves one
    choice = resolve_payment_method("my credit card", pm.values(),
                                    exclude_id="credit_card_8897086")
    assert choice.method_id == "credit_card_8554680"
    choice = resolve_payment_method("paypal", pm.values(), exclude_id="paypal_1621947")
    assert choice.method_id is None and choice.excluded
    # a single method offered: only that one
    assert resolve_payment_method("gift card", [pm["gift_card_8245350"]]).method_id



def test_payment_original_and_unknown() -> None:
    pm = methods(ISABELLA)
    for text in ("original payment method", "the same card I paid with", "orignal method"):
        assert resolve_payment_method(text, pm.values()).original
    for text in ("bitcoin", "", "visa ending 1111"):
        choice = resolve_payment_method(text, pm.values())
        assert choice.method_id is None and not choice.candidates and not choice.original
    # someone else's method id from a button is nobody's here
    other = resolve_payment_method("credit_card_3951670", methods("chen_smith_8425").values())
    assert other.method_id is None and not other.candidates


def test_payment_single_card_and_missing_kinds() -> None:
    pm = methods("noah_brown_6181")  # paypal + mastercard 9212
    assert resolve_payment_method("the card", pm.values()).method_id == "credit_card_7815826"
    assert resolve_payment_method("gift card", pm.values()).method_id is None
    assert resolve_payment_method("visa", pm.values()).method_id is None


@pytest.mark.parametrize(
    "name, current, text, options",
    [
        ("Hiking Boots", BOOTS_10_SYNTH_DRY, "waterprof in size 12",
         {"size": "12", "material": "leather", "waterproof": "yes"}),
        ("Water Bottle", BOTTLE_1000_GLASS_BLUE, "750ml red",
         {"capacity": "750ml", "material": "stainless steel", "color": "red"}),
        ("Water Bottle", BOTTLE_1000_GLASS_BLUE, "750 ml in red",
         {"capacity": "750ml", "material": "stainless steel", "color": "red"}),
    ],
)
def test_a_lone_match_that_changes_an_unmentioned_option_is_offered_not_taken(
        name: str, current: str, text: str, options: Dict[str, str]) -> None:
    """The fits that keep the material are sold out: the only one left has another
    material, which the shopper never asked for, so it is offered (asked), not chosen."""
    choice = resolve_variant(text, product(name), current)
    assert choice.variant is None
    assert [v.options for v in choice.candidates] == [options]
