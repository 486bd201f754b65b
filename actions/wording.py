"""How the assistant words the shop's records: money, items, addresses, payment methods,
order statuses (with what each allows), and buttons. No Rasa, no HTTP.

One home, so that an order total or a card reads the same in a status answer, a read-back and
a confirmation, and a designer changes a phrase in one place. Fixed replies live in
domain.yml; this module builds the text that depends on the shopper's data.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from actions.shop_records import Address, Item, Order, PaymentMethod, Variant

Button = Dict[str, str]

REFUND_TIMING = (
    "Gift cards are credited at once; other payment methods receive the refund in 5 to 7 "
    "business days."
)
# What each order status means for the shopper next (docs/retail-rules.md, "Order statuses").
STATUS_NEXT: Dict[str, str] = {
    "pending": (
        "It hasn't shipped yet, so it can still be cancelled, or its shipping address, "
        "payment method or items can be changed."
    ),
    "pending (item modified)": (
        "It hasn't shipped yet. Its items were already changed once, so it can no longer be "
        "cancelled or modified."
    ),
    "processed": (
        "It's being prepared in our warehouse, so it can no longer be changed or cancelled, "
        "but you can track its shipment."
    ),
    "delivered": (
        "It has been delivered. If something isn't right, its items can be returned or "
        "exchanged (once per order)."
    ),
    "cancelled": (
        "It was cancelled, which is final. Payments are refunded to the method they came "
        "from: at once for gift cards, in 5 to 7 business days for other methods."
    ),
    "return requested": (
        "A return has been requested: you'll receive an email with return instructions, and "
        "the refund goes to the payment method chosen for the return."
    ),
    "exchange requested": (
        "An exchange has been requested for some of its items: you'll receive an email with "
        "instructions. No new order is placed."
    ),
}
SIMPLE_STATUSES = {"pending", "processed", "delivered", "cancelled"}  # read as adjectives
_FLAG_VALUES = ("yes", "no", "none", "high", "low", "standard")  # unclear without their key
_BRANDS = {"mastercard": "Mastercard", "amex": "American Express"}


# --------------------------------------------------------------------------- values
def format_money(amount: Any) -> str:
    """``$1,234.50``, ``-$3.00`` (half-up cents); the shop's prices are US dollars."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(amount)
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def format_options(options: Optional[Mapping[str, Any]]) -> str:
    """``blue, M, cotton`` — values in catalog order; keys only where a value alone is unclear."""
    parts = []
    for key, value in (options or {}).items():
        text = str(value)
        parts.append(f"{key} {text}" if text.lower() in _FLAG_VALUES else text)
    return ", ".join(parts)


def format_item(name: str, options: Optional[Mapping[str, Any]] = None) -> str:
    """``T-Shirt (blue, M, cotton, crew neck)``."""
    described = format_options(options)
    return f"{name} ({described})" if described else name


def describe_item(item: Item) -> str:
    return format_item(item.name, item.options)


def item_lines(items: Iterable[Item]) -> List[str]:
    """One bullet per distinct item; duplicates shown as ``2 × ...``, with unit price."""
    counts: Counter = Counter()
    first: Dict[str, Item] = {}
    for item in items:
        counts[item.item_id] += 1
        first.setdefault(item.item_id, item)
    return [
        f"• {f'{counts[key]} × ' if counts[key] > 1 else ''}{describe_item(item)}"
        f" — {format_money(item.price)}"
        for key, item in first.items()
    ]


def format_address(address: Address) -> str:
    """``322 Elm Street, Suite 586, Columbus, OH 43133, USA``."""
    region = " ".join(p for p in (address.state, address.zip) if p)
    parts = (address.address1, address.address2, address.city, region, address.country)
    return ", ".join(p for p in parts if p)


def describe_method(method: Optional[PaymentMethod]) -> str:
    """``Visa ending 1234``, ``gift card (balance $12.00)``, ``PayPal`` — never a full number."""
    if method is None:
        return "the original payment method"
    if method.source == "gift_card":
        if method.balance is None:
            return "gift card"
        return f"gift card (balance {format_money(method.balance)})"
    if method.source == "credit_card":
        raw = method.brand or "card"
        brand = _BRANDS.get(raw.lower(), raw.title())
        return f"{brand} ending {method.last_four}" if method.last_four else brand
    if method.source == "paypal":
        return "PayPal"
    return method.source.replace("_", " ") or "payment method"


def format_when(value: Any) -> str:
    """Readable dates: ``Mar 4, 2024, 14:05 UTC`` for times, ``Mon, Mar 4, 2024`` for days."""
    text = str(value or "").strip()
    if not text:
        return ""
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d")
            return f"{day:%a}, {day:%b} {day.day}, {day.year}"
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    zone = " UTC" if moment.utcoffset() is not None and not moment.utcoffset() else ""
    return f"{moment:%b} {moment.day}, {moment.year}, {moment:%H:%M}{zone}"


def humanize(code: Any) -> str:
    """``in_transit`` -> ``in transit``."""
    return str(code or "").replace("_", " ").strip()


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


# --------------------------------------------------------------------------- orders
def status_meaning(status: Optional[str]) -> str:
    """What a status means for the shopper next (empty if we don't know the status)."""
    return STATUS_NEXT.get((status or "").strip().lower(), "")


