"""actions/suggestions.py on the shop's REAL seed catalog and orders (shop/data/db.json), no shop
process. The ranking tests use the real MiniLM encoder (the one knowledge retrieval loads); the
catalog is embedded once per session (~6-9 s on one core)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from actions.shop_records import Item, Order, Product
from actions.suggestions import (
    FEATURES,
    Constraints,
    closest_variants,
    magnitude,
    parse_query,
    popularity_from_orders,
    price_phrase,
    purchased_items,
    rank_products,
)

pytestmark = pytest.mark.no_shop

DB: Dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "shop" / "data" / "db.json").read_text("utf-8"))
CATALOG: List[Product] = [Product.parse(p) for p in DB["products"].values()]
ORDERS: List[Order] = [Order.parse(o) for o in DB["orders"].values()]
POPULARITY = popularity_from_orders(ORDERS)


def product(name: str) -> Product:
    return next(p for p in CATALOG if p.name == name)


def item(name: str, item_id: str) -> Item:
    """An order item of the seed catalog's variant (as an order would carry it)."""
    p = product(name)
    v = p.variant(item_id)
    assert v is not None
    return Item(item_id=v.item_id, product_id=p.product_id, name=p.name, price=v.price,
                options=dict(v.options))


def orders_of(user_id: str) -> List[Order]:
    return [Order.parse(DB["orders"][o]) for o in DB["users"][user_id]["orders"]]


# ------------------------------------------------------------------ closest variants
def test_closest_variants_keep_colour_and_explain() -> None:
    # blue 6 hours IPX4 -> "not resistant": blue 6 hours not resistant doesn't exist
    earbuds = product("Wireless Earbuds")
    out = closest_variants(earbuds, {"water resistance": "not resistant"},
                           item("Wireless Earbuds", "1646531091"))
    assert [(s.variant.item_id, s.explanation) for s in out] == [
        ("6077640618", "same colour, not resistant as asked, 8 hours instead of 6, $10.43 more"),
        ("2052249669", "not resistant as asked, white instead of blue, 4 hours instead of 6, "
                       "$4.65 more"),
        ("4063058357", "not resistant as asked, black instead of blue, 4 hours instead of 6, "
                       "$10.85 more"),
    ]
    first = out[0]
    assert first.kept == ("color", "water resistance")
    assert [tuple(c) for c in first.changed] == [("battery life", "6 hours", "8 hours")]
    assert first.price_difference == 10.43 and not first.exact


def test_unavailable_option_gets_available_variants_of_that_product_only() -> None:
    for p in CATALOG:
        sold_out = [v for v in p.variants if not v.available]
        current = next(v for v in p.variants if v.available)
        if not sold_out:
            continue
        mine = item(p.name, current.item_id)
        out = closest_variants(p, dict(sold_out[0].options), mine, k=50)
        own_ids = {v.item_id for v in p.variants}
        assert out, p.name
        assert all(s.variant.available for s in out), p.name
        assert all(s.variant.item_id in own_ids for s in out), p.name
        assert current.item_id not in {s.variant.item_id for s in out}, p.name
        assert len(out) == len([v for v in p.variants if v.available]) - 1


def test_nearer_on_an_ordered_option_wins() -> None:
    # 5K camera, not waterproof -> waterproof: 4K is nearer to 5K than 1080p, whatever the price
    out = closest_variants(product("Action Camera"), {"waterproof": "yes"},
                           item("Action Camera", "7523669277"))
    assert [s.explanation for s in out[:2]] == [
        "same colour, waterproof yes as asked, 4K instead of 5K, $56.91 less",
        "same colour, waterproof yes as asked, 1080p instead of 5K, $20.15 less",
    ]
    # word scales too: medium is nearer to high than low is; such values are said with their key
    lamp = closest_variants(product("Desk Lamp"), {"power source": "USB"},
                            item("Desk Lamp", "7624783998"))
    assert [s.explanation for s in lamp[:2]] == [
        "same colour, USB as asked, brightness medium instead of high, $4.24 more",
        "same colour, USB as asked, brightness low instead of high, $0.94 less",
    ]
    # "8-inch" for a 7-inch tablet comes before "10-inch" though it costs more
    tablet = closest_variants(product("Tablet"), {"color": "gold"}, item("Tablet", "4913411651"))
    assert [s.explanation for s in tablet[:2]] == [
        "same storage, gold as asked, 8-inch instead of 7-inch, $48.67 more",
        "same storage, gold as asked, 10-inch instead of 7-inch, $9.93 more",
    ]


def test_the_size_worn_is_kept_before_other_options() -> None:
    # black S polyester crew neck -> cotton: black S cotton doesn't exist; S comes first
    out = closest_variants(product("T-Shirt"), {"material": "cotton"},
                           item("T-Shirt", "1176194968"))
    assert [s.explanation for s in out[:2]] == [
        "same size, cotton as asked, blue instead of black, v-neck instead of crew neck, "
        "$0.55 more",
        "same colour and style, cotton as asked, XL instead of S, $1.83 less",
    ]


