"""change_form: every order change, asked slot by slot, read back, and done only after "yes".

Why one form for all changes: the safety-critical part — identification, read-back, the
explicit "yes", the fingerprint that ties the "yes" to what was read back, and the idempotent
write — is then written once. What differs per change lives in actions/change_plans.py.

- ``validate_change_form`` decides, each turn, which slot comes next (``required_slots`` of the
  plan) and turns what the shopper typed into shop values (actions/resolvers.py).
- ``action_ask_change_confirmed`` reads the whole change back and stores its fingerprint in
  ``change_readback``; a "yes" counts only while the change still has that fingerprint.
- ``action_submit_change`` runs when the form ends: it writes only if the shopper said yes
  to exactly this change, then says what happens next. Typed ``/intent{...}`` payloads can set
  at most the inputs; they never skip the read-back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABCMeta, abstractmethod
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT, FormValidationAction

from actions import resolvers
from actions.change_plans import (
    CHANGE_INTENTS,
    CHANGE_SLOTS,
    PLANS,
    ChangeContext,
    ChangePlan,
    describe_method,
    why_not,
)
from actions.common import (
    DomainDict,
    Events,
    current_customer,
    format_item,
    latest_entity,
    latest_intent,
    latest_text,
    order_label,
    refuse_unidentified,
    run_safely,
    shop_safe,
)
from actions.shop_client import (
    Conflict,
    Invalid,
    NotFound,
    ShopClient,
    ShopUnavailable,
    find_order_id,
    get_client,
    idempotency_key,
    normalize_order_id,
)

logger = logging.getLogger(__name__)

MAX_BUTTONS = 10
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
DEFAULT_ADDRESS_WORDS = ("default", "account", "profile", "home address", "my address on file")
# Messages that are not an answer when nothing could be read from them: the form lets the
# rules handle them (FAQ, status, product question, stop, human, small talk) and asks again.
DIGRESSIONS = {
    "faq", "product_info", "order_status", "track_order", "list_orders", "request_human",
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


def button(title: str, intent: str, **entities: Any) -> Dict[str, str]:
    """A button whose payload carries entities (JSON with double quotes)."""
    payload = json.dumps(entities, separators=(",", ":")) if entities else ""
    return {"title": title, "payload": f"/{intent}{payload}"}


def family(change_type: Optional[str]) -> Optional[str]:
    """Changes that are the same request seen from the shopper's side."""
    return {"modify_items": "exchange", "default_address": "address"}.get(
        change_type or "", change_type
    )


def slot_values(tracker: Tracker) -> Dict[str, Any]:
    return {name: tracker.get_slot(name) for name in CHANGE_SLOTS}


def load_context(
    client: ShopClient, customer_id: str, slots: Dict[str, Any]
) -> ChangeContext:
    """The shopper, the order being changed and its products, fresh from the shop."""
    ctx = ChangeContext(customer=client.get_customer(customer_id), slots=slots)
    order_id = slots.get("change_order_id")
    if order_id:
        ctx.order = client.get_order(order_id, customer_id)
        if slots.get("change_type") in ("exchange", "modify_items"):
            for pid in {str(i.get("product_id")) for i in ctx.order.get("items") or []}:
                ctx.products[pid] = client.get_product(pid)
    return ctx


def eligible_orders(client: ShopClient, customer_id: str, plan: ChangePlan) -> List[Dict[str, Any]]:
    return [o for o in client.list_orders(customer_id) if plan.eligible(o)]


def next_slot(plan: ChangePlan, ctx: ChangeContext) -> Optional[str]:
    """The first slot of the plan still to ask; ``change_field`` after a "no"."""
    for slot in plan.required_slots(ctx):
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


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def form_was_active(tracker: Tracker) -> bool:
    """Whether change_form was already running when the latest user message came.

    ``tracker.active_loop`` can't tell: at activation Rasa already marks the form active.
    """
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "active_loop":
            return event.get("name") == "change_form"
    return False


