"""What each kind of order change needs, how it is read back, and how it is done.

One ``ChangePlan`` per change type. ``change_form`` (actions/changes.py) is generic: it asks
the slots a plan lists, then shows the plan's read-back, and only after an explicit "yes"
``action_submit_change`` calls the plan's ``execute``. Adding a change type means adding a
plan here, its intent in ``CHANGE_INTENTS`` and its NLU examples — the form stays the same.

The rules (RETAIL_RULES.md) are enforced by the shop; the plans check them first only to
explain a refusal in plain words before anything is asked.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from actions.common import format_item, format_money
from actions.shop_client import ShopClient

# Intent -> change type. `change_address` may also turn into `default_address`.
CHANGE_INTENTS: Dict[str, str] = {
    "cancel_order": "cancel",
    "return_order": "return",
    "exchange_order": "exchange",
    "modify_order": "modify_items",
    "change_address": "address",
    "change_payment": "payment",
}

# Every slot a change can fill; cleared when a change ends or another one starts.
CHANGE_SLOTS = (
    "change_type",
    "change_order_id",
    "change_items",
    "change_new_items",
    "cancel_reason",
    "return_reason",
    "payment_method_id",
    "new_address",
    "change_confirmed",
    "change_readback",
    "change_field",
)

REFUND_TIMING = (
    "Gift cards are credited at once; other payment methods receive the refund in 5 to 7 "
    "business days."
)


@dataclass
class ChangeContext:
    """What the shop says about the shopper and the order, plus the form's slot values."""

    customer: Dict[str, Any]
    slots: Dict[str, Any]
    order: Optional[Dict[str, Any]] = None
    products: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def methods(self) -> Dict[str, Dict[str, Any]]:
        return self.customer.get("payment_methods") or {}

    def item(self, item_id: str) -> Optional[Dict[str, Any]]:
        for item in (self.order or {}).get("items") or []:
            if str(item.get("item_id")) == str(item_id):
                return item
        return None

    def variant(self, product_id: str, item_id: str) -> Optional[Dict[str, Any]]:
        variants = (self.products.get(product_id) or {}).get("variants") or {}
        if isinstance(variants, dict):
            found = variants.get(str(item_id))
            return dict(found, item_id=str(item_id)) if found else None
        return next((v for v in variants if str(v.get("item_id")) == str(item_id)), None)


# --------------------------------------------------------------------------- formatting
def describe_method(method: Optional[Dict[str, Any]]) -> str:
    """``Visa ending 1234``, ``gift card (balance $12.00)``, ``PayPal`` — never a full number."""
    if not method:
        return "the original payment method"
    source = method.get("source")
    if source == "gift_card":
        balance = method.get("balance")
        if balance is None:
            return "gift card"
        return f"gift card (balance {format_money(balance)})"
    if source == "credit_card":
        brand = str(method.get("brand") or "card").title()
        last = method.get("last_four")
        return f"{brand} ending {last}" if last else brand
    if source == "paypal":
        return "PayPal"
    return str(source or "payment method").replace("_", " ")


def format_address(address: Dict[str, Any]) -> str:
    """``322 Elm Street, Suite 586, Columbus, OH 43133, USA``."""
    street = ", ".join(p for p in (address.get("address1"), address.get("address2")) if p)
    place = " ".join(p for p in (address.get("state"), address.get("zip")) if p)
    parts = [street, address.get("city") or "", place, address.get("country") or ""]
    return ", ".join(p for p in parts if p)


def bullet_items(items: List[Dict[str, Any]]) -> str:
    return "\n".join(f"• {format_item(i)} — {format_money(i.get('price'))}" for i in items)


def paid_by_method(order: Dict[str, Any]) -> Dict[str, float]:
    """Net amount paid per payment method (payments minus refunds)."""
    totals: Dict[str, float] = {}
    for entry in order.get("payment_history") or []:
        sign = 1 if entry.get("transaction_type") == "payment" else -1
        method = str(entry.get("payment_method_id"))
        totals[method] = round(totals.get(method, 0.0) + sign * float(entry.get("amount") or 0), 2)
    return {m: a for m, a in totals.items() if a > 0}


