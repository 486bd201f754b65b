"""Order status, tracking and the order list, for the identified shopper only.

Each task is a plain coroutine so that ``action_resume_request`` (after identification) runs
exactly the same code as the direct action. Every task re-checks the identity: an order id in
a typed payload (``/order_status{"order_id": ...}``) identifies no one.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.change_plans import CHANGE_INTENTS
from actions.common import (
    DomainDict,
    Events,
    current_customer,
    format_money,
    format_when,
    humanize,
    item_lines,
    latest_entity,
    order_button,
    order_label,
    order_total,
    refuse_unidentified,
    requested_order_id,
    run_safely,
    shop_safe,
    status_meaning,
    utter,
)
from actions.identity import IDENTITY_SLOTS, other_identity_in_message
from actions.shop_client import NotFound, ShopClient, get_client

logger = logging.getLogger(__name__)

Task = Callable[[CollectingDispatcher, Tracker, DomainDict], Awaitable[Events]]
MAX_BUTTONS = 10
SIMPLE_STATUSES = {"pending", "processed", "delivered", "cancelled"}


# --------------------------------------------------------------------------- shared steps
def _ask_which_order(
    dispatcher: CollectingDispatcher, client: ShopClient, customer_id: str, intent: str
) -> Events:
    """No order id given: offer the shopper's orders as buttons."""
    orders = client.list_orders(customer_id)
    if not orders:
        dispatcher.utter_message(response="utter_no_orders")
        return []
    buttons = [order_button(o, intent) for o in orders[:MAX_BUTTONS]]
    dispatcher.utter_message(response="utter_ask_which_order", buttons=buttons)
    return []


def _load_order(
    dispatcher: CollectingDispatcher, tracker: Tracker, customer_id: str, intent: str
) -> Optional[Dict[str, Any]]:
    """The order the shopper means, or None after having said why (not found / which one)."""
    raw, order_id = requested_order_id(tracker)
    client = get_client()
    if raw is None:
        _ask_which_order(dispatcher, client, customer_id, intent)
        return None
    if order_id is None:
        dispatcher.utter_message(response="utter_order_not_found", order_id=raw)
        return None
    try:
        return client.get_order(order_id, customer_id)
    except NotFound:
        # unknown, or another customer's: the same answer, so nothing is revealed
        dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
        return None


def describe_order(order: Dict[str, Any]) -> str:
    """Status, items and what the status means next, in a few short lines."""
    status = order.get("status") or "unknown"
    if status in SIMPLE_STATUSES:
        lines = [f"Order {order.get('order_id')} is {status}."]
    else:  # "return requested", "pending (item modified)": not an adjective
        lines = [f"Order {order.get('order_id')} — status: {status}."]
    items = order.get("items") or []
    if items:
        lines.append("Items:")
        lines.extend(item_lines(items))
        lines.append(f"Total: {format_money(order_total(order))}")
    meaning = status_meaning(status)
    if meaning:
        lines.append(meaning)
    return "\n".join(lines)


