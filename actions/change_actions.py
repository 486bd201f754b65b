"""change_form's questions (buttons from the shop's data), its read-back, and the write.

- ``action_ask_change_confirmed`` reads the whole change back and stores its fingerprint in
  ``change_readback``; a "yes" counts only while the change still has that fingerprint.
- ``action_submit_change`` runs when the form ends: it writes only if the shopper said yes
  to exactly this change, then says what happens next.
- a write that got no answer (timeout, shop down: it may have happened) is kept exactly as sent
  (``change_pending``: path, body, idempotency key) and ``action_retry_change`` resends it on
  the shopper's "yes": the shop answers a repeated key with the first result, so a change is
  never done twice and never re-derived from a shop state that the lost write may have moved.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, List, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction, run_safely, shop_safe
from actions.change_plans import CHANGE_INTENTS, CHANGE_SLOTS, PLANS, ChangeContext, ChangePlan
from actions.changes import FIELD_TITLES, MAX_BUTTONS, slot_values, variant_button
from actions.handoff import open_review_ticket
from actions.shop_client import (
    Conflict,
    Invalid,
    NotFound,
    RiskReview,
    ShopError,
    ShopUnavailable,
    get_client,
    idempotency_key,
)
from actions.shop_records import Item, Variant
from actions.text_parsing import find_order_id
from actions.tracker_helpers import current_customer, refuse_unidentified, requested_order_id
from actions.turn_shop import TurnShop, forget_turn, turn_shop
from actions.wording import (
    button,
    capitalized,
    describe_item,
    describe_method,
    next_order_note,
    order_label,
)

logger = logging.getLogger(__name__)


def option_summary(item: Item, variants: List[Variant]) -> str:
    """``Available options — color: blue, red; size: M, L.`` — values the shopper can choose."""
    parts = []
    for key, current in item.options.items():
        values = sorted({str(v.options.get(key)) for v in variants} - {str(current)})
        if values:
            parts.append(f"{key}: {', '.join(values)}")
    return ("Available options — " + "; ".join(parts) + ".") if parts else ""


# --------------------------------------------------------------------------- questions
class _AskAction(NamedAction):
    """Base of the questions that need shop data (buttons of orders, items, methods)."""

    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        customer_id = current_customer(tracker)
        if not customer_id:
            return refuse_unidentified(dispatcher)
        slots = slot_values(tracker)
        plan = PLANS.get(slots.get("change_type") or "")
        if plan is None:
            return []
        shop = turn_shop(tracker, customer_id)
        return self.ask(dispatcher, shop, plan, shop.context(slots))

    @abstractmethod
    def ask(self, dispatcher: Dispatcher, shop: TurnShop, plan: ChangePlan,
            ctx: ChangeContext) -> Events:
        """Utter the question (with buttons); return events (e.g. the read-back fingerprint)."""


class ActionAskChangeOrderId(_AskAction):
    """Which order: buttons of the shopper's orders this change is possible for."""

    slot = "change_order_id"

    def ask(self, dispatcher, shop, plan, ctx) -> Events:  # type: ignore[override]
        orders = shop.eligible_orders(plan)[:MAX_BUTTONS]
        buttons = [button(order_label(o), "inform", order_id=o.order_id) for o in orders]
        if plan.change_type == "address":
            buttons.append(button("My account's default address", "inform",
                                  change_target="account"))
        dispatcher.utter_message(response=f"utter_ask_order_for_{plan.change_type}",
                                 buttons=buttons)
        return []


class ActionAskChangeItems(_AskAction):
    """Which items: one button per item of the order, and "all items"."""

    slot = "change_items"

    def ask(self, dispatcher, shop, plan, ctx) -> Events:  # type: ignore[override]
        items = ctx.order.items if ctx.order else ()
        buttons = [button(describe_item(i), "inform", item_id=i.item_id) for i in items]
        if len(items) > 1:
            buttons.append(button("All items", "inform", item_id="all"))
        dispatcher.utter_message(
            response=f"utter_ask_items_for_{plan.change_type}",
            order_id=plan.order_id(ctx),
            items="\n".join(f"• {describe_item(i)}" for i in items),
            buttons=buttons[: MAX_BUTTONS + 1],
        )
        return []


class ActionAskChangeNewItems(_AskAction):
    """The new option for the next item: its available alternatives."""

    slot = "change_new_items"

    def ask(self, dispatcher, shop, plan, ctx) -> Events:  # type: ignore[override]
        old_ids = ctx.slots.get("change_items") or []
        done = ctx.slots.get("change_new_items") or []
        item = ctx.item(old_ids[len(done)]) if len(done) < len(old_ids) else None
        if item is None:
            return []
        if ctx.slots.get("change_offer"):
            return []  # the closest variant was just offered: that offer is the question
        product = ctx.products.get(item.product_id)
        variants = [v for v in (product.variants if product else ())
                    if v.available and v.item_id != item.item_id]
        if not variants:
            dispatcher.utter_message(response="utter_no_other_variant", item=describe_item(item))
            rest = [i for i in old_ids if i != item.item_id]
            return [SlotSet("change_items", rest or None)]
        dispatcher.utter_message(
            response="utter_ask_new_variant",
            item=describe_item(item),
            options=option_summary(item, variants),
            buttons=[variant_button(item, v) for v in variants] if len(variants) <= MAX_BUTTONS
            else [],
        )
        return []


