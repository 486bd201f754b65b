"""Reading the tracker: the latest message (parsed once), who the shopper is, which order.

Kept in one place so that no action skips the identification check or reads the message
differently from the others.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from rasa_sdk import Tracker

from actions.action_base import Dispatcher, Events
from actions.text_parsing import EXTERNAL_PREFIX, Turn, find_order_id, normalize_order_id

logger = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- the message
def latest_turn(tracker: Tracker) -> Turn:
    """The latest user message, parsed (text, intent, entities)."""
    return Turn.parse(tracker.latest_message or {})


def requested_order_id(tracker: Tracker) -> Tuple[Optional[str], Optional[str]]:
    """(as typed, canonical) order id: the latest message's entity first, then the slot.

    The message wins over the slot so that corrections ("no, I meant W1234567") take effect at
    once; an id written in the text counts even when the NLU missed the entity.
    """
    turn = latest_turn(tracker)
    entity = turn.entity("order_id")
    for candidate in (entity, find_order_id(turn.text, bare=not turn.is_payload)):
        if candidate and normalize_order_id(candidate):
            return candidate, normalize_order_id(candidate)
    if entity:  # something the NLU took for an id, but it isn't one (e.g. a cut-off "W")
        return entity, None
    raw = tracker.get_slot("order_id")
    return (str(raw), normalize_order_id(str(raw))) if raw else (None, None)


def actions_this_turn(tracker: Tracker) -> list[str]:
    """The actions run since the latest user message, oldest first."""
    names: list[str] = []
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            break
        if event.get("event") == "action" and event.get("name"):
            names.append(str(event["name"]))
    return names[::-1]


def is_reminder_turn(tracker: Tracker) -> bool:
    """Whether the latest "user" message is a reminder Rasa triggered (``EXTERNAL: …``,
    ``metadata.is_external``), not something the shopper said: a form must not read it as
    an answer."""
    message = tracker.latest_message or {}
    metadata = message.get("metadata")
    return bool(isinstance(metadata, dict) and metadata.get("is_external")) or str(
        message.get("text") or "").startswith(EXTERNAL_PREFIX)


def latest_metadata(tracker: Tracker) -> Dict[str, Any]:
    """The metadata of the latest user message: what the channel added (``client_address``)
    and what the page sent (``customer_token``)."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            metadata = event.get("metadata")
            return metadata if isinstance(metadata, dict) else {}
    return {}


def client_address(tracker: Tracker) -> Optional[str]:
    """The shopper's network address as the channel saw it (never the client's own claim)."""
    value = latest_metadata(tracker).get("client_address")
    return value[:128] if isinstance(value, str) and value else None


# --------------------------------------------------------------------------- identity
def current_customer(tracker: Tracker) -> Optional[str]:
    """The identified shopper's user id, or None: both slots must agree."""
    customer_id = tracker.get_slot("customer_id")
    if customer_id and tracker.get_slot("identified") is True:
        return str(customer_id)
    return None


def refuse_unidentified(dispatcher: Dispatcher) -> Events:
    """No customer data without identification, whatever ids the message carries."""
    dispatcher.utter_message(response="utter_ask_email")
    return []
