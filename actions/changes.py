"""validate_change_form: what the shopper's answer means and which slot of the change comes next.

Why one form for all changes: the safety-critical part — identification, read-back, the
explicit "yes", the fingerprint that ties the "yes" to what was read back, and the idempotent
write — is then written once (the questions and the write: actions/change_actions.py). What
differs per change lives in actions/change_plans.py.

Each turn, the message is parsed once into a ``Turn`` (actions/text_parsing.py) and read by the
pure functions ``prefill`` and ``interpret`` below, which turn it into shop values
(actions/resolvers.py) without Rasa; ``ValidateChangeForm`` only loads the shop's records once
(``actions.turn_shop``) and turns the result into slot events. Typed ``/intent{...}`` payloads can
set at most the inputs; they never skip the read-back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecutionRejected, SlotSet
from rasa_sdk.forms import REQUESTED_SLOT, FormValidationAction

from actions import resolvers
from actions.action_base import Dispatcher, DomainDict, Events
from actions.change_plans import CHANGE_INTENTS, CHANGE_SLOTS, PLANS, ChangeContext, ChangePlan
from actions.shop_client import NotFound, ShopUnavailable
from actions.shop_records import Item, Variant
from actions.suggestions import closest_variants
from actions.text_parsing import (
    Turn,
    accepts,
    find_order_ids,
    normalize_order_id,
    refers_to_it,
    refers_to_latest_order,
    request_clauses,
    without_order_ids,
)
from actions.tracker_helpers import (
    current_customer,
    is_reminder_turn,
    latest_turn,
    refuse_unidentified,
)
from actions.turn_shop import TurnShop, turn_shop
from actions.wording import (
    Button,
    button,
    closest_variant_offer,
    describe_item,
    format_item,
    sold_out_offer,
    whole_order_cancel_note,
)

logger = logging.getLogger(__name__)

MAX_BUTTONS = 10
MAX_SUGGESTIONS = 3  # closest available variants offered for a sold-out one (issue 21)
# Slots that depend on the order: a new order clears them.
ORDER_DEPENDENT = (
    "change_items",
    "change_new_items",
    "payment_method_id",
    "change_confirmed",
    "change_readback",
    "change_field",
)
# What the shopper may pick after a "no", per slot (button titles).
FIELD_TITLES = {
    "change_order_id": "The order",
    "change_items": "The items",
    "change_new_items": "The new options",
    "cancel_reason": "The reason",
    "return_reason": "The reason",
    "payment_method_id": "The payment method",
    "new_address": "The address",
}
DEFAULT_ADDRESS_WORDS = ("default", "account", "profile", "home address", "address on file")
# Messages that are not an answer when nothing could be read from them: the form lets the
# rules handle them (FAQ, status, product question, stop, human, small talk) and asks again.
DIGRESSIONS = {
    "faq", "product_info", "order_status", "track_order", "list_orders", "request_human",
    "unsupported_request", "complaint",
    "stop", "bot_challenge", "ask_capabilities", "greet", "goodbye", "thank", "out_of_scope",
    "nlu_fallback",
}
# What to say when an answer could not be used, per requested slot.
UNCLEAR = {
    "change_order_id": "utter_order_unclear",
    "change_items": "utter_items_unclear",
    "change_new_items": "utter_variant_unclear",
    "cancel_reason": "utter_cancel_reason_refused",
    "return_reason": "utter_return_reason_unclear",
    "payment_method_id": "utter_payment_unclear",
    "new_address": "utter_address_incomplete",
    "change_confirmed": "utter_confirm_yes_or_no",
    "change_field": "utter_change_field_unclear",
}
Problem = Dict[str, Any]  # kwargs for dispatcher.utter_message


# the same wish on the other side of delivery: exchange (delivered) <-> modify items (pending)
SIBLINGS = {"exchange": "modify_items", "modify_items": "exchange"}


def family(change_type: Optional[str]) -> Optional[str]:
    """Changes that are the same request seen from the shopper's side."""
    return {"modify_items": "exchange", "default_address": "address"}.get(
        change_type or "", change_type
    )


def slot_values(tracker: Tracker) -> Dict[str, Any]:
    return {name: tracker.get_slot(name) for name in CHANGE_SLOTS}


