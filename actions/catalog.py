"""action_product_info: options, prices and availability of one product, from the catalog.

Needs no identification. Option words in the message ("is the blue one in M available?")
narrow the answer to the matching variants.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Dict, List, Optional, Set

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction, shop_safe
from actions.product_names import name_table, resolve_product
from actions.recommend import recommend
from actions.shop_client import get_client
from actions.shop_records import Product, Variant
from actions.text_parsing import asks_for_suggestions
from actions.tracker_helpers import latest_turn
from actions.wording import format_money, format_options

MAX_VARIANT_LINES = 6
# Option values too generic to be read from free text on their own.
GENERIC_VALUES = {"yes", "no", "none", "standard", "basic", "full", "half", "fixed"}
# Only these keys are checked for "we don't have it in ..." (other words are too ambiguous).
FOREIGN_KEYS = {"color", "material"}
SIZE_WORDS = re.compile(r"\bsize\s+([A-Za-z0-9.]+)\b", re.IGNORECASE)


def _mentions(text: str, value: str) -> bool:
    """Whether free text names an option value (short sizes only in capitals or "size m")."""
    if not value or value.lower() in GENERIC_VALUES:
        return False
    sizes = {m.lower() for m in SIZE_WORDS.findall(text)}
    if value.lower() in sizes:
        return True
    if value.isdigit():
        return False  # "7", "10": only as "size 7"
    if len(value) <= 3 and value.isupper():
        # "M", "XL", "PVC": as a capitalised word only, so "I'm" or "a" are not sizes
        return bool(re.search(rf"(?<![\w'’]){re.escape(value)}(?![\w'’])", text))
    return bool(re.search(rf"(?<![\w-]){re.escape(value.lower())}(?![\w-])", text.lower()))


def requested_options(text: str, product: Product) -> Dict[str, Set[str]]:
    """Option key -> values of this product that the message mentions."""
    wanted: Dict[str, Set[str]] = defaultdict(set)
    for variant in product.variants:
        for key, value in variant.options.items():
            if _mentions(text, str(value)):
                wanted[key].add(str(value))
    # "rose gold" also contains "gold": keep only the longest overlapping mention per key
    for key, values in wanted.items():
        wanted[key] = {v for v in values if not any(v != w and v in w for w in values)}
    return dict(wanted)


def foreign_options(text: str, product: Product, catalog: List[Product]) -> List[str]:
    """Colors/materials the message names that this product never comes in ("pink laptop")."""
    own = {v.lower() for var in product.variants for v in var.options.values()}
    # the product's own name may contain option words ("Electric Kettle", "Wireless Earbuds")
    for form in sorted(name_table([product.name]), key=len, reverse=True):
        text = re.sub(rf"(?i)(?<![\w-]){re.escape(form)}(?![\w-])", " ", text)
    others = {
        str(value)
        for p in catalog
        for var in p.variants
        for key, value in var.options.items()
        if key in FOREIGN_KEYS and str(value).lower() not in own and len(str(value)) > 3
    }
    return sorted(v for v in others if _mentions(text, v))


def _matches(variant: Variant, wanted: Dict[str, Set[str]]) -> bool:
    return all(str(variant.options.get(key)) in values for key, values in wanted.items())


def _option_lines(variants: List[Variant]) -> List[str]:
    values: Dict[str, List[str]] = {}
    for variant in variants:
        for key, value in variant.options.items():
            if str(value) not in values.setdefault(key, []):
                values[key].append(str(value))
    return [f"• {key}: {', '.join(vals)}" for key, vals in values.items()]


def _price_range(variants: List[Variant]) -> str:
    prices = sorted(v.price for v in variants)
    if not prices:
        return ""
    if prices[0] == prices[-1]:
        return format_money(prices[0])
    return f"from {format_money(prices[0])} to {format_money(prices[-1])}"


def describe_product(product: Product, text: str = "",
                     catalog: Optional[List[Product]] = None) -> str:
    """Overview (availability, price range, options), or the variants matching the message."""
    name = product.name
    variants = list(product.variants)
    available = [v for v in variants if v.available]
    wanted = requested_options(text, product) if text else {}
    foreign = foreign_options(text, product, catalog or []) if text else []

    if foreign:
        lines = [f"{name} doesn't come in {', '.join(foreign)}. Its options are:"]
        return "\n".join(lines + _option_lines(variants))

    if not wanted:
        if not available:
            head = f"{name}: sorry, every version is out of stock right now."
        else:
            head = (
                f"{name}: {len(available)} of {len(variants)} versions in stock, "
                f"{_price_range(available)}."
            )
        return "\n".join([head, "Options:"] + _option_lines(variants))

    asked = ", ".join(sorted(v for vals in wanted.values() for v in vals))
    matching = [v for v in variants if _matches(v, wanted)]
    if not matching:
        lines = [f"We don't have {name} in {asked}. Its options are:"]
        return "\n".join(lines + _option_lines(variants))
    matching.sort(key=lambda v: (not v.available, v.price))
    in_stock = sum(1 for v in matching if v.available)
    if in_stock:
        head = f"{name} in {asked}: {in_stock} of {len(matching)} matching versions in stock."
    else:
        head = f"{name} in {asked}: sorry, out of stock right now."
    lines = [head]
    for variant in matching[:MAX_VARIANT_LINES]:
        state = "in stock" if variant.available else "out of stock"
        price = format_money(variant.price)
        lines.append(f"• {format_options(variant.options)} — {price}, {state}")
    if len(matching) > MAX_VARIANT_LINES:
        lines.append(
            f"…and {len(matching) - MAX_VARIANT_LINES} more. "
            "Tell me more options to narrow it down."
        )
    return "\n".join(lines)


class ActionProductInfo(NamedAction):
    """Answers what a product comes in, what it costs and whether it's available."""

    action_name = "action_product_info"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        turn = latest_turn(tracker)
        if asks_for_suggestions(turn.words):  # "do you have anything like my boots but …"
            return await recommend(dispatcher, tracker)
        asked = turn.entity("product")
        catalog = get_client().list_products()
        names = [p.name for p in catalog]
        # the entity of this message, else a product named in its text, else the one discussed
        name = (
            resolve_product(asked, names)
            or resolve_product(turn.words, names)
            or (None if asked else resolve_product(tracker.get_slot("product"), names))
        )
        if name is None:
            if asked or tracker.get_slot("product"):
                dispatcher.utter_message(response="utter_product_not_found")
                return [SlotSet("product", None)]
            dispatcher.utter_message(response="utter_ask_product")
            return []
        product = next(p for p in catalog if p.name == name)
        dispatcher.utter_message(text=describe_product(product, turn.text, catalog))
        return [SlotSet("product", name)]