def describe_order(order: Order) -> str:
    """Status, items and what the status means next, in a few short lines."""
    if order.status in SIMPLE_STATUSES:
        lines = [f"Order {order.order_id} is {order.status}."]
    else:  # "return requested", "pending (item modified)": not an adjective
        lines = [f"Order {order.order_id} — status: {order.status}."]
    if order.items:
        lines += ["Items:", *item_lines(order.items), f"Total: {format_money(order.total)}"]
    meaning = status_meaning(order.status)
    return "\n".join(lines + ([meaning] if meaning else []))


def order_label(order: Order) -> str:
    """``#W1234567 – 3 items, pending``: the button title for picking an order."""
    return f"{order.order_id} – {plural(len(order.items), 'item')}, {order.status}"


def settlement(difference: float, method: str, tense: str = "ask") -> str:
    """Who pays whom after swapping items: ``tense`` ask (read-back), will (after an exchange
    request) or paid (after an item change, which charges at once)."""
    pays = {"ask": "You pay", "will": "You'll pay", "paid": "You've paid"}[tense]
    gets = "You get" if tense == "ask" else "You'll get"
    if difference > 0:
        return f"{pays} the difference of {format_money(difference)} with your {method}."
    if difference < 0:
        return f"{gets} {format_money(-difference)} back to your {method}."
    return "Same price: nothing to pay or refund."


# --------------------------------------------------------------------------- buttons
def button(title: str, intent: str, **entities: Any) -> Button:
    """A button whose payload carries entities (JSON with double quotes)."""
    payload = json.dumps(entities, separators=(",", ":")) if entities else ""
    return {"title": title, "payload": f"/{intent}{payload}"}


def order_button(order: Order, intent: str = "order_status") -> Button:
    """A button that opens ``order`` for ``intent`` (sets the order id)."""
    return button(order_label(order), intent, order_id=order.order_id)


# Why an order can't get a change, by status: the text ({oid}: the order, {done}: "cancelled",
# "returned", "changed"...) and the buttons (title, intent) for what can be done instead.
_REFUSALS: Dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "processed": (
        "Order {oid} is already being prepared in our warehouse, so it can no longer be {done}. "
        "You can track it, and once it's delivered you can return or exchange items.",
        (("Track it", "track_order"),)),
    "delivered": (
        "Order {oid} has already been delivered, so it can't be {done} any more — but you can "
        "return or exchange its items.",
        (("Return items", "return_order"), ("Exchange items", "exchange_order"))),
    "pending": (
        "Order {oid} hasn't been delivered yet, so its items can't be {done} yet. While it's "
        "pending you can cancel it or change its items, address or payment.",
        (("Cancel it", "cancel_order"), ("Change its items", "modify_order"))),
    "pending (item modified)": (
        "The items of order {oid} were already changed once, so it can no longer be {done} or "
        "modified. Once it's delivered you can return or exchange items.", ()),
    "return requested": ("A return was already requested for order {oid}; returns and "
                         "exchanges are possible once per order.", ()),
    "exchange requested": ("An exchange was already requested for order {oid}; returns and "
                           "exchanges are possible once per order.", ()),
    "cancelled": ("Order {oid} is cancelled, which is final.", ()),
}


def refusal(order: Order, change_type: str, done_word: str) -> tuple[str, List[Button]]:
    """Plain words for why ``order`` can't get this change, and buttons for what can be done.

    ``done_word`` completes "can no longer be …" ("cancelled", "returned", "changed").
    """
    oid, status = order.order_id, order.status
    if change_type == "payment" and status == "pending":
        return (
            f"Order {oid} was paid with more than one payment method, so its payment can't be "
            "switched. A human agent can help with that.",
            [button("Talk to a human agent", "request_human")],
        )
    text, offers = _REFUSALS.get(status, (
        "Order {oid} is " + (status or "in a state") + " where it can't be {done}.", ()))
    return (text.format(oid=oid, done=done_word),
            [button(title, intent, order_id=oid) for title, intent in offers])


# ----------------------------------------------------------------------------- requests
def closest_variant_offer(item: Item, variant: Variant) -> str:
    """The one available variant that fits what was asked but changes another option."""
    changed = [f"{key} {value} instead of {item.options.get(key)}"
               for key, value in variant.options.items()
               if item.options.get(key) != value]
    return (f"Exactly that isn't available. The closest available {item.name} is "
            f"{format_options(variant.options)} ({format_money(variant.price)}): "
            f"{', '.join(changed)}. Shall I take that one?")


def sold_out_offer(item: Item, wanted: Mapping[str, str],
                   suggestions: Sequence[Any]) -> str:
    """A sold-out combination, and the closest available variants of the same product with
    what each keeps and changes (``actions.suggestions.VariantSuggestion``; issue 21)."""
    asked = format_options(wanted) or "that option"
    lines = [f"Sorry, the {item.name} in {asked} is sold out right now. "
             "The closest ones available:"]
    for suggestion in suggestions:
        lines.append(f"• {format_options(suggestion.variant.options)} "
                     f"({format_money(suggestion.variant.price)}): {suggestion.explanation}")
    lines.append("Pick one, or tell me another option.")
    return "\n".join(lines)


def whole_order_cancel_note(order_id: str, rest: Iterable[Item]) -> str:
    """Cancelling works on whole orders: say which items the shopper didn't name."""
    others = ", ".join(describe_item(i) for i in rest)
    return (f"Just so you know: cancelling works on the whole order, so every item of "
            f"{order_id} would be cancelled, including {others}. Single items can't be "
            "removed from an order.")


def next_order_note(order_id: str) -> str:
    """Between the orders of one request ("cancel W1 and W2")."""
    return f"Now the next order you mentioned, {order_id}."