def end_form() -> Events:
    """Stop the form without a change; action_submit_change then only clears the slots."""
    return [SlotSet("change_confirmed", None), SlotSet(REQUESTED_SLOT, None)]


# --------------------------------------------------------------------------- the form
class ValidateChangeForm(FormValidationAction):
    """One decision per turn: what the shopper's answer means and what to ask next."""

    def name(self) -> str:
        return "validate_change_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
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

    def _turn(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, customer_id: str
    ) -> Events:
        client = get_client()
        slots = slot_values(tracker)
        before = dict(slots)
        activating = not form_was_active(tracker)
        if activating:  # leftovers of an earlier, unfinished change must not leak in
            keep = slots.get("change_type") if tracker.get_slot("change_requested") else None
            slots = {k: None for k in CHANGE_SLOTS}
            slots["change_type"] = keep
        fresh = answers_now(tracker)
        intent = latest_intent(tracker) if fresh else None

        asked_type = CHANGE_INTENTS.get(intent or "")
        if asked_type and family(asked_type) != family(slots.get("change_type")):
            if slots.get("change_type"):  # switching task: start over, keep the order
                slots.update({k: None for k in CHANGE_SLOTS if k != "change_order_id"})
            slots["change_type"] = asked_type
        if not slots.get("change_type"):
            dispatcher.utter_message(response="utter_how_can_i_help")
            return end_form()
        if slots["change_type"] == "address" and (
            latest_entity(tracker, "change_target") == "account"
            or any(w in latest_text(tracker).lower() for w in DEFAULT_ADDRESS_WORDS)
        ):
            slots["change_type"] = "default_address"
            slots["change_order_id"] = None

        plan = PLANS[slots["change_type"]]
        if plan.needs_order:
            stop = self._order(dispatcher, tracker, client, customer_id, plan, slots, fresh)
            if stop is not None:
                return stop
        ctx = load_context(client, customer_id, slots)
        if ctx.order is not None and not plan.eligible(ctx.order):
            text, buttons = why_not(plan, ctx.order)
            dispatcher.utter_message(text=text, buttons=buttons)
            return end_form()

        problem: Optional[Problem] = None
        if fresh and activating:
            self._prefill(tracker, plan, ctx)
        elif fresh:
            problem = self._answer(tracker, plan, ctx, intent)
        changed = self._events(before, slots, handled=False)
        if fresh and not activating and not changed:
            if intent in DIGRESSIONS and not problem:
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
        return self._events(before, slots, handled=True) + [SlotSet(REQUESTED_SLOT, requested)]

    # ------------------------------------------------------------------ the order
    def _order(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        client: ShopClient,
        customer_id: str,
        plan: ChangePlan,
        slots: Dict[str, Any],
        fresh: bool,
    ) -> Optional[Events]:
        """Sets ``change_order_id`` from the message (or the order being discussed)."""
        typed = None
        if fresh:
            text = latest_text(tracker)
            typed = normalize_order_id(latest_entity(tracker, "order_id") or "") or find_order_id(
                text, bare=not text.startswith("/")
            )
        if typed and typed != slots.get("change_order_id"):
            try:
                client.get_order(typed, customer_id)
            except NotFound:
                dispatcher.utter_message(response="utter_order_not_found", order_id=typed)
                slots["change_order_id"] = None
                return None
            slots.update({k: None for k in ORDER_DEPENDENT})
            slots["change_order_id"] = typed
        if slots.get("change_order_id"):
            return None
        # nothing typed: the order the shopper was just looking at, if this change fits it
        discussed = normalize_order_id(str(tracker.get_slot("order_id") or ""))
        if discussed:
            try:
                if plan.eligible(client.get_order(discussed, customer_id)):
                    slots["change_order_id"] = discussed
                    return None
            except NotFound:
                pass
        if not eligible_orders(client, customer_id, plan):
            dispatcher.utter_message(response=f"utter_no_orders_for_{plan.change_type}")
            return end_form()
        return None

    # ------------------------------------------------------------------ answers
    @staticmethod
    def _prefill(tracker: Tracker, plan: ChangePlan, ctx: ChangeContext) -> None:
        """What the request itself already says ("cancel W…, I ordered it by mistake",
        "return the sneakers, too small"): taken now, read back later like any answer."""
        text = latest_text(tracker)
        words = "" if text.startswith("/") else text
        slots = ctx.slots
        if "cancel_reason" in plan.slots:
            given = latest_entity(tracker, "cancel_reason") or words
            slots["cancel_reason"] = resolvers.canonical_cancel_reason(given) if given else None
        if "return_reason" in plan.slots:
            reason = latest_entity(tracker, "return_reason")
            slots["return_reason"] = resolvers.canonical_return_reason(reason) if reason else None
        if "change_items" in plan.slots and ctx.order and words:
            choice = resolvers.resolve_items(words, ctx.order.get("items") or [])
            if choice.item_ids and not choice.ambiguous:
                slots["change_items"] = [str(i) for i in choice.item_ids]
                slots["change_new_items"] = []
        if "new_address" in plan.slots and words:
            parsed = resolvers.parse_address(words)
            slots["new_address"] = None if parsed.missing else parsed.as_dict()

    def _answer(
        self, tracker: Tracker, plan: ChangePlan, ctx: ChangeContext, intent: Optional[str]
    ) -> Optional[Problem]:
        """Turns the message into slot values (in ``ctx.slots``), or says what didn't fit."""
        slots = ctx.slots
        text = latest_text(tracker)
        words = "" if text.startswith("/") else text
        requested = tracker.get_slot(REQUESTED_SLOT)
        reason = latest_entity(tracker, "return_reason")
        if plan.change_type == "return" and (reason or requested == "return_reason"):
            canonical = resolvers.canonical_return_reason(reason or words)
            if canonical:
                slots["return_reason"] = canonical
                return None
        if requested == "cancel_reason":
            given = latest_entity(tracker, "cancel_reason") or words
            canonical = resolvers.canonical_cancel_reason(given) if given else None
            if canonical:
                slots["cancel_reason"] = canonical
        elif requested == "change_items":
            return self._items(tracker, ctx, words)
        elif requested == "change_new_items":
            return self._new_item(tracker, ctx, words)
        elif requested == "payment_method_id":
            self._payment(tracker, plan, ctx, words)
        elif requested == "new_address" and words:
            parsed = resolvers.parse_address(words)
            if not parsed.missing:
                slots["new_address"] = parsed.as_dict()
            elif len(parsed.missing) < 4:
                missing = ", ".join(parsed.missing)
                return {"response": "utter_address_incomplete", "missing": missing}
        elif requested == "change_confirmed":
            return self._confirm(plan, ctx, intent)
        elif requested == "change_field":
            field = latest_entity(tracker, "change_field")
            if field in FIELD_TITLES and field in plan.required_slots(ctx):
                slots[field] = [] if field in ("change_items", "change_new_items") else None
                if field == "change_items":
                    slots["change_new_items"] = []
                slots.update(change_confirmed=None, change_readback=None, change_field=None)
        return None

    def _items(self, tracker: Tracker, ctx: ChangeContext, words: str) -> Optional[Problem]:
        items = (ctx.order or {}).get("items") or []
        picked = latest_entity(tracker, "item_id")
        chosen: List[str] = []
        if picked == "all":
            chosen = [str(i["item_id"]) for i in items]
        elif picked:
            chosen = [str(i["item_id"]) for i in items if str(i["item_id"]) == picked][:1]
        elif words:
            choice = resolvers.resolve_items(words, items)
            if choice.ambiguous and not choice.item_ids:
                return {
                    "response": "utter_which_item",
                    "candidates": " or ".join(format_item(i) for i in choice.ambiguous),
                }
            chosen = [str(i) for i in choice.item_ids]
        if chosen:
            ctx.slots["change_items"] = chosen
            ctx.slots["change_new_items"] = []
        return None

    def _new_item(self, tracker: Tracker, ctx: ChangeContext, words: str) -> Optional[Problem]:
        done = list(ctx.slots.get("change_new_items") or [])
        old_ids = ctx.slots.get("change_items") or []
        picked = latest_entity(tracker, "item_id")
        if len(done) >= len(old_ids) or not (picked or words):
            return None
        item = ctx.item(old_ids[len(done)]) or {}
        product = ctx.products.get(str(item.get("product_id"))) or {}
        choice = resolvers.resolve_variant(picked or words, product, str(item.get("item_id")))
        if choice.variant is not None:
            ctx.slots["change_new_items"] = done + [str(choice.variant["item_id"])]
            return None
        if choice.candidates:
            return {
                "response": "utter_which_variant",
                "buttons": [
                    variant_button(item, v) for v in choice.candidates[:MAX_BUTTONS]
                ],
            }
        if choice.unavailable:
            return {"response": "utter_variant_unavailable"}
        return None

    def _payment(self, tracker: Tracker, plan: ChangePlan, ctx: ChangeContext, words: str) -> None:
        choices = plan.payment_choices(ctx)
        by_id = {str(m["id"]): m for m in choices}
        picked = latest_entity(tracker, "payment_method_id")
        method_id: Optional[str] = None
        if picked:
            method_id = picked
        elif words:
            choice = resolvers.resolve_payment_method(words, choices)
            method_id = choice.method_id
            if choice.original and not method_id:
                original = [
                    str(e.get("payment_method_id"))
                    for e in (ctx.order or {}).get("payment_history") or []
                    if e.get("transaction_type") == "payment"
                ]
                method_id = next((m for m in original if m in by_id), None)
        if method_id in by_id:  # only the shopper's own, allowed methods
            ctx.slots["payment_method_id"] = method_id

    def _confirm(
        self, plan: ChangePlan, ctx: ChangeContext, intent: Optional[str]
    ) -> Optional[Problem]:
        if intent == "affirm":
            if ctx.slots.get("change_readback") == plan.fingerprint(ctx):
                ctx.slots["change_confirmed"] = True
            else:  # something changed since the read-back: read it back again
                ctx.slots.update(change_confirmed=None, change_readback=None)
                return {"response": "utter_readback_again"}
        elif intent == "deny":
            ctx.slots.update(change_confirmed=False, change_readback=None)
        return None

    @staticmethod
    def _events(before: Dict[str, Any], after: Dict[str, Any], handled: bool) -> Events:
        """SlotSets for what changed. When ``handled``, always at least one, so that Rasa
        doesn't reject the form for an answer it understood (or explained)."""
        events = [SlotSet(k, v) for k, v in after.items() if before.get(k) != v]
        if handled and not events:
            events = [SlotSet("change_type", after.get("change_type"))]
        return events


