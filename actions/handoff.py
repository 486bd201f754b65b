"""action_handoff: open a human-agent ticket with a summary the agent can act on.

The summary says who the shopper is (if identified), which orders were discussed, what was
asked (the last user messages with their intents) and what the assistant did, so the agent
does not have to ask again.

A handoff is a write: it carries an ``Idempotency-Key``. When its outcome is unknown (timeout,
lost reply, 5xx: the shop may have opened the ticket), the request is kept in the slot
``handoff_pending`` and the shopper's retry resends exactly that request (key and body; the shop
replays a key only for the same body), so a lost reply never opens a second ticket. The slot is
cleared once the shop confirms a ticket or definitely refuses the request.

Once a ticket is open, a colleague takes the conversation over from the agent desk (issue 19:
the channel pauses Rasa and relays the agent's messages as bot messages with ``agent_id`` in
their metadata). ``action_handoff`` also schedules a Rasa reminder (``EXTERNAL_handoff_wait``,
``HANDOFF_WAIT_SECONDS`` later, default 120); if by then no agent has joined,
``action_handoff_wait`` tells the shopper so, once per ticket, and that the ticket stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import ReminderScheduled, SlotSet

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction
from actions.feedback import sentiment_trend
from actions.identity import MAX_ATTEMPTS
from actions.shop_client import ShopError, ShopUnavailable, get_client, idempotency_key
from actions.shop_errors import RiskReview
from actions.text_parsing import find_order_id
from actions.tracker_helpers import current_customer, latest_turn

logger = logging.getLogger(__name__)

PENDING_SLOT = "handoff_pending"
TICKET_SLOT = "handoff_ticket"
WAIT_TOLD_SLOT = "handoff_wait_told"  # the ticket whose wait note was said (once per ticket)
WAIT_INTENT = "EXTERNAL_handoff_wait"
WAIT_ENTITY = "handoff_ticket"  # the reminder names its ticket: a stale one stays silent
DEFAULT_WAIT_SECONDS = 120.0
RECENT_MESSAGES = 6
# Actions worth telling the agent about (what the assistant did).
REPORTED_ACTIONS = {
    "identify_form": "asked the shopper to identify",
    "action_order_status": "showed an order's status",
    "action_track_order": "showed shipment tracking",
    "action_list_orders": "listed the shopper's orders",
    "action_product_info": "answered a product question",
    "action_fallback": "could not understand a message",
    "change_form": "collected the details of an order change",
}
REASONS = {
    "request_human": "shopper asked for a human agent",
    "cancel_order": "shopper wants to cancel an order",
    "return_order": "shopper wants to return items",
    "exchange_order": "shopper wants to exchange items",
    "modify_order": "shopper wants to modify an order",
    "change_address": "shopper wants to change an address",
    "change_payment": "shopper wants to change an order's payment method",
    "out_of_scope": "request outside what the assistant can do",
}


def wait_seconds(env: Optional[Mapping[str, str]] = None) -> float:
    """``HANDOFF_WAIT_SECONDS``: how long a ticket waits for an agent before the shopper is told
    that no colleague is free yet. A positive number; unset gives 120, anything else is warned
    about and gives 120 too."""
    raw = (os.environ if env is None else env).get("HANDOFF_WAIT_SECONDS")
    if raw is None or not raw.strip():
        return DEFAULT_WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        logger.warning("HANDOFF_WAIT_SECONDS=%r is not a positive number of seconds: using %g",
                       raw, DEFAULT_WAIT_SECONDS)
        return DEFAULT_WAIT_SECONDS
    return value


HANDOFF_WAIT_SECONDS = wait_seconds()  # read once, when the action server loads the actions


def wait_reminder(ticket_id: str, now: Optional[datetime] = None) -> Dict[str, Any]:
    """The reminder that asks ``action_handoff_wait`` whether an agent joined for this ticket.

    Its name is the job id in Rasa's scheduler, which is shared by every conversation: one name
    per ticket, so a second reminder for the same ticket (Rasa re-running the action, a replayed
    ticket) replaces the first instead of speaking twice. ``kill_on_user_message=False``: the
    shopper chatting with the assistant meanwhile does not cancel it.
    """
    now = now or datetime.now(timezone.utc)
    return ReminderScheduled(
        WAIT_INTENT,
        trigger_date_time=now + timedelta(seconds=HANDOFF_WAIT_SECONDS),
        entities=[{"entity": WAIT_ENTITY, "value": ticket_id}],
        name=f"handoff_wait_{ticket_id}",
        kill_on_user_message=False,
    )


def is_external(event: Dict[str, Any]) -> bool:
    """A user event Rasa made from a reminder or a trigger (nobody typed it)."""
    if (event.get("metadata") or {}).get("is_external"):
        return True
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
    return str(intent).startswith("EXTERNAL_")


def _user_turns(tracker: Tracker) -> List[Dict[str, Any]]:
    """What the shopper wrote (not the reminders' external events)."""
    return [e for e in tracker.events if e.get("event") == "user" and not is_external(e)]


def _orders_discussed(tracker: Tracker) -> List[str]:
    found: List[str] = []
    for event in _user_turns(tracker):
        for entity in (event.get("parse_data") or {}).get("entities") or []:
            if entity.get("entity") == "order_id":
                found.append(find_order_id(str(entity.get("value"))) or str(entity.get("value")))
        from_text = find_order_id(event.get("text"))
        if from_text:
            found.append(from_text)
    if tracker.get_slot("order_id"):
        found.append(str(tracker.get_slot("order_id")))
    return list(dict.fromkeys(found))  # unique, first mention first


def _reason(tracker: Tracker) -> str:
    intents = [
        ((e.get("parse_data") or {}).get("intent") or {}).get("name") for e in _user_turns(tracker)
    ]
    for intent in reversed(intents):
        if intent in REASONS and intent != "request_human":
            return REASONS[intent]
    if float(tracker.get_slot("id_attempts") or 0) >= MAX_ATTEMPTS:
        return "shopper could not be identified (3 failed attempts)"
    return REASONS.get(latest_turn(tracker).intent or "", "shopper asked for a human agent")


def build_summary(tracker: Tracker) -> str:
    """A few plain lines for the agent: who, which orders, what was asked and done."""
    customer_id = current_customer(tracker)
    if customer_id:
        who = f"{tracker.get_slot('customer_name') or ''} (user id {customer_id})".strip()
    else:
        who = "not identified"
    lines = [f"Reason: {_reason(tracker)}.", f"Customer: {who}."]
    orders = _orders_discussed(tracker)
    if orders:
        lines.append(f"Orders discussed: {', '.join(orders)}.")
    if tracker.get_slot("product"):
        lines.append(f"Product discussed: {tracker.get_slot('product')}.")
    asked = []
    for event in _user_turns(tracker)[-RECENT_MESSAGES:]:
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or "?"
        text = " ".join(str(event.get("text") or "").split())[:200]
        asked.append(f"- [{intent}] {text}")
    if asked:
        lines.append("Last messages:")
        lines.extend(asked)
    done = [
        REPORTED_ACTIONS[e["name"]]
        for e in tracker.events
        if e.get("event") == "action" and e.get("name") in REPORTED_ACTIONS
    ]
    if done:
        lines.append(f"Assistant did: {'; '.join(dict.fromkeys(done))}.")
    changes = tracker.get_slot("changes_done") or []
    if changes:
        lines.append(f"Changes made: {'; '.join(changes)}.")
    trend = sentiment_trend(tracker)
    if trend:
        lines.append(trend)
    if tracker.get_slot("change_type"):
        order = tracker.get_slot("change_order_id") or "no order chosen yet"
        lines.append(
            f"Change in progress (not done): {tracker.get_slot('change_type')} ({order})."
        )
    return "\n".join(lines)


def _idem_key(tracker: Tracker) -> str:
    """Same conversation + same user turn = same ticket, even if Rasa re-runs the action."""
    turns = _user_turns(tracker)
    last: Optional[Dict[str, Any]] = turns[-1] if turns else None
    stamp = (last or {}).get("timestamp") or len(turns)
    return idempotency_key("handoff", tracker.sender_id, stamp, (last or {}).get("text"))


def _pending_request(tracker: Tracker) -> Optional[Dict[str, Any]]:
    """The unconfirmed handoff write of this conversation (``handoff_pending``), if any."""
    raw = tracker.get_slot(PENDING_SLOT)
    if not raw:
        return None
    try:
        request = json.loads(raw)
    except (TypeError, ValueError):
        logger.warning("ignoring an unreadable %s slot", PENDING_SLOT)
        return None
    if not isinstance(request, dict) or not isinstance(request.get("idem_key"), str):
        return None
    if not isinstance(request.get("summary"), str):
        return None
    return request


def _new_request(tracker: Tracker) -> Dict[str, Any]:
    return {
        "summary": build_summary(tracker),
        "customer_id": current_customer(tracker),
        "conversation_id": tracker.sender_id,
        "reason": _reason(tracker),
        "idem_key": _idem_key(tracker),
    }


def _outcome_unknown(exc: Exception) -> bool:
    """Whether the shop may have opened the ticket although we got no answer.

    Timeouts, refused connections, 5xx and unreadable answers: maybe. A 4xx refusal: no ticket
    (and the shop would replay that refusal for the same key), except a concurrent use of the
    key, which the shop asks to retry.
    """
    if isinstance(exc, ShopError):
        return isinstance(exc, ShopUnavailable) or exc.code == "idempotency_conflict"
    return True


class ActionHandoff(NamedAction):
    """Opens a ticket for a human agent and gives the shopper its number."""

    action_name = "action_handoff"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        try:
            # a retry after an unanswered write resends that write: the shop replays its ticket
            request = _pending_request(tracker) or _new_request(tracker)
        except Exception:  # noqa: BLE001 - never a traceback to the shopper
            logger.exception("handoff summary failed")
            dispatcher.utter_message(response="utter_handoff_failed")
            return []
        try:
            ticket = await asyncio.to_thread(  # blocking HTTP off the event loop
                get_client().create_handoff,
                summary=request["summary"],
                customer_id=request.get("customer_id"),
                conversation_id=request.get("conversation_id") or tracker.sender_id,
                reason=request.get("reason"),
                idem_key=request["idem_key"],
            )
        except Exception as exc:  # noqa: BLE001 - never a traceback to the shopper
            if isinstance(exc, ShopError):
                logger.warning("handoff failed: %s", exc)
            else:
                logger.exception("handoff failed")
            dispatcher.utter_message(response="utter_handoff_failed")
            pending = json.dumps(request) if _outcome_unknown(exc) else None
            if pending == tracker.get_slot(PENDING_SLOT):
                return []
            return [SlotSet(PENDING_SLOT, pending)]
        ticket_id = str(ticket["id"])
        dispatcher.utter_message(response="utter_handoff_created", handoff_ticket=ticket_id)
        return [
            SlotSet(TICKET_SLOT, ticket_id),
            SlotSet(PENDING_SLOT, None),
            wait_reminder(ticket_id),
        ]


def open_review_ticket(tracker: Tracker, change: str, review: RiskReview) -> Events:
    """A flagged change (the shop's risk control, docs/risk.md): a ticket for the colleague
    who reviews it, with the conversation's summary, the change and the shop's reasons (for
    the agent only). Raises ShopError when no ticket could be opened."""
    reasons = "; ".join(f"{r.get('message') or r.get('code')} ({r.get('points')} points)"
                        for r in review.reasons) or "see the decision"
    summary = "\n".join([
        f"RISK REVIEW: the shopper confirmed \"{change}\"; the shop held it for review "
        f"(decision {review.decision_id or '?'}, score {review.score}). Approve or reject it "
        "in the back office (POST /risk/decisions/{id}/approve|reject).",
        f"Reasons: {reasons}.",
        build_summary(tracker),
    ])
    ticket = get_client().create_handoff(
        summary=summary, customer_id=current_customer(tracker),
        conversation_id=tracker.sender_id, reason="a change needs a review (risk control)",
        idem_key=idempotency_key("risk-review", tracker.sender_id, review.decision_id or change),
    )
    ticket_id = str(ticket["id"])
    return [SlotSet(TICKET_SLOT, ticket_id), SlotSet(PENDING_SLOT, None),
            wait_reminder(ticket_id)]


def reminded_ticket(tracker: Tracker) -> Optional[str]:
    """The ticket named by the reminder that triggered this turn (its entity), if any."""
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == WAIT_ENTITY and entity.get("value"):
            return str(entity["value"])
    return None


def agent_joined(tracker: Tracker, ticket_id: str) -> bool:
    """Whether an agent took the conversation over since ``ticket_id`` was opened.

    The desk pauses the conversation (event ``pause``) and writes as the bot with ``agent_id`` in
    the message's metadata; either one after the ticket (the slot event that set it, else the
    last ``action_handoff``) counts, even if the agent has handed back since.
    """
    events = list(tracker.events or [])
    start = None
    for index, event in enumerate(events):
        if (event.get("event") == "slot" and event.get("name") == TICKET_SLOT
                and str(event.get("value")) == ticket_id):
            start = index
            break
    if start is None:
        handoffs = [i for i, e in enumerate(events)
                    if e.get("event") == "action" and e.get("name") == ActionHandoff.action_name]
        start = handoffs[-1] if handoffs else 0
    for event in events[start:]:
        if event.get("event") == "pause":
            return True
        if event.get("event") == "bot" and "agent_id" in (event.get("metadata") or {}):
            return True
    return False


class ActionHandoffWait(NamedAction):
    """``HANDOFF_WAIT_SECONDS`` after a ticket: if no agent has joined, say so, once per ticket.

    Silent when an agent joined, when there is no ticket, when the reminder is about an older
    ticket than the conversation's current one, and when this ticket's note was already said.
    """

    action_name = "action_handoff_wait"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        ticket_id = tracker.get_slot(TICKET_SLOT)
        if not ticket_id:
            return []
        ticket_id = str(ticket_id)
        reminded = reminded_ticket(tracker)
        if reminded is not None and reminded != ticket_id:
            logger.info("handoff wait reminder for %s: the conversation's ticket is %s now",
                        reminded, ticket_id)
            return []
        if tracker.get_slot(WAIT_TOLD_SLOT) == ticket_id or agent_joined(tracker, ticket_id):
            return []
        dispatcher.utter_message(response="utter_handoff_waiting", handoff_ticket=ticket_id)
        return [SlotSet(WAIT_TOLD_SLOT, ticket_id)]