def order_total(order: Dict[str, Any]) -> float:
    return round(sum(float(i.get("price") or 0) for i in order.get("items") or []), 2)


# --------------------------------------------------------------------------- plans
class ChangePlan(ABC):
    """A kind of change: the slots it asks, its eligibility, read-back and execution."""

    change_type = ""
    title = ""  # "cancel", used in "… can't be {title}ed"
    needs_order = True
    statuses: Tuple[str, ...] = ("pending",)
    slots: Tuple[str, ...] = ()

    def required_slots(self, ctx: ChangeContext) -> List[str]:
        """Slots still to ask, in order (the order id first when a plan needs one)."""
        wanted = (["change_order_id"] if self.needs_order else []) + list(self.slots)
        return wanted + ["change_confirmed"]

    def eligible(self, order: Dict[str, Any]) -> bool:
        return str(order.get("status") or "").lower() in self.statuses

    def payment_choices(self, ctx: ChangeContext) -> List[Dict[str, Any]]:
        """Payment methods the shopper may pick for this change (with their ids)."""
        return [dict(m, id=mid) for mid, m in ctx.methods.items()]

    @abstractmethod
    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        """Exactly what will be sent to the shop; the read-back is built from it."""

    @abstractmethod
    def readback(self, ctx: ChangeContext) -> str:
        """The whole change in plain words, ending with the yes/no question."""

    @abstractmethod
    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        """The shop call, with idempotency key ``key``."""

    @abstractmethod
    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        """What was done and what happens next."""

    def fingerprint(self, ctx: ChangeContext) -> str:
        """Identifies the change as read back: any edit after the read-back changes it."""
        body = {"type": self.change_type, "order": (ctx.order or {}).get("order_id")}
        body.update(self.payload(ctx))
        text = json.dumps(body, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def order_id(self, ctx: ChangeContext) -> str:
        return str((ctx.order or {}).get("order_id"))


class CancelPlan(ChangePlan):
    change_type = "cancel"
    title = "cancelled"
    slots = ("cancel_reason",)

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {"reason": ctx.slots.get("cancel_reason")}

    def _refunds(self, ctx: ChangeContext) -> str:
        lines = [
            f"• {format_money(amount)} back to {describe_method(ctx.methods.get(mid))}"
            for mid, amount in paid_by_method(ctx.order or {}).items()
        ]
        return "\n".join(lines) or "• nothing was paid, so nothing to refund"

    def readback(self, ctx: ChangeContext) -> str:
        order = ctx.order or {}
        return (
            f"Please check: cancel order {order.get('order_id')} because "
            f"\"{ctx.slots.get('cancel_reason')}\".\n"
            f"Items:\n{bullet_items(order.get('items') or [])}\n"
            f"Refund:\n{self._refunds(ctx)}\n"
            "Cancelling is final. Shall I go ahead?"
        )

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        return client.cancel_order(
            self.order_id(ctx), ctx.customer["user_id"], ctx.slots["cancel_reason"], idem_key=key
        )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        return (
            f"Done: order {self.order_id(ctx)} is cancelled. Everything you paid goes back to "
            f"the method it came from. {REFUND_TIMING}"
        )


class ReturnPlan(ChangePlan):
    change_type = "return"
    title = "returned"
    statuses = ("delivered",)
    slots = ("change_items", "return_reason", "payment_method_id")

    def payment_choices(self, ctx: ChangeContext) -> List[Dict[str, Any]]:
        """The order's original method(s), or any gift card of the shopper."""
        original = set(paid_by_method(ctx.order or {})) | {
            str(e.get("payment_method_id"))
            for e in (ctx.order or {}).get("payment_history") or []
            if e.get("transaction_type") == "payment"
        }
        return [
            dict(m, id=mid)
            for mid, m in ctx.methods.items()
            if mid in original or m.get("source") == "gift_card"
        ]

    def _items(self, ctx: ChangeContext) -> List[Dict[str, Any]]:
        return [i for i in (ctx.item(x) for x in ctx.slots.get("change_items") or []) if i]

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {
            "item_ids": sorted(ctx.slots.get("change_items") or []),
            "payment_method_id": ctx.slots.get("payment_method_id"),
            "reason": ctx.slots.get("return_reason"),
        }

    def readback(self, ctx: ChangeContext) -> str:
        items = self._items(ctx)
        refund = round(sum(float(i.get("price") or 0) for i in items), 2)
        method = describe_method(ctx.methods.get(ctx.slots.get("payment_method_id") or ""))
        return (
            f"Please check: return from order {self.order_id(ctx)}:\n{bullet_items(items)}\n"
            f"Reason: {ctx.slots.get('return_reason')}\n"
            f"Refund: {format_money(refund)} to your {method}.\n"
            "A return can be requested only once per order. Shall I go ahead?"
        )

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        return client.return_order(
            self.order_id(ctx),
            ctx.customer["user_id"],
            list(ctx.slots["change_items"]),
            ctx.slots["payment_method_id"],
            reason=ctx.slots.get("return_reason"),
            idem_key=key,
        )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        return (
            f"Done: the return for order {self.order_id(ctx)} is requested. You'll receive an "
            "email with the return instructions; the refund is made once the items are back. "
            f"{REFUND_TIMING}"
        )


class ExchangePlan(ChangePlan):
    """Delivered items for other available variants of the same products."""

    change_type = "exchange"
    title = "exchanged"
    statuses = ("delivered",)
    slots = ("change_items", "change_new_items", "payment_method_id")
    client_method = "exchange_order"
    intro = "Please check: exchange in order {order_id}:"
    once = "An exchange can be requested only once per order."

    def pairs(self, ctx: ChangeContext) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
        old = ctx.slots.get("change_items") or []
        new = ctx.slots.get("change_new_items") or []
        pairs = []
        for old_id, new_id in zip(old, new, strict=False):
            item = ctx.item(old_id)
            variant = ctx.variant(str((item or {}).get("product_id")), new_id) if item else None
            if item and variant:
                pairs.append((item, dict(variant, name=item.get("name"))))
        return pairs

    def difference(self, ctx: ChangeContext) -> float:
        pairs = self.pairs(ctx)
        return round(sum(float(n.get("price") or 0) - float(o["price"] or 0) for o, n in pairs), 2)

    def payment_choices(self, ctx: ChangeContext) -> List[Dict[str, Any]]:
        """Any method; a gift card only if it covers a positive difference."""
        diff = self.difference(ctx) if ctx.slots.get("change_new_items") else 0.0
        return [
            dict(m, id=mid)
            for mid, m in ctx.methods.items()
            if m.get("source") != "gift_card" or diff <= 0 or float(m.get("balance") or 0) >= diff
        ]

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {
            "item_ids": list(ctx.slots.get("change_items") or []),
            "new_item_ids": list(ctx.slots.get("change_new_items") or []),
            "payment_method_id": ctx.slots.get("payment_method_id"),
        }

    def settlement(self, ctx: ChangeContext) -> str:
        diff = self.difference(ctx)
        method = describe_method(ctx.methods.get(ctx.slots.get("payment_method_id") or ""))
        if diff > 0:
            return f"You pay the difference of {format_money(diff)} with your {method}."
        if diff < 0:
            return f"You get {format_money(-diff)} back to your {method}."
        return "Same price: nothing to pay or refund."

    def readback(self, ctx: ChangeContext) -> str:
        lines = [
            f"• {format_item(o)} → {format_item(n)} ({format_money(o.get('price'))} → "
            f"{format_money(n.get('price'))})"
            for o, n in self.pairs(ctx)
        ]
        intro = self.intro.format(order_id=self.order_id(ctx))
        return "\n".join([intro, *lines, self.settlement(ctx), self.once, "Shall I go ahead?"])

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        swap = getattr(client, self.client_method)  # exchange_order / modify_order_items
        return swap(
            self.order_id(ctx),
            ctx.customer["user_id"],
            list(ctx.slots["change_items"]),
            list(ctx.slots["change_new_items"]),
            ctx.slots["payment_method_id"],
            idem_key=key,
        )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        return (
            f"Done: the exchange for order {self.order_id(ctx)} is requested. You'll receive an "
            "email with instructions for sending the items back; no new order is placed. "
            + self.settlement(ctx).replace("You pay", "You'll pay").replace("You get", "You'll get")
        )


class ModifyItemsPlan(ExchangePlan):
    """Pending-order items for other available variants (once per order)."""

    change_type = "modify_items"
    title = "changed"
    statuses = ("pending",)
    client_method = "modify_order_items"
    intro = "Please check: change the items of pending order {order_id}:"
    once = (
        "Items can be changed only once per order, so make sure every item you want to change "
        "is listed."
    )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        settled = self.settlement(ctx).replace("You pay", "You've paid")
        return (
            f"Done: the items of order {self.order_id(ctx)} are changed. Its status is now "
            "\"pending (item modified)\": it can't be cancelled or changed again. "
            + settled.replace("You get", "You'll get")
        )


class AddressPlan(ChangePlan):
    change_type = "address"
    title = "changed"
    slots = ("new_address",)

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {"address": ctx.slots.get("new_address")}

    def readback(self, ctx: ChangeContext) -> str:
        old = format_address((ctx.order or {}).get("address") or {})
        return (
            f"Please check: ship order {self.order_id(ctx)} to\n"
            f"{format_address(ctx.slots.get('new_address') or {})}\n"
            f"instead of {old}. Shall I go ahead?"
        )

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        return client.modify_order_address(
            self.order_id(ctx), ctx.customer["user_id"], ctx.slots["new_address"], idem_key=key
        )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        return (
            f"Done: order {self.order_id(ctx)} will be shipped to "
            f"{format_address(ctx.slots.get('new_address') or {})}. Your account's default "
            "address is unchanged."
        )


class DefaultAddressPlan(AddressPlan):
    change_type = "default_address"
    needs_order = False
    statuses = ()

    def readback(self, ctx: ChangeContext) -> str:
        old = format_address(ctx.customer.get("address") or {})
        return (
            "Please check: your account's default address becomes\n"
            f"{format_address(ctx.slots.get('new_address') or {})}\n"
            f"instead of {old}. Existing orders keep their addresses. Shall I go ahead?"
        )

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        return client.update_default_address(
            ctx.customer["user_id"], ctx.slots["new_address"], idem_key=key
        )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        return (
            "Done: your default address is now "
            f"{format_address(ctx.slots.get('new_address') or {})}. Orders already placed keep "
            "their shipping addresses."
        )


class PaymentPlan(ChangePlan):
    change_type = "payment"
    title = "changed"
    slots = ("payment_method_id",)

    def eligible(self, order: Dict[str, Any]) -> bool:
        payments = [
            e for e in order.get("payment_history") or [] if e.get("transaction_type") == "payment"
        ]
        return super().eligible(order) and len(payments) == 1

    def current_method(self, ctx: ChangeContext) -> Optional[str]:
        for entry in (ctx.order or {}).get("payment_history") or []:
            if entry.get("transaction_type") == "payment":
                return str(entry.get("payment_method_id"))
        return None

    def payment_choices(self, ctx: ChangeContext) -> List[Dict[str, Any]]:
        """Another method than the current one; a gift card must cover the whole total."""
        total = order_total(ctx.order or {})
        current = self.current_method(ctx)
        return [
            dict(m, id=mid)
            for mid, m in ctx.methods.items()
            if mid != current
            and (m.get("source") != "gift_card" or float(m.get("balance") or 0) >= total)
        ]

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {"payment_method_id": ctx.slots.get("payment_method_id")}

    def readback(self, ctx: ChangeContext) -> str:
        new = describe_method(ctx.methods.get(ctx.slots.get("payment_method_id") or ""))
        old = describe_method(ctx.methods.get(self.current_method(ctx) or ""))
        total = format_money(order_total(ctx.order or {}))
        return (
            f"Please check: pay order {self.order_id(ctx)} ({total}) with your {new} instead "
            f"of your {old}. {old[:1].upper() + old[1:]} gets a refund of {total}. "
            "Shall I go ahead?"
        )

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Dict[str, Any]:
        return client.modify_order_payment(
            self.order_id(ctx),
            ctx.customer["user_id"],
            ctx.slots["payment_method_id"],
            idem_key=key,
        )

    def done(self, ctx: ChangeContext, result: Dict[str, Any]) -> str:
        return (
            f"Done: order {self.order_id(ctx)} is now paid with your "
            f"{describe_method(ctx.methods.get(ctx.slots.get('payment_method_id') or ''))}. "
            f"The previous payment is refunded. {REFUND_TIMING}"
        )


PLANS: Dict[str, ChangePlan] = {
    plan.change_type: plan
    for plan in (
        CancelPlan(),
        ReturnPlan(),
        ExchangePlan(),
        ModifyItemsPlan(),
        AddressPlan(),
        DefaultAddressPlan(),
        PaymentPlan(),
    )
}


# --------------------------------------------------------------------------- refusals
def why_not(plan: ChangePlan, order: Dict[str, Any]) -> Tuple[str, List[Dict[str, str]]]:
    """Plain words for why ``order`` can't get this change, and buttons for what can be done."""
    oid = order.get("order_id")
    status = str(order.get("status") or "").lower()
    ref = json.dumps({"order_id": oid}, separators=(",", ":"))
    track = {"title": "Track it", "payload": f"/track_order{ref}"}
    ret = {"title": "Return items", "payload": f"/return_order{ref}"}
    exch = {"title": "Exchange items", "payload": f"/exchange_order{ref}"}
    cancel = {"title": "Cancel it", "payload": f"/cancel_order{ref}"}
    if plan.change_type == "payment" and status == "pending":
        return (
            f"Order {oid} was paid with more than one payment method, so its payment can't be "
            "switched. A human agent can help with that.",
            [{"title": "Talk to a human agent", "payload": "/request_human"}],
        )
    if status == "processed":
        return (
            f"Order {oid} is already being prepared in our warehouse, so it can no longer be "
            f"{plan.title}. You can track it, and once it's delivered you can return or exchange "
            "items.",
            [track],
        )
    if status == "delivered":
        return (
            f"Order {oid} has already been delivered, so it can't be {plan.title} any more — "
            "but you can return or exchange its items.",
            [ret, exch],
        )
    if status == "pending":
        return (
            f"Order {oid} hasn't been delivered yet, so its items can't be {plan.title} yet. "
            "While it's pending you can cancel it or change its items, address or payment.",
            [cancel, {"title": "Change its items", "payload": f"/modify_order{ref}"}],
        )
    if status == "pending (item modified)":
        return (
            f"The items of order {oid} were already changed once, so it can no longer be "
            f"{plan.title} or modified. Once it's delivered you can return or exchange items.",
            [],
        )
    if status in ("return requested", "exchange requested"):
        return (
            f"A {status.split()[0]} was already requested for order {oid}; returns and "
            "exchanges are possible once per order.",
            [],
        )
    if status == "cancelled":
        return f"Order {oid} is cancelled, which is final.", []
    return f"Order {oid} is {status or 'in a state'} where it can't be {plan.title}.", []