def option_summary(item: Dict[str, Any], variants: List[Dict[str, Any]]) -> str:
    """``Available: color blue, red; size M, L.`` — option values the shopper can choose."""
    keys = list((item.get("options") or {}).keys())
    parts = []
    for key in keys:
        current = (item.get("options") or {}).get(key)
        values = sorted({str((v.get("options") or {}).get(key)) for v in variants} - {str(current)})
        if values:
            parts.append(f"{key}: {', '.join(values)}")
    return ("Available options — " + "; ".join(parts) + ".") if parts else ""


def variant_button(item: Dict[str, Any], variant: Dict[str, Any]) -> Dict[str, str]:
    """A button for one variant of the item's product."""
    title = format_item({"name": item.get("name"), "options": variant.get("options")})
    return button(title, "inform", item_id=str(variant["item_id"]))


# --------------------------------------------------------------------------- questions
class _AskAction(Action, metaclass=ABCMeta):
    """Base of the questions that need shop data (buttons of orders, items, methods)."""

    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    @shop_safe
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        customer_id = current_customer(tracker)
        if not customer_id:
            return refuse_unidentified(dispatcher)
        slots = slot_values(tracker)
        plan = PLANS.get(slots.get("change_type") or "")
        if plan is None:
            return []
        client = get_client()
        return self.ask(dispatcher, client, plan, load_context(client, customer_id, slots))

    @abstractmethod
    def ask(
        self,
        dispatcher: CollectingDispatcher,
        client: ShopClient,
        plan: ChangePlan,
        ctx: ChangeContext,
    ) -> Events:
        """Utter the question (with buttons); return events (e.g. the read-back fingerprint)."""