def _latest_event(shipment: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The most recent tracking event (events carry ISO times; the list may be unsorted)."""
    events = [e for e in shipment.get("events") or [] if isinstance(e, dict)]
    if not events:
        return None
    return max(events, key=lambda e: str(e.get("time") or e.get("timestamp") or ""))


def describe_shipment(tracking_id: str, shipment: Dict[str, Any]) -> List[str]:
    """Carrier, latest event, estimated delivery and tracking number of one parcel."""
    carrier = shipment.get("carrier") or "the carrier"
    status = humanize(shipment.get("status"))
    head = f"Tracking number {tracking_id} ({carrier})"
    lines = [f"{head}: {status}." if status else f"{head}."]
    event = _latest_event(shipment)
    if event:
        when = format_when(event.get("time") or event.get("timestamp"))
        what, where = str(event.get("description") or ""), str(event.get("location") or "")
        detail = what if where and where in what else ", ".join(p for p in (what, where) if p)
        if detail:
            lines.append(f"Latest update{f' ({when})' if when else ''}: {detail}.")
    if shipment.get("delivered_at"):
        lines.append(f"Delivered on {format_when(shipment['delivered_at'])}.")
    elif shipment.get("estimated_delivery"):
        lines.append(f"Estimated delivery: {format_when(shipment['estimated_delivery'])}.")
    elif status == "cancelled":
        lines.append("This shipment was cancelled before pickup.")
    return lines


# --------------------------------------------------------------------------- tasks
async def order_status(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> Events:
    """Status, items and meaning of one order; buttons when no order was named."""
    customer_id = current_customer(tracker)
    if not customer_id:
        return refuse_unidentified(dispatcher)
    order = _load_order(dispatcher, tracker, customer_id, "order_status")
    if order is None:
        return [SlotSet("order_id", None)] if tracker.get_slot("order_id") else []
    dispatcher.utter_message(text=describe_order(order))
    # a finished flow: saying goodbye now brings the satisfaction survey (issue 9)
    return [SlotSet("order_id", order.get("order_id")), SlotSet("flow_completed", True)]


async def track_order(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> Events:
    """Where the parcels of one order are, from the logistics API."""
    customer_id = current_customer(tracker)
    if not customer_id:
        return refuse_unidentified(dispatcher)
    order = _load_order(dispatcher, tracker, customer_id, "track_order")
    if order is None:
        return [SlotSet("order_id", None)] if tracker.get_slot("order_id") else []
    order_id = order.get("order_id")
    status = str(order.get("status") or "").lower()
    events: Events = [SlotSet("order_id", order_id)]
    if status.startswith("pending"):
        if status == "pending":
            what_next = (
                "Until it ships you can still cancel it or change its address, payment "
                "method or items."
            )
        else:  # "pending (item modified)"
            what_next = "Its items were already changed once, so it can't be modified again."
        dispatcher.utter_message(
            text=f"Order {order_id} hasn't shipped yet, so there is no tracking number yet. "
            f"{what_next}"
        )
        return events
    if status == "cancelled":
        dispatcher.utter_message(
            text=f"Order {order_id} was cancelled, so there is no shipment to track."
        )
        return events

    tracking_ids = [
        str(t)
        for f in order.get("fulfillments") or []
        for t in (f.get("tracking_id") or [])
    ]
    if not tracking_ids:
        dispatcher.utter_message(
            text=f"Order {order_id} is {status}, but it has no tracking number yet. "
            "Please check again tomorrow."
        )
        return events

    client = get_client()
    lines = [f"Order {order_id} is {status}."]
    for tracking_id in tracking_ids:
        try:
            lines.extend(describe_shipment(tracking_id, client.get_shipment(tracking_id)))
        except NotFound:
            lines.append(f"Tracking number {tracking_id}: the carrier has no updates yet.")
    dispatcher.utter_message(text="\n".join(lines))
    return events


async def list_orders(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> Events:
    """The shopper's orders with their status, as buttons to open one."""
    customer_id = current_customer(tracker)
    if not customer_id:
        return refuse_unidentified(dispatcher)
    orders = get_client().list_orders(customer_id)
    if not orders:
        dispatcher.utter_message(response="utter_no_orders")
        return []
    lines = [f"You have {len(orders)} order{'s' if len(orders) != 1 else ''}:"]
    lines.extend(f"• {order_label(o)}" for o in orders)
    lines.append("Pick one to see its details.")
    buttons = [order_button(o) for o in orders[:MAX_BUTTONS]]
    dispatcher.utter_message(text="\n".join(lines), buttons=buttons)
    return []


TASKS: Dict[str, Task] = {
    "order_status": order_status,
    "track_order": track_order,
    "list_orders": list_orders,
}


# --------------------------------------------------------------------------- actions
class ActionOrderStatus(Action):
    """Tells the status of one order (or offers the shopper's orders to pick from)."""

    def name(self) -> str:
        return "action_order_status"

    @shop_safe
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        if (
            current_customer(tracker)
            and other_identity_in_message(tracker)
            and not latest_entity(tracker, "order_id")
        ):
            # an identified shopper's `inform` routes here: one conversation, one customer
            dispatcher.utter_message(
                response="utter_already_identified",
                customer_name=tracker.get_slot("customer_name") or "",
            )
            return [SlotSet(s, None) for s in IDENTITY_SLOTS if tracker.get_slot(s) is not None]
        return await order_status(dispatcher, tracker, domain)


class ActionTrackOrder(Action):
    """Tracks the shipment(s) of one order."""

    def name(self) -> str:
        return "action_track_order"

    @shop_safe
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        return await track_order(dispatcher, tracker, domain)


class ActionListOrders(Action):
    """Lists the shopper's orders."""

    def name(self) -> str:
        return "action_list_orders"

    @shop_safe
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        return await list_orders(dispatcher, tracker, domain)


class ActionResumeRequest(Action):
    """After identify_form: runs the task the shopper asked for before identifying."""

    def name(self) -> str:
        return "action_resume_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        pending = tracker.get_slot("pending_request")
        done: Events = [SlotSet("pending_request", None)] if pending else []
        if not current_customer(tracker):
            # not identified (locked, shop down, stopped): the form already said why
            return done
        if pending in CHANGE_INTENTS:  # the change_form takes over (rule on change_requested)
            return done + [
                SlotSet("change_type", CHANGE_INTENTS[pending]),
                SlotSet("change_requested", True),
            ]
        if not pending and tracker.get_slot("order_id"):
            pending = "order_status"  # an order id was typed before identifying
        task = TASKS.get(pending or "")
        if task is None:
            utter(dispatcher, domain, "utter_how_can_i_help")
            return done
        events = await run_safely(
            self.name(), lambda: task(dispatcher, tracker, domain), dispatcher, domain
        )
        return events + done
