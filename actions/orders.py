"""Order status, tracking and the order list, for the identified shopper only.

Each task is a plain coroutine so that ``action_resume_request`` (after identification) runs
exactly the same code as the direct action. Every task re-checks the identity: an order id in
a typed payload (``/order_status{"order_id": ...}``) identifies no one.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Dict, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction, run_safely, shop_safe
from actions.change_plans import CHANGE_INTENTS
from actions.identity import IDENTITY_SLOTS, other_identity_in_message
from actions.shop_client import NotFound, ShopClient, get_client
from actions.shop_records import Order, Shipment
from actions.text_parsing import refers_to_latest_order
from actions.tracker_helpers import (
    current_customer,
    latest_turn,
    refuse_unidentified,
    requested_order_id,
)
from actions.wording import describe_order, format_when, humanize, order_button, order_label, plural

logger = logging.getLogger(__name__)

Task = Callable[[Dispatcher, Tracker], Awaitable[Events]]
MAX_BUTTONS = 10


# --------------------------------------------------------------------------- shared steps
def _ask_which_order(
    dispatcher: Dispatcher, client: ShopClient, customer_id: str, intent: str
) -> Events:
    """No order id given: offer the shopper's orders as buttons."""
    orders = client.list_orders(customer_id)
    if not orders:
        dispatcher.utter_message(response="utter_no_orders")
        return []
    buttons = [order_button(o, intent) for o in orders[:MAX_BUTTONS]]
    dispatcher.utter_message(response="utter_ask_which_order", buttons=buttons)
    return []


def _load_order(dispatcher: Dispatcher, tracker: Tracker, intent: str
                ) -> Tuple[Optional[Order], Events]:
    """The identified shopper's order they mean; or None, after having said why (who are you,
    not found, which one), with the events to return then."""
    customer_id = current_customer(tracker)
    if not customer_id:  # the order id stays: it is shown once the shopper is identified
        return None, refuse_unidentified(dispatcher)
    raw, order_id = requested_order_id(tracker)
    client = get_client()
    forget = [SlotSet("order_id", None)] if tracker.get_slot("order_id") else []
    if raw is None and refers_to_latest_order(latest_turn(tracker).words):
        orders = client.list_orders(customer_id)  # "where is my last order"
        if orders:
            return orders[-1], []
    if raw is None:
        return None, _ask_which_order(dispatcher, client, customer_id, intent) + forget
    if order_id is None:
        dispatcher.utter_message(response="utter_order_not_found", order_id=raw)
        return None, forget
    try:
        return client.get_order(order_id, customer_id), []
    except NotFound:
        # unknown, or another customer's: the same answer, so nothing is revealed
        dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
        return None, forget


def describe_shipment(tracking_id: str, shipment: Shipment) -> List[str]:
    """Carrier, latest event, estimated delivery and tracking number of one parcel."""
    carrier = shipment.carrier or "the carrier"
    status = humanize(shipment.status)
    head = f"Tracking number {tracking_id} ({carrier})"
    lines = [f"{head}: {status}." if status else f"{head}."]
    event = shipment.latest_event
    if event:
        when = format_when(event.time)
        what, where = event.description, event.location
        detail = what if where and where in what else ", ".join(p for p in (what, where) if p)
        if detail:
            lines.append(f"Latest update{f' ({when})' if when else ''}: {detail}.")
    if shipment.delivered_at:
        lines.append(f"Delivered on {format_when(shipment.delivered_at)}.")
    elif shipment.estimated_delivery:
        lines.append(f"Estimated delivery: {format_when(shipment.estimated_delivery)}.")
    elif status == "cancelled":
        lines.append("This shipment was cancelled before pickup.")
    return lines


# --------------------------------------------------------------------------- tasks
async def order_status(dispatcher: Dispatcher, tracker: Tracker) -> Events:
    """Status, items and meaning of one order; buttons when no order was named."""
    order, events = _load_order(dispatcher, tracker, "order_status")
    if order is None:
        return events
    dispatcher.utter_message(text=describe_order(order))
    # a finished flow: saying goodbye now brings the satisfaction survey (issue 9)
    return [SlotSet("order_id", order.order_id), SlotSet("flow_completed", True)]


async def track_order(dispatcher: Dispatcher, tracker: Tracker) -> Events:
    """Where the parcels of one order are, from the logistics API."""
    order, events = _load_order(dispatcher, tracker, "track_order")
    if order is None:
        return events
    order_id, status = order.order_id, order.status
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

    tracking_ids = order.tracking_ids
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
            lines.extend(describe_shipment(
                tracking_id, client.get_shipment(tracking_id, order.user_id)))
        except NotFound:
            lines.append(f"Tracking number {tracking_id}: the carrier has no updates yet.")
    dispatcher.utter_message(text="\n".join(lines))
    return events


async def list_orders(dispatcher: Dispatcher, tracker: Tracker) -> Events:
    """The shopper's orders with their status, as buttons to open one."""
    customer_id = current_customer(tracker)
    if not customer_id:
        return refuse_unidentified(dispatcher)
    orders = get_client().list_orders(customer_id)
    if not orders:
        dispatcher.utter_message(response="utter_no_orders")
        return []
    lines = [f"You have {plural(len(orders), 'order')}:"]
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
class ActionOrderStatus(NamedAction):
    """Tells the status of one order (or offers the shopper's orders to pick from)."""

    action_name = "action_order_status"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        if (
            current_customer(tracker)
            and other_identity_in_message(tracker)
            and not latest_turn(tracker).entity("order_id")
        ):
            # an identified shopper's `inform` routes here: one conversation, one customer
            dispatcher.utter_message(
                response="utter_already_identified",
                customer_name=tracker.get_slot("customer_name") or "",
            )
            return [SlotSet(s, None) for s in IDENTITY_SLOTS if tracker.get_slot(s) is not None]
        return await order_status(dispatcher, tracker)


class ActionTrackOrder(NamedAction):
    """Tracks the shipment(s) of one order."""

    action_name = "action_track_order"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        return await track_order(dispatcher, tracker)


class ActionListOrders(NamedAction):
    """Lists the shopper's orders."""

    action_name = "action_list_orders"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        return await list_orders(dispatcher, tracker)


class ActionResumeRequest(NamedAction):
    """After identify_form: runs the task the shopper asked for before identifying."""

    action_name = "action_resume_request"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        pending = tracker.get_slot("pending_request")
        done: Events = [SlotSet("pending_request", None)] if pending else []
        forget_message: Events = (
            [SlotSet("pending_message", None)] if tracker.get_slot("pending_message") else [])
        if not current_customer(tracker):
            # not identified (locked, shop down, stopped): the form already said why
            return done + forget_message
        if pending in CHANGE_INTENTS:  # the change_form takes over (rule on change_requested);
            # it reads the request from pending_message
            return done + [
                SlotSet("change_type", CHANGE_INTENTS[pending]),
                SlotSet("change_requested", True),
            ]
        done += forget_message
        if not pending and tracker.get_slot("order_id"):
            pending = "order_status"  # an order id was typed before identifying
        task = TASKS.get(pending or "")
        if task is None:
            dispatcher.utter_message(response="utter_how_can_i_help")
            return done
        events = await run_safely(self.name(), lambda: task(dispatcher, tracker), dispatcher)
        return events + done