class ActionAskChangeOrderId(_AskAction):
    """Which order: buttons of the shopper's orders this change is possible for."""

    slot = "change_order_id"

    def ask(self, dispatcher, client, plan, ctx) -> Events:  # type: ignore[override]
        orders = eligible_orders(client, ctx.customer["user_id"], plan)
        buttons = [
            button(order_label(o), "inform", order_id=o["order_id"]) for o in orders[:MAX_BUTTONS]
        ]
        if plan.change_type == "address":
            account = button("My account's default address", "inform", change_target="account")
            buttons.append(account)
        response = f"utter_ask_order_for_{plan.change_type}"
        dispatcher.utter_message(response=response, buttons=buttons)
        return []


class ActionAskChangeItems(_AskAction):
    """Which items: one button per item of the order, and "all items"."""

    slot = "change_items"

    def ask(self, dispatcher, client, plan, ctx) -> Events:  # type: ignore[override]
        items = (ctx.order or {}).get("items") or []
        buttons = [button(format_item(i), "inform", item_id=str(i["item_id"])) for i in items]
        if len(items) > 1:
            buttons.append(button("All items", "inform", item_id="all"))
        lines = "\n".join(f"• {format_item(i)}" for i in items)
        dispatcher.utter_message(
            response=f"utter_ask_items_for_{plan.change_type}",
            order_id=(ctx.order or {}).get("order_id"),
            items=lines,
            buttons=buttons[: MAX_BUTTONS + 1],
        )
        return []