# --------------------------------------------------------------------------- reading the turn
def next_slot(plan: ChangePlan, ctx: ChangeContext) -> Optional[str]:
    """The first slot of the plan still to ask; ``change_field`` after a "no"."""
    for slot in plan.required_slots():
        value = ctx.slots.get(slot)
        if slot == "change_new_items":
            if len(value or []) < len(ctx.slots.get("change_items") or []):
                return slot
        elif slot == "change_confirmed" and value is False:
            return "change_field"
        elif value in (None, "", []):
            return slot
    return None


def answers_now(tracker: Tracker) -> bool:
    """Whether the latest user message is being handled now — not a return to the form after
    a digression or after identification (then another action ran since the message).

    ``tracker.latest_action_name`` can't tell: Rasa hands the validation action a temporary
    tracker whose latest action is always the form itself.
    """
    since_user: List[str] = []
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        if event.get("event") == "action":
            since_user.append(str(event.get("name")))
    return all(name in ("action_listen", "change_form") for name in since_user)


def form_was_active(tracker: Tracker) -> bool:
    """Whether change_form was already running when the latest user message came.

    ``tracker.active_loop`` can't tell: at activation Rasa already marks the form active.
    """
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif event.get("event") == "active_loop":
            if seen_user:
                return event.get("name") == "change_form"
            if event.get("name") is None:
                return False  # it ended since the message and starts again (the next order)
    return False


def end_form() -> Events:
    """Stop the form without a change; action_submit_change then only clears the slots."""
    return [SlotSet("change_confirmed", None), SlotSet(REQUESTED_SLOT, None)]


def variant_button(item: Item, variant: Variant) -> Button:
    """A button for one variant of the item's product."""
    return button(format_item(item.name, variant.options), "inform", item_id=variant.item_id)


def prefill(turn: Turn, plan: ChangePlan, ctx: ChangeContext) -> Optional[Problem]:
    """What the request itself already says ("cancel W…, I ordered it by mistake",
    "return everything but the boots, they don't fit"): taken now, read back later like any
    answer. Returns a note for the shopper when the request can't be taken as said."""
    slots, words = ctx.slots, turn.words
    note: Optional[Problem] = None
    if "cancel_reason" in plan.slots:
        given = turn.entity("cancel_reason") or words
        slots["cancel_reason"] = resolvers.canonical_cancel_reason(given) if given else None
        if ctx.order and words and len({i.item_id for i in ctx.order.items}) > 1:
            named = resolvers.resolve_items(words, ctx.order.items)
            rest = [i for i in ctx.order.items if i.item_id not in named.item_ids]
            if named.item_ids and rest and not named.ambiguous:
                note = {"text": whole_order_cancel_note(ctx.order.order_id, rest)}
    if "return_reason" in plan.slots:
        reason = turn.entity("return_reason")
        slots["return_reason"] = (resolvers.canonical_return_reason(reason)
                                  or resolvers.canonical_return_reason(words)
                                  or resolvers.free_reason(reason)
                                  or resolvers.free_reason(resolvers.reason_clause(words)))
    if "change_items" in plan.slots and ctx.order and words:
        choice = resolvers.resolve_items(words, ctx.order.items)
        if choice.item_ids and not choice.ambiguous:
            slots["change_items"] = list(choice.item_ids)
            slots["change_new_items"] = []
            if plan.change_type in ("exchange", "modify_items"):
                note = _wanted_variant(words, ctx) or note  # "... for black ones with 4 hours"
    if "new_address" in plan.slots and words:
        parsed = resolvers.parse_address(words)
        slots["new_address"] = None if parsed.missing else parsed.as_dict()
    _payment_from_request(words, plan, ctx)
    return note


def _wanted_variant(words: str, ctx: ChangeContext) -> Optional[Problem]:
    """The new options named in the request itself ("… for black ones with 4 hours", "can both
    backpacks be the camera version"), taken only when they name exactly one variant for
    every chosen item."""
    chosen: List[str] = []
    for item_id in ctx.slots["change_items"]:
        item = ctx.item(item_id)
        product = ctx.products.get(item.product_id) if item else None
        if item is None or product is None:
            return None
        variant, offers = None, []
        for wish in (resolvers.wanted_part(words), words):
            choice = resolvers.resolve_variant(wish, product, item.item_id) if wish else None
            if choice is not None and choice.variant is not None:
                variant = choice.variant
                break
            offers = offers or (choice.candidates if choice else [])
        if variant is None:
            if not chosen and len(offers) == 1:  # the closest available: asked, not taken
                ctx.slots["change_offer"] = offers[0].item_id
                ctx.slots["change_new_items"] = []
                return {"text": closest_variant_offer(item, offers[0]),
                        "buttons": [variant_button(item, offers[0])]}
            break
        chosen.append(variant.item_id)
    ctx.slots["change_new_items"] = chosen
    return None


