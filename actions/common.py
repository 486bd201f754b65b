"""Helpers shared by the actions: who the shopper is, formatting, and polite failure.

Kept here so that every action formats money/items the same way and no action can show a
traceback or skip the identification check.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import Counter
from datetime import datetime
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.shop_client import ShopError, ShopUnavailable, find_order_id, normalize_order_id

logger = logging.getLogger(__name__)

DomainDict = Dict[str, Any]
Events = List[Dict[str, Any]]
RunFn = Callable[[Action, CollectingDispatcher, Tracker, DomainDict], Awaitable[Events]]

# Tasks that need an identified shopper; validate_identify_form remembers them.
TASK_INTENTS = (
    "order_status",
    "track_order",
    "list_orders",
    # changes (change_form, actions/changes.py)
    "cancel_order",
    "return_order",
    "exchange_order",
    "modify_order",
    "change_address",
    "change_payment",
)

# What each order status means for the shopper next (RETAIL_RULES.md, "Order statuses").
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

# Texts we would rather have as domain responses (requested in docs/domain_requests.md);
# used when the domain does not have them yet.
FALLBACK_TEXTS: Dict[str, str] = {
    "utter_internal_error": (
        "Sorry, something went wrong on my side. Please try again, or say \"human\" and I'll "
        "pass you to an agent."
    ),
    "utter_invalid_email": "That doesn't look like an email address.",
    "utter_invalid_zip": "Zip codes have 5 digits, like 80279.",
    "utter_how_can_i_help": (
        "What can I do for you? I can show an order's status, track a delivery or list your "
        "orders."
    ),
}


# --------------------------------------------------------------------------- replies
def utter(
    dispatcher: CollectingDispatcher, domain: Optional[DomainDict], response: str, **kwargs: Any
) -> None:
    """Utter a domain response, or its fallback text while the domain lacks it."""
    responses = (domain or {}).get("responses") or {}
    if response in responses or response not in FALLBACK_TEXTS:
        dispatcher.utter_message(response=response, **kwargs)
    else:
        dispatcher.utter_message(text=FALLBACK_TEXTS[response].format(**kwargs))


async def run_safely(
    name: str,
    call: Callable[[], Awaitable[Events]],
    dispatcher: CollectingDispatcher,
    domain: Optional[DomainDict],
) -> Events:
    """Run ``call`` off the event loop; shop trouble becomes a polite reply, never a traceback.

    The shop client is blocking (requests), so the action body runs in a worker thread with its
    own event loop: a slow shop then delays one conversation, not the whole action server.
    """
    try:
        return await asyncio.to_thread(lambda: asyncio.run(call()))
    except ShopUnavailable as exc:
        logger.warning("%s: shop unavailable: %s", name, exc)
        dispatcher.utter_message(response="utter_shop_unavailable")
    except ShopError as exc:  # an unexpected 4xx: a bug on one side, not the shopper's fault
        logger.error("%s: unexpected shop answer %s: %s", name, exc.status, exc)
        dispatcher.utter_message(response="utter_shop_unavailable")
    except Exception:  # noqa: BLE001 - the shopper must never see a stack trace
        logger.exception("%s failed", name)
        utter(dispatcher, domain, "utter_internal_error")
    return []


def shop_safe(run: RunFn) -> RunFn:
    """Decorate an action's ``run`` with :func:`run_safely`."""

    @functools.wraps(run)
    async def wrapper(
        self: Action, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        return await run_safely(
            self.name(), lambda: run(self, dispatcher, tracker, domain), dispatcher, domain
        )

    return wrapper


# --------------------------------------------------------------------------- identity
def current_customer(tracker: Tracker) -> Optional[str]:
    """The identified shopper's user id, or None: both slots must agree."""
    customer_id = tracker.get_slot("customer_id")
    if customer_id and tracker.get_slot("identified") is True:
        return str(customer_id)
    return None


def refuse_unidentified(dispatcher: CollectingDispatcher) -> Events:
    """No customer data without identification, whatever ids the message carries."""
    dispatcher.utter_message(response="utter_ask_email")
    return []


# --------------------------------------------------------------------------- message parsing
def latest_intent(tracker: Tracker) -> Optional[str]:
    """Name of the intent of the latest user message."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name")


def latest_text(tracker: Tracker) -> str:
    """Text of the latest user message (empty for button payloads without text)."""
    return (tracker.latest_message or {}).get("text") or ""


def latest_entity(tracker: Tracker, name: str) -> Optional[str]:
    """The last value of entity ``name`` in the latest user message."""
    values = [
        e.get("value")
        for e in (tracker.latest_message or {}).get("entities") or []
        if e.get("entity") == name and e.get("value") not in (None, "")
    ]
    return str(values[-1]) if values else None


def requested_order_id(tracker: Tracker) -> Tuple[Optional[str], Optional[str]]:
    """(as typed, canonical) order id: the latest message's entity first, then the slot.

    The message wins over the slot so that corrections ("no, I meant W1234567") take effect at
    once; an id written in the text counts even when the NLU missed the entity.
    """
    entity = latest_entity(tracker, "order_id")
    text = latest_text(tracker)
    for candidate in (entity, find_order_id(text, bare=not text.startswith("/"))):
        if candidate and normalize_order_id(candidate):
            return candidate, normalize_order_id(candidate)
    if entity:  # something the NLU took for an id, but it isn't one (e.g. a cut-off "W")
        return entity, None
    raw = tracker.get_slot("order_id")
    return (str(raw), normalize_order_id(str(raw))) if raw else (None, None)


# --------------------------------------------------------------------------- formatting
def format_money(amount: Any) -> str:
    """``$1,234.50``; the shop's prices are US dollars."""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return str(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def format_options(options: Optional[Dict[str, Any]]) -> str:
    """``blue, M, cotton`` — values in catalog order; keys only where a value alone is unclear."""
    if not options:
        return ""
    parts = []
    for key, value in options.items():
        text = str(value)
        if text.lower() in ("yes", "no", "none") or text.lower() in ("high", "low", "standard"):
            text = f"{key} {text}"
        parts.append(text)
    return ", ".join(parts)


def format_item(item: Dict[str, Any]) -> str:
    """``T-Shirt (blue, M, cotton, crew neck)``."""
    options = format_options(item.get("options"))
    name = item.get("name") or "item"
    return f"{name} ({options})" if options else str(name)


def item_lines(items: Iterable[Dict[str, Any]]) -> List[str]:
    """One bullet per distinct item; duplicates shown as ``2 × ...``, with unit price."""
    counts: Counter = Counter()
    first: Dict[str, Dict[str, Any]] = {}
    for item in items:
        key = str(item.get("item_id") or format_item(item))
        counts[key] += 1
        first.setdefault(key, item)
    lines = []
    for key, item in first.items():
        qty = f"{counts[key]} × " if counts[key] > 1 else ""
        price = f" — {format_money(item['price'])}" if item.get("price") is not None else ""
        lines.append(f"• {qty}{format_item(item)}{price}")
    return lines


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


def order_total(order: Dict[str, Any]) -> float:
    """Sum of the item prices of an order."""
    return round(sum(float(i.get("price") or 0) for i in order.get("items") or []), 2)


def status_meaning(status: Optional[str]) -> str:
    """What a status means for the shopper next (empty if we don't know the status)."""
    return STATUS_NEXT.get((status or "").strip().lower(), "")


def order_label(order: Dict[str, Any]) -> str:
    """``#W1234567 – 3 items, pending``: the button title for picking an order."""
    n = len(order.get("items") or [])
    return f"{order.get('order_id')} – {n} item{'s' if n != 1 else ''}, {order.get('status')}"


def order_button(order: Dict[str, Any], intent: str = "order_status") -> Dict[str, str]:
    """A button whose payload sets the order id (JSON with double quotes)."""
    payload = json.dumps({"order_id": order.get("order_id")}, separators=(",", ":"))
    return {"title": order_label(order), "payload": f"/{intent}{payload}"}