def test_without_an_item_the_sold_out_variant_is_the_price_reference() -> None:
    # blue, 4 hours, IPX7 is sold out ($258.97); keys and values in any spelling
    wanted = {"colour": "Blue", "battery life": "4 hours", "water resistance": "IPX7"}
    out = closest_variants(product("Wireless Earbuds"), wanted)
    assert [(s.variant.item_id, s.explanation) for s in out[:2]] == [
        ("6452271382", "blue and 4 hours as asked, IPX4 instead of IPX7, $0.13 less"),
        ("9580569596", "4 hours and IPX7 as asked, black instead of blue, $1.59 less"),
    ]


def test_available_combination_comes_first_exactly() -> None:
    boots = product("Hiking Boots")
    wanted = {"size": "9", "material": "leather", "waterproof": "yes"}  # 8106223139, available
    out = closest_variants(boots, wanted)
    assert out[0].variant.item_id == "8106223139" and out[0].exact
    assert out[0].explanation == "exactly as asked, same price"
    mine = item("Hiking Boots", "3812493782")  # 7, leather, waterproof: $244.34
    assert closest_variants(boots, {"size": "9"}, mine)[0].explanation == (
        "exactly as asked, $4.78 more")


def test_closest_variants_are_deterministic_and_bounded() -> None:
    p = product("T-Shirt")
    mine = item("T-Shirt", "1176194968")
    first = closest_variants(p, {"material": "cotton"}, mine)
    shuffled = Product(p.product_id, p.name, tuple(reversed(p.variants)))
    assert [s.variant.item_id for s in closest_variants(shuffled, {"material": "cotton"}, mine)] \
        == [s.variant.item_id for s in first] == ["8349118980", "2060066974", "3799046073"]
    assert closest_variants(p, {"material": "cotton"}, mine, k=0) == []
    assert len(closest_variants(p, {"unknown key": "x"}, mine, k=2)) == 2


def test_magnitudes_order_units_and_words() -> None:
    assert magnitude("4K") > magnitude("2K") > magnitude("1080p")
    assert magnitude("1TB SSD") > magnitude("512GB SSD")
    assert magnitude("XXL") > magnitude("XL") > magnitude("M") > magnitude("S")
    assert magnitude("IPX7") > magnitude("IPX4") > magnitude("not resistant")
    assert magnitude("black") is None
    assert price_phrase(10.0, 10.004) == "same price"
    assert price_phrase(12.0, 24.5) == "$12.50 less"
    assert price_phrase(1234.5, None) == "$1,234.50"


# ------------------------------------------------------------------ constraints (text)
def test_parse_query_reads_price_colour_features_and_the_compared_item() -> None:
    boots = [item("Hiking Boots", "4694984344")]  # paid $239.78
    q = parse_query("anything waterproof in black under $300?", CATALOG, boots)
    assert (q.constraints.max_price, dict(q.constraints.options), q.constraints.features,
            q.constraints.like, q.text) == (299.99, {"color": ("black",)}, ("waterproof",),
                                            None, "")
    q = parse_query("anything like my boots but cheaper?", CATALOG, boots)
    assert (q.constraints.like, q.constraints.max_price, q.text) == ("Hiking Boots", 239.77, "")
    q = parse_query("a black or blue backpack, between 50 and 100 dollars", CATALOG)
    assert dict(q.constraints.options) == {"color": ("black", "blue")}
    assert (q.constraints.min_price, q.constraints.max_price) == (50.0, 100.0)
    assert q.constraints.products == ("Backpack",)
    q = parse_query("a water bottle under 500ml, not plastic", CATALOG)
    assert q.constraints.max_price is None and dict(q.constraints.options) == {}
    assert parse_query("non-polarized sunglasses", CATALOG).constraints.features == ()
    assert parse_query("delivered within 2 days", CATALOG).constraints.max_price is None
    q = parse_query("what would you recommend for a hiking trip?", CATALOG)
    assert q.text == "hiking trip" and q.constraints == Constraints()
    q = parse_query("like my electric kettle but in glass", CATALOG)
    assert q.constraints.like == "Electric Kettle"
    assert dict(q.constraints.options) == {"material": ("glass",)}  # "electric" is the name


# ------------------------------------------------------------------ rank_products
@pytest.fixture(scope="module")
def james() -> List[Order]:
    """Water Bottle x2, Office Chair, Grill, Hiking Boots, security camera, jigsaw puzzle."""
    return orders_of("james_li_5688")


def test_price_and_colour_constraints_filter(james: List[Order]) -> None:
    cheap = rank_products(CATALOG, james, constraints=Constraints(max_price=60.0), k=50)
    assert cheap and all(s.variant.price <= 60.0 and s.variant.available for s in cheap)
    black = rank_products(CATALOG, james, constraints=Constraints(options={"color": "black"}),
                          k=50)
    assert len(black) > 10
    for s in black:
        assert any(k.split()[-1] == "color" and v == "black" for k, v in s.variant.options.items())
    none = rank_products(CATALOG, james, constraints=Constraints(max_price=1.0))
    assert none == []