def _payment_from_request(words: str, plan: ChangePlan, ctx: ChangeContext) -> None:
    """"… put any difference on my paypal", "refund to my gift card": the method named up front
    (never the one after "instead of" / "rather than")."""
    text = resolvers.without_replaced(words)
    if "payment_method_id" not in plan.required_slots() or not resolvers.names_a_method(text):
        return  # "with a different card" names no method: asked, with buttons
    choices = plan.payment_choices(ctx)
    if plan.change_type in ("exchange", "modify_items") and len(
            ctx.slots.get("change_new_items") or []) < len(ctx.slots.get("change_items") or [1]):
        # the difference, and so whether a gift card may pay it, is not known yet: only a
        # card or PayPal (which pay any difference) is taken now
        choices = [m for m in ctx.methods.values() if m.source != "gift_card"]
    choice = resolvers.resolve_payment_method(text, choices)
    method_id = choice.method_id
    if choice.original and not method_id and ctx.order:
        allowed = {m.id for m in choices}
        method_id = next((m for m in ctx.order.payment_method_ids if m in allowed), None)
    if method_id in {m.id for m in choices}:
        ctx.slots["payment_method_id"] = method_id


def interpret(turn: Turn, requested: Optional[str], plan: ChangePlan,
              ctx: ChangeContext) -> Optional[Problem]:
    """Turns the answer to ``requested`` into slot values (in ``ctx.slots``), or says what
    didn't fit."""
    slots, words = ctx.slots, turn.words
    reason = turn.entity("return_reason")
    if plan.change_type == "return" and (reason or requested == "return_reason"):
        # the entity first, then the whole answer: the NLU may tag a stray word ("my") as well
        canonical = (resolvers.canonical_return_reason(reason) if reason else None) or (
            resolvers.canonical_return_reason(words))
        if not canonical and requested == "return_reason" and turn.intent not in (
                "affirm", "deny", "stop", "request_human"):
            canonical = resolvers.free_reason(words)  # "they don't fit in my office"
        if canonical:
            slots["return_reason"] = canonical
            return None
    if requested == "cancel_reason":
        given = turn.entity("cancel_reason") or words
        canonical = resolvers.canonical_cancel_reason(given) if given else None
        if canonical:
            slots["cancel_reason"] = canonical
    elif requested == "change_items":
        return _items(turn, ctx)
    elif requested == "change_new_items":
        return _new_item(turn, ctx)
    elif requested == "payment_method_id":
        _payment(turn, plan, ctx)
    elif requested == "new_address" and words:
        parsed = resolvers.parse_address(words)
        if not parsed.missing:
            slots["new_address"] = parsed.as_dict()
        elif len(parsed.missing) < 4:
            return {"response": "utter_address_incomplete", "missing": ", ".join(parsed.missing)}
    elif requested == "change_confirmed":
        return _confirm(turn, plan, ctx)
    elif requested == "change_field":
        field = turn.entity("change_field")
        if field in FIELD_TITLES and field in plan.required_slots():
            slots[field] = [] if field in ("change_items", "change_new_items") else None
            if field == "change_items":
                slots["change_new_items"] = []
            slots.update(change_confirmed=None, change_readback=None, change_field=None)
    return None


def _items(turn: Turn, ctx: ChangeContext) -> Optional[Problem]:
    items = ctx.order.items if ctx.order else ()
    picked = turn.entity("item_id")
    chosen: List[str] = []
    if picked == "all":
        chosen = [i.item_id for i in items]
    elif picked:
        chosen = [i.item_id for i in items if i.item_id == picked][:1]
    elif turn.words:
        choice = resolvers.resolve_items(turn.words, items)
        if choice.ambiguous and not choice.item_ids:
            return {
                "response": "utter_which_item",
                "candidates": " or ".join(describe_item(i) for i in choice.ambiguous),
            }
        chosen = list(choice.item_ids)
    if chosen:
        ctx.slots["change_items"] = chosen
        ctx.slots["change_new_items"] = []
    return None