class ActionAskPaymentMethodId(_AskAction):
    """Which payment method: the ones the rules allow for this change."""

    slot = "payment_method_id"

    def ask(self, dispatcher, shop, plan, ctx) -> Events:  # type: ignore[override]
        buttons = [button(capitalized(describe_method(m)), "inform", payment_method_id=m.id)
                   for m in plan.payment_choices(ctx)]
        response = f"utter_ask_payment_for_{plan.change_type}"
        dispatcher.utter_message(response=response, buttons=buttons)
        return []


class ActionAskChangeConfirmed(_AskAction):
    """The read-back: the whole change, then yes/no. Remembers what was read back."""

    slot = "change_confirmed"

    def ask(self, dispatcher, shop, plan, ctx) -> Events:  # type: ignore[override]
        dispatcher.utter_message(
            text=plan.readback(ctx),
            buttons=[button("Yes, go ahead", "affirm"), button("No", "deny")],
        )
        return [SlotSet("change_readback", plan.fingerprint(ctx))]


class ActionAskChangeField(_AskAction):
    """After a "no": nothing changed; what should be different?"""

    slot = "change_field"

    def ask(self, dispatcher, shop, plan, ctx) -> Events:  # type: ignore[override]
        fields = [s for s in plan.required_slots() if s in FIELD_TITLES]
        buttons = [button(FIELD_TITLES[s], "inform", change_field=s) for s in fields]
        buttons.append(button("Cancel this request", "stop"))
        dispatcher.utter_message(response="utter_ask_change_field", buttons=buttons)
        return []


# --------------------------------------------------------------------------- doing it
def forget_change() -> Events:
    """Every slot of the change cleared: nothing of it may leak into the next one."""
    return [SlotSet(k, None) for k in CHANGE_SLOTS] + [SlotSet("change_requested", False)]


def next_in_queue(dispatcher: Dispatcher, tracker: Tracker) -> Events:
    """The next order of a request that named several ("cancel W1 and W2"): change_form
    starts again for it (a follow-up action), read back and confirmed on its own."""
    queue = list(tracker.get_slot("change_queue") or [])
    if not queue or not current_customer(tracker):
        return []
    head = queue.pop(0)
    change_type = CHANGE_INTENTS.get(str((head.get("intent") or {}).get("name")))
    order_id = find_order_id(str(head.get("text")))
    if change_type is None or order_id is None:
        return [SlotSet("change_queue", queue or None)]
    dispatcher.utter_message(text=next_order_note(order_id))
    # the form starts again at once (a rule can't tell this end of the form from the others)
    return [SlotSet("change_queue", queue or None), SlotSet("pending_message", head),
            SlotSet("change_type", change_type), SlotSet("change_requested", True),
            FollowupAction("change_form")]


class ActionSubmitChange(NamedAction):
    """After change_form: the change, if and only if "yes" was said to exactly this change."""

    action_name = "action_submit_change"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        slots = slot_values(tracker)
        customer_id = current_customer(tracker)
        plan = PLANS.get(slots.get("change_type") or "")
        if slots.get("change_confirmed") is not True or plan is None or not customer_id:
            return forget_change() + next_in_queue(dispatcher, tracker)
        events = await run_safely(
            self.name(), lambda: self._submit(dispatcher, tracker, plan, customer_id, slots),
            dispatcher,
        )
        if outcome_unknown(events):
            return events + forget_change()  # the retry comes first; the queue after it
        return events + forget_change() + next_in_queue(dispatcher, tracker)

    @staticmethod
    async def _submit(dispatcher: Dispatcher, tracker: Tracker, plan: ChangePlan,
                      customer_id: str, slots: dict) -> Events:
        shop = turn_shop(tracker, customer_id)
        ctx = shop.context(slots)
        fingerprint = plan.fingerprint(ctx)
        if fingerprint != slots.get("change_readback"):
            dispatcher.utter_message(response="utter_change_not_confirmed")
            return []
        key = idempotency_key(tracker.sender_id, fingerprint, _confirm_time(tracker))
        order_id = ctx.order.order_id if ctx.order else None
        outcome = {"done": plan.done(ctx), "order_id": order_id,
                   "record": f"{plan.change_type} {order_id or 'account'}"}
        try:
            plan.execute(shop.client, ctx, key)
        except RiskReview as review:  # held by the shop's risk control: a colleague decides
            return under_review(dispatcher, tracker, outcome["record"], review)
        except (Conflict, Invalid) as exc:
            dispatcher.utter_message(response="utter_change_refused", reason=_sentence(str(exc)))
            return []
        except ShopUnavailable as exc:
            write = getattr(exc, "pending_write", None)
            if write is None:
                raise
            dispatcher.utter_message(response="utter_change_outcome_unknown")
            return [SlotSet("change_pending", {**outcome, "write": write}),
                    SlotSet("change_outcome_unknown", True)]
        finally:
            forget_turn(tracker)
        return change_done(dispatcher, tracker, outcome)