class ActionAskChangeNewItems(_AskAction):
    """The new option for the next item: its available alternatives."""

    slot = "change_new_items"

    def ask(self, dispatcher, client, plan, ctx) -> Events:  # type: ignore[override]
        old_ids = ctx.slots.get("change_items") or []
        done = ctx.slots.get("change_new_items") or []
        if len(done) >= len(old_ids):
            return []
        item = ctx.item(old_ids[len(done)]) or {}
        product = ctx.products.get(str(item.get("product_id"))) or {}
        variants = [
            v
            for v in (product.get("variants") or {}).values()
            if v.get("available") and str(v.get("item_id")) != str(item.get("item_id"))
        ]
        if not variants:
            dispatcher.utter_message(response="utter_no_other_variant", item=format_item(item))
            rest = [i for i in old_ids if i != item.get("item_id")]
            return [SlotSet("change_items", rest or None)]
        buttons = [variant_button(item, v) for v in variants[:MAX_BUTTONS]]
        options = option_summary(item, variants)
        dispatcher.utter_message(
            response="utter_ask_new_variant",
            item=format_item(item),
            options=options,
            buttons=buttons if len(variants) <= MAX_BUTTONS else [],
        )
        return []


class ActionAskPaymentMethodId(_AskAction):
    """Which payment method: the ones the rules allow for this change."""

    slot = "payment_method_id"

    def ask(self, dispatcher, client, plan, ctx) -> Events:  # type: ignore[override]
        buttons = [
            button(capitalized(describe_method(m)), "inform", payment_method_id=str(m["id"]))
            for m in plan.payment_choices(ctx)
        ]
        response = f"utter_ask_payment_for_{plan.change_type}"
        dispatcher.utter_message(response=response, buttons=buttons)
        return []