def _new_item(turn: Turn, ctx: ChangeContext) -> Optional[Problem]:
    done = list(ctx.slots.get("change_new_items") or [])
    old_ids = ctx.slots.get("change_items") or []
    picked = turn.entity("item_id")
    if len(done) >= len(old_ids) or not (picked or turn.words):
        return None
    item = ctx.item(old_ids[len(done)])
    product = ctx.products.get(item.product_id) if item else None
    if item is None or product is None:
        return None
    offer = ctx.slots.get("change_offer")
    accepted = turn.intent == "affirm" or accepts(turn.words)
    if accepted and not picked and offer and product.variant(offer):
        ctx.slots.update(change_new_items=done + [offer], change_offer=None)
        return None
    choice = resolvers.resolve_variant(picked or turn.words, product, item.item_id)
    ctx.slots["change_offer"] = None
    if choice.variant is not None:
        ctx.slots["change_new_items"] = done + [choice.variant.item_id]
        return None
    if len(choice.candidates) == 1:  # the closest available: asked, never taken silently
        ctx.slots["change_offer"] = choice.candidates[0].item_id
        return {"text": closest_variant_offer(item, choice.candidates[0]),
                "buttons": [variant_button(item, choice.candidates[0])]}
    if choice.candidates:
        buttons = [variant_button(item, v) for v in choice.candidates[:MAX_BUTTONS]]
        return {"response": "utter_which_variant", "buttons": buttons}
    if choice.unavailable:  # sold out: the closest available variants, explained
        wanted = choice.mentioned or {
            key: value for key, value in choice.unavailable[0].options.items()
            if item.options.get(key) != value}
        asked_to_change = [k for k, v in wanted.items() if item.options.get(k) != v]
        offers = [o for o in closest_variants(product, wanted, item, k=MAX_BUTTONS)
                  # never "the same length" to a shopper who asked for another length
                  if not asked_to_change or any(o.variant.options.get(k) != item.options.get(k)
                                                for k in asked_to_change)][:MAX_SUGGESTIONS]
        if offers:
            # the offers are the question (no list of every option after them); a "yes"
            # takes one only when it is the only one
            ctx.slots["change_offer"] = ",".join(o.variant.item_id for o in offers)
            return {"text": sold_out_offer(item, wanted, offers),
                    "buttons": [variant_button(item, o.variant) for o in offers]}
        return {"response": "utter_variant_unavailable"}
    return None


def _payment(turn: Turn, plan: ChangePlan, ctx: ChangeContext) -> None:
    allowed = {m.id for m in plan.payment_choices(ctx)}
    method_id = turn.entity("payment_method_id")
    if not method_id and turn.words:
        choice = resolvers.resolve_payment_method(turn.words, plan.payment_choices(ctx))
        method_id = choice.method_id
        if choice.original and not method_id and ctx.order:
            method_id = next((m for m in ctx.order.payment_method_ids if m in allowed), None)
    if method_id in allowed:  # only the shopper's own, allowed methods
        ctx.slots["payment_method_id"] = method_id


def _confirm(turn: Turn, plan: ChangePlan, ctx: ChangeContext) -> Optional[Problem]:
    if turn.intent == "affirm":
        if ctx.slots.get("change_readback") == plan.fingerprint(ctx):
            ctx.slots["change_confirmed"] = True
        else:  # something changed since the read-back: read it back again
            ctx.slots.update(change_confirmed=None, change_readback=None)
            return {"response": "utter_readback_again"}
    elif turn.intent == "deny":
        ctx.slots.update(change_confirmed=False, change_readback=None)
    return None


def other_orders(turn: Turn, slots: Dict[str, Any]) -> List[Dict[str, Any]]:
    """"cancel W1 and W2", "change the address of W1 …, then cancel W2": this change does
    the current order; the others ({text, intent}) wait in ``change_queue``, each read back
    and confirmed on its own after this one (actions/change_actions.py: next_in_queue)."""
    current = slots.get("change_order_id")
    queued: List[Dict[str, Any]] = []
    for intent, clause in request_clauses(turn.words):
        intent = intent if intent in CHANGE_INTENTS else (
            None if intent else turn.intent)  # a clause that asks no change: not queued
        text = without_order_ids(clause)
        for order_id in find_order_ids(clause):
            if order_id != current and intent in CHANGE_INTENTS and all(
                    order_id not in q["text"] for q in queued):
                queued.append({"text": f"{text} {order_id}", "intent": {"name": intent}})
    return queued