def under_review(dispatcher: Dispatcher, tracker: Tracker, change: str,
                 review: RiskReview) -> Events:
    """The shop held a confirmed change for review: nothing was changed; a ticket with the
    reasons goes to a colleague, and the shopper is told so plainly (never the reasons)."""
    logger.info("change %s held for review: decision %s, score %s", change,
                review.decision_id, review.score)
    try:
        events = open_review_ticket(tracker, change, review)
    except ShopError as exc:
        logger.warning("review ticket not opened: %s", exc)
        dispatcher.utter_message(response="utter_change_under_review_no_ticket")
        return []
    ticket = next(e["value"] for e in events if e.get("name") == "handoff_ticket")
    dispatcher.utter_message(response="utter_change_under_review", handoff_ticket=ticket)
    return events


def outcome_unknown(events: Events) -> bool:
    """Whether a write of this turn got no answer (the shopper's "yes" resends it first)."""
    return SlotSet("change_outcome_unknown", True) in events


def change_done(dispatcher: Dispatcher, tracker: Tracker, outcome: dict) -> Events:
    """What a finished write says and records (``outcome``: done text, order id, record)."""
    dispatcher.utter_message(text=outcome["done"])
    if not tracker.get_slot("change_queue"):  # else the next order follows at once
        dispatcher.utter_message(response="utter_anything_else")
    done = list(tracker.get_slot("changes_done") or []) + [outcome["record"]]
    events = [SlotSet("changes_done", done), SlotSet("flow_completed", True)]
    order_id = outcome.get("order_id")
    return events + ([SlotSet("order_id", order_id)] if order_id else [])


class ActionRetryChange(NamedAction):
    """"yes" after a write that got no answer: the same request again (key and body)."""

    action_name = "action_retry_change"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        pending = tracker.get_slot("change_pending")
        cleared = [SlotSet("change_pending", None), SlotSet("change_outcome_unknown", False)]
        if not isinstance(pending, dict) or not current_customer(tracker):
            return cleared
        if pending["write"].get("customer_id") != current_customer(tracker):
            return cleared  # written for another identification: never resent
        async def resend() -> Events:
            try:
                get_client().replay_write(pending["write"])
            except (Conflict, Invalid) as exc:
                dispatcher.utter_message(response="utter_change_refused",
                                         reason=_sentence(str(exc)))
                return cleared
            except ShopUnavailable:
                dispatcher.utter_message(response="utter_change_still_unknown")
                return [SlotSet("change_outcome_unknown", True)]  # the next "yes" again
            return cleared + change_done(dispatcher, tracker, pending)

        events = await run_safely(self.name(), resend, dispatcher)
        if outcome_unknown(events):
            return events
        return events + next_in_queue(dispatcher, tracker)


class ActionStopChange(NamedAction):
    """"stop" inside a change: nothing changed, everything forgotten."""

    action_name = "action_stop_change"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        dispatcher.utter_message(response="utter_change_stopped")
        return forget_change() + [SlotSet("pending_request", None),
                                  SlotSet("change_queue", None), SlotSet("pending_message", None)]


# what "help me change my order" may mean, as buttons (change intent, title)
CHANGE_KINDS: Tuple[Tuple[str, str], ...] = (
    ("cancel_order", "Cancel it"),
    ("modify_order", "Change items (size, colour, ...)"),
    ("change_address", "Change the shipping address"),
    ("change_payment", "Change the payment method"),
    ("return_order", "Return items"),
    ("exchange_order", "Exchange items"),
)


class ActionAskChangeKind(NamedAction):
    """"I need to change my order": which change, as buttons — only those the order allows
    when the shopper is identified and names (or just looked at) an order."""

    action_name = "action_ask_change_kind"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        _, order_id = requested_order_id(tracker)
        customer_id = current_customer(tracker)
        kinds = list(CHANGE_KINDS)
        if order_id and customer_id:
            try:
                order = turn_shop(tracker, customer_id).order(order_id)
                kinds = [(intent, title) for intent, title in kinds
                         if PLANS[CHANGE_INTENTS[intent]].eligible(order)] or kinds
            except NotFound:
                order_id = None
        entities = {"order_id": order_id} if order_id else {}
        dispatcher.utter_message(response="utter_ask_change_kind", buttons=[
            button(title, intent, **entities) for intent, title in kinds])
        return []


def _confirm_time(tracker: Tracker) -> Any:
    """Timestamp of the shopper's "yes": a retry of this turn reuses the idempotency key."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("timestamp")
    return None


def _sentence(message: str) -> str:
    text = message.strip().rstrip(".")
    return (text[:1].upper() + text[1:]) if text else "The shop refused the change"


__all__: Tuple[str, ...] = (
    "ActionAskChangeOrderId",
    "ActionAskChangeItems",
    "ActionAskChangeNewItems",
    "ActionAskPaymentMethodId",
    "ActionAskChangeConfirmed",
    "ActionAskChangeField",
    "ActionSubmitChange",
    "ActionRetryChange",
    "ActionStopChange",
    "ActionAskChangeKind",
)