class ActionAskChangeConfirmed(_AskAction):
    """The read-back: the whole change, then yes/no. Remembers what was read back."""

    slot = "change_confirmed"

    def ask(self, dispatcher, client, plan, ctx) -> Events:  # type: ignore[override]
        dispatcher.utter_message(
            text=plan.readback(ctx),
            buttons=[button("Yes, go ahead", "affirm"), button("No", "deny")],
        )
        return [SlotSet("change_readback", plan.fingerprint(ctx))]


class ActionAskChangeField(_AskAction):
    """After a "no": nothing changed; what should be different?"""

    slot = "change_field"

    def ask(self, dispatcher, client, plan, ctx) -> Events:  # type: ignore[override]
        fields = [s for s in plan.required_slots(ctx) if s in FIELD_TITLES]
        buttons = [button(FIELD_TITLES[s], "inform", change_field=s) for s in fields]
        buttons.append(button("Cancel this request", "stop"))
        dispatcher.utter_message(response="utter_ask_change_field", buttons=buttons)
        return []


# --------------------------------------------------------------------------- doing it
class ActionSubmitChange(Action):
    """After change_form: the change, if and only if "yes" was said to exactly this change."""

    def name(self) -> str:
        return "action_submit_change"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        clear = [SlotSet(k, None) for k in CHANGE_SLOTS] + [SlotSet("change_requested", False)]
        slots = slot_values(tracker)
        customer_id = current_customer(tracker)
        plan = PLANS.get(slots.get("change_type") or "")
        if slots.get("change_confirmed") is not True or plan is None or not customer_id:
            return clear
        events = await run_safely(
            self.name(),
            lambda: self._submit(dispatcher, tracker, plan, customer_id, slots),
            dispatcher,
            domain,
        )
        return events + clear

    async def _submit(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        plan: ChangePlan,
        customer_id: str,
        slots: Dict[str, Any],
    ) -> Events:
        client = get_client()
        ctx = load_context(client, customer_id, slots)
        fingerprint = plan.fingerprint(ctx)
        if fingerprint != slots.get("change_readback"):
            dispatcher.utter_message(response="utter_change_not_confirmed")
            return []
        key = idempotency_key(tracker.sender_id, fingerprint, _confirm_time(tracker))
        try:
            result = plan.execute(client, ctx, key)
        except (Conflict, Invalid) as exc:
            dispatcher.utter_message(response="utter_change_refused", reason=_sentence(str(exc)))
            return []
        dispatcher.utter_message(text=plan.done(ctx, result))
        dispatcher.utter_message(response="utter_anything_else")
        order_id = (ctx.order or {}).get("order_id")
        record = f"{plan.change_type} {order_id or 'account'}".strip()
        done = list(tracker.get_slot("changes_done") or []) + [record]
        events = [SlotSet("changes_done", done), SlotSet("flow_completed", True)]
        return events + ([SlotSet("order_id", order_id)] if order_id else [])


class ActionStopChange(Action):
    """"stop" inside a change: nothing changed, everything forgotten."""

    def name(self) -> str:
        return "action_stop_change"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        dispatcher.utter_message(response="utter_change_stopped")
        return [SlotSet(k, None) for k in CHANGE_SLOTS] + [
            SlotSet("change_requested", False),
            SlotSet("pending_request", None),
        ]


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
    "ValidateChangeForm",
    "ActionAskChangeOrderId",
    "ActionAskChangeItems",
    "ActionAskChangeNewItems",
    "ActionAskPaymentMethodId",
    "ActionAskChangeConfirmed",
    "ActionAskChangeField",
    "ActionSubmitChange",
    "ActionStopChange",
)