def typed_order(turn: Turn, plan: ChangePlan) -> Optional[str]:
    """The order this change is for: in "change the address of W1, then cancel W2" the cancel
    is W2's, whatever clause comes first."""
    clauses = request_clauses(turn.words)
    if len(clauses) > 1:
        for intent, clause in clauses:
            ids = find_order_ids(clause)
            if ids and family(CHANGE_INTENTS.get(intent or "")) == family(plan.change_type):
                return ids[0]
    ids = find_order_ids(turn.words)  # "cancel W1 and W2": W1 first (the entity is the last)
    return ids[0] if ids else turn.order_id()


def current_clause(turn: Turn, order_id: Optional[str]) -> Turn:
    """The part of a message with several requests that is about this order, so that one
    order's address, items or reason are not read from another's clause."""
    clauses = request_clauses(turn.words)
    if len(clauses) < 2:
        return turn
    mine = next((c for _, c in clauses if order_id and order_id in find_order_ids(c)),
                clauses[0][1])
    return Turn(text=mine, intent=turn.intent, entities={
        k: v for k, v in turn.entities.items() if v.lower() in mine.lower()},
        entity_names=turn.entity_names)


def slot_events(before: Dict[str, Any], after: Dict[str, Any], handled: bool) -> Events:
    """SlotSets for what changed. When ``handled``, always at least one, so that Rasa
    doesn't reject the form for an answer it understood (or explained)."""
    events = [SlotSet(k, v) for k, v in after.items() if before.get(k) != v]
    if handled and not events:
        events = [SlotSet("change_type", after.get("change_type"))]
    return events