def test_waterproof_covers_water_resistance_too(james: List[Order]) -> None:
    out = rank_products(CATALOG, james, constraints=Constraints(options={"waterproof": "yes"}),
                        k=50)
    names = {s.product.name for s in out}
    assert {"Action Camera", "Bluetooth Speaker", "Wireless Earbuds"} <= names
    assert "Hiking Boots" not in names  # james has a pair already
    for s in out:
        assert any((k.lower(), v.lower()) in FEATURES["waterproof"]
                   for k, v in s.variant.options.items())
        assert "waterproof" in s.reason


def test_question_text_constraints_apply(james: List[Order]) -> None:
    out = rank_products(CATALOG, james, "anything waterproof in black under $500?", k=50)
    assert out
    for s in out:
        assert s.variant.price < 500
        assert "black" in s.variant.options.values()
        assert s.reason.endswith("within your budget")


def test_owned_variants_and_products_are_excluded(james: List[Order]) -> None:
    owned = {i.item_id for i in purchased_items(james)}
    owned_products = {i.product_id for i in purchased_items(james)}
    out = rank_products(CATALOG, james, k=50, popularity=POPULARITY)
    assert {s.product.product_id for s in out}.isdisjoint(owned_products)
    assert len(out) == len(CATALOG) - len(owned_products)
    anything = rank_products(CATALOG, james, k=50, constraints=Constraints(include_owned=True))
    assert owned_products <= {s.product.product_id for s in anything}
    assert {s.variant.item_id for s in anything}.isdisjoint(owned)


def test_cancelled_orders_are_not_owned() -> None:
    orders = orders_of("anya_garcia_3271")
    cancelled = {i.item_id for o in orders if o.status == "cancelled" for i in o.items}
    assert cancelled and cancelled.isdisjoint(i.item_id for i in purchased_items(orders))


def test_like_my_boots_but_cheaper(james: List[Order]) -> None:
    out = rank_products(CATALOG, james, "anything like my boots but cheaper?")
    assert out[0].product.name == "Hiking Boots"  # other pairs of the compared product
    assert out[0].variant.item_id != "4694984344"
    assert all(s.variant.price < 239.78 for s in out)
    assert out[0].reason.startswith("your Hiking Boots in ")
    assert out[0].reason.endswith(" less than yours")
    assert all(s.reason.startswith("like your Hiking Boots") for s in out[1:])


def test_what_goes_with_my_item_is_another_product(james: List[Order]) -> None:
    assert parse_query("what goes well with my grill?", CATALOG).constraints.other_products
    out = rank_products(CATALOG, james, "what goes well with my grill?", k=5)
    assert out and "Grill" not in {s.product.name for s in out}
    assert all(s.reason.startswith("to go with your Grill") for s in out)
    like = rank_products(CATALOG, james, "anything like my grill?", k=5)
    assert like[0].product.name == "Grill" and like[0].reason.startswith("your Grill")


def test_question_words_rank_by_meaning(james: List[Order]) -> None:
    out = rank_products(CATALOG, james, "something for my morning coffee", k=3,
                        popularity=POPULARITY)
    assert out[0].product.name in {"Coffee Maker", "Espresso Machine"}
    assert out[0].query_similarity is not None and out[0].query_similarity > 0.3
    assert out[0].reason.startswith("close to what you asked for")


def test_history_similarity_and_reasons(james: List[Order]) -> None:
    out = rank_products(CATALOG, james, k=5)  # no popularity data: similarity alone
    assert [s.score for s in out] == sorted((s.score for s in out), reverse=True)
    assert all(s.reason.startswith("similar to your ") for s in out)
    assert all(s.popularity == 0.0 and s.query_similarity is None for s in out)


def test_ranking_is_deterministic(james: List[Order]) -> None:
    def ids(catalog: List[Product]) -> List[str]:
        return [s.variant.item_id for s in rank_products(
            catalog, james, "a gift under $200", k=10, popularity=POPULARITY)]

    first = ids(CATALOG)
    assert len(first) == 10
    assert ids(CATALOG) == first
    assert ids(list(reversed(CATALOG))) == first


def test_vectors_are_saved_and_loaded_so_a_new_process_embeds_nothing(tmp_path) -> None:
    """The action server's warm-up (actions/recommend.py): embedded once, kept on disk."""
    import numpy as np

    from actions.suggestions import ProductVectors

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[float(len(t)), 1.0, 0.0] for t in texts], dtype=np.float32)

    first = ProductVectors(embed=embed)
    first.vectors(["a boot", "a hose"])
    first.save(tmp_path / "v.npz")
    second = ProductVectors(embed=embed)
    assert second.load(tmp_path / "v.npz") == 2
    calls.clear()
    rows = second.vectors(["a hose", "a boot", "a new tent"])
    assert calls == [["a new tent"]]  # only what is new is embedded
    assert rows[0][0] == len("a hose") and rows[1][0] == len("a boot")
    assert ProductVectors(embed=embed).load(tmp_path / "missing.npz") == 0