# --------------------------------------------------------------------------- the form
class ValidateChangeForm(FormValidationAction):
    """One decision per turn: what the shopper's answer means and what to ask next."""

    def name(self) -> str:
        return "validate_change_form"

    async def required_slots(self, domain_slots: List[str], dispatcher: Dispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[str]:
        """The change type's slots (domain.yml lists every slot any change may ask)."""
        plan = PLANS.get(tracker.get_slot("change_type") or "")
        return plan.required_slots() if plan else []

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        if is_reminder_turn(tracker):  # no answer: the form rejects it, a rule handles it
            return [ActionExecutionRejected("change_form")]
        customer_id = current_customer(tracker)
        if not customer_id:
            refuse_unidentified(dispatcher)
            return end_form()
        try:
            return await asyncio.to_thread(self._turn, dispatcher, tracker, customer_id)
        except ShopUnavailable:
            dispatcher.utter_message(response="utter_shop_unavailable")
        except Exception:  # noqa: BLE001 - never a traceback to the shopper
            logger.exception("validate_change_form failed")
            dispatcher.utter_message(response="utter_internal_error")
        return end_form()

    def _turn(self, dispatcher: Dispatcher, tracker: Tracker, customer_id: str) -> Events:
        shop = turn_shop(tracker, customer_id)
        slots = slot_values(tracker)
        before = dict(slots)
        activating = not form_was_active(tracker)
        if activating:  # leftovers of an earlier, unfinished change must not leak in
            keep = slots.get("change_type") if tracker.get_slot("change_requested") else None
            slots = {k: None for k in CHANGE_SLOTS}
            slots["change_type"] = keep
        fresh = answers_now(tracker)
        turn = latest_turn(tracker) if fresh else Turn()
        extra: Events = []
        pending = tracker.get_slot("pending_message")
        waiting = list(tracker.get_slot("change_queue") or [])
        if activating and not fresh and isinstance(pending, dict):
            # the request made before identifying (or queued by an earlier change of the
            # same message): read as if it were said now
            turn, fresh = Turn.parse(pending), True
        elif activating and fresh:
            # a new request, not the next order of the last one: what still waited from an
            # earlier request is forgotten, never started later by surprise
            waiting = []
        if pending:
            extra.append(SlotSet("pending_message", None))

        asked_type = CHANGE_INTENTS.get(turn.intent or "")
        if asked_type and family(asked_type) != family(slots.get("change_type")):
            if slots.get("change_type"):  # switching task: start over, keep the order
                slots.update({k: None for k in CHANGE_SLOTS if k != "change_order_id"})
            slots["change_type"] = asked_type
        if not slots.get("change_type"):
            dispatcher.utter_message(response="utter_how_can_i_help")
            return end_form()
        if slots["change_type"] == "address" and (
            turn.entity("change_target") == "account"
            or any(w in turn.text.lower() for w in DEFAULT_ADDRESS_WORDS)
        ):
            slots["change_type"] = "default_address"
            slots["change_order_id"] = None

        plan = PLANS[slots["change_type"]]
        if plan.needs_order:
            stop = self._order(dispatcher, tracker, shop, plan, slots, turn)
            if stop is not None:
                return stop
        ctx = shop.context(slots)
        sibling = PLANS.get(SIBLINGS.get(plan.change_type, ""))
        if ctx.order is not None and not plan.eligible(ctx.order) and sibling is not None \
                and sibling.eligible(ctx.order):
            # "exchange" on a pending order is an item change, "change the item" on a
            # delivered one an exchange: the same request, carried on
            slots["change_type"], plan = sibling.change_type, sibling
            ctx = shop.context(slots)
        if ctx.order is not None and not plan.eligible(ctx.order):
            text, buttons = plan.why_not(ctx.order)
            dispatcher.utter_message(text=text, buttons=buttons)
            return extra + end_form()

        problem: Optional[Problem] = None
        if fresh and activating:
            problem = prefill(current_clause(turn, slots.get("change_order_id")), plan, ctx)
            queue = waiting + other_orders(turn, slots)
            if queue != list(tracker.get_slot("change_queue") or []):
                extra.append(SlotSet("change_queue", queue or None))
        elif fresh:
            problem = interpret(turn, tracker.get_slot(REQUESTED_SLOT), plan, ctx)
        changed = slot_events(before, slots, handled=False)
        if fresh and not activating and not changed:
            if turn.intent in DIGRESSIONS and not problem:
                return []  # not an answer: rejected, the rules handle the digression
            requested_now = tracker.get_slot(REQUESTED_SLOT) or ""
            problem = problem or {"response": UNCLEAR.get(requested_now, "utter_confirm_yes_or_no")}
        if problem:
            if problem.get("response") == "utter_address_incomplete":
                problem.setdefault("missing", "street, city, state and zip code")
            dispatcher.utter_message(**problem)
        requested = next_slot(plan, ctx)
        if requested == "payment_method_id" and not plan.payment_choices(ctx):
            dispatcher.utter_message(response="utter_no_payment_choice")
            return end_form()
        return (slot_events(before, slots, handled=True) + extra
                + [SlotSet(REQUESTED_SLOT, requested)])

    @staticmethod
    def _order(dispatcher: Dispatcher, tracker: Tracker, shop: TurnShop, plan: ChangePlan,
               slots: Dict[str, Any], turn: Turn) -> Optional[Events]:
        """Sets ``change_order_id`` from the message (or the order being discussed)."""
        typed = typed_order(turn, plan)
        if typed and typed != slots.get("change_order_id"):
            try:
                shop.order(typed)
            except NotFound:
                dispatcher.utter_message(response="utter_order_not_found", order_id=typed)
                slots["change_order_id"] = None
                return None
            slots.update({k: None for k in ORDER_DEPENDENT})
            slots["change_order_id"] = typed
        if slots.get("change_order_id"):
            return None
        latest = refers_to_latest_order(turn.words)
        named = not latest and resolvers.names_any_product(turn.words)
        orders = shop.orders() if latest or named else []
        if orders and latest:  # "my last order"
            slots["change_order_id"] = orders[-1].order_id
            return None
        # "the order with the boots": the one order that has them
        having = [o for o in orders if resolvers.names_products(turn.words, o.items)]
        if len(having) == 1 or (having and len([o for o in having if plan.eligible(o)]) == 1):
            fitting = [o for o in having if plan.eligible(o)] or having
            slots["change_order_id"] = fitting[0].order_id
            return None
        # nothing typed: the order the shopper was just looking at, if this change fits it
        discussed = normalize_order_id(str(tracker.get_slot("order_id") or ""))
        if discussed:
            try:
                # "ok and can I cancel it?": that order, even when it can't be (then the
                # shopper hears why, for that order)
                if plan.eligible(shop.order(discussed)) or refers_to_it(turn.words):
                    slots["change_order_id"] = discussed
                    return None
            except NotFound:
                pass
        if not shop.eligible_orders(plan):
            dispatcher.utter_message(response=f"utter_no_orders_for_{plan.change_type}")
            return end_form()
        return None
