"""What each kind of order change needs, how it is read back, and how it is done.

One ``ChangePlan`` per change type. ``change_form`` (actions/changes.py) is generic: it asks
the slots a plan lists, then shows the plan's read-back, and only after an explicit "yes"
``action_submit_change`` calls the plan's ``execute``. Adding a change type means adding a
plan here, its intent in ``CHANGE_INTENTS`` and its NLU examples — the form stays the same.

The rules (docs/retail-rules.md) are enforced by the shop; the plans check them first only to
explain a refusal in plain words before anything is asked.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from actions.shop_client import ShopClient
from actions.shop_records import Address, Customer, Item, Order, PaymentMethod, Product, Variant
from actions.wording import (
    REFUND_TIMING,
    capitalized,
    describe_item,
    describe_method,
    format_address,
    format_item,
    format_money,
    refusal,
    settlement,
)

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
    "change_offer",  # the one close variant offered ("shall I take that one?"): a "yes" takes it
)



@dataclass
class ChangeContext:
    """What the shop says about the shopper and the order, plus the form's slot values."""

    customer: Customer
    slots: Dict[str, Any]
    order: Optional[Order] = None
    products: Dict[str, Product] = field(default_factory=dict)

    @property
    def methods(self) -> Mapping[str, PaymentMethod]:
        return self.customer.payment_methods

    def method(self, slot: str = "payment_method_id") -> Optional[PaymentMethod]:
        """The shopper's method named by a slot (None: not chosen, or not theirs)."""
        return self.methods.get(str(self.slots.get(slot) or ""))

    def item(self, item_id: str) -> Optional[Item]:
        return self.order.item(item_id) if self.order else None

    def chosen_items(self) -> List[Item]:
        """The order items in ``change_items`` (one per unit)."""
        return [i for i in (self.item(x) for x in self.slots.get("change_items") or []) if i]

    def variant(self, product_id: str, item_id: str) -> Optional[Variant]:
        product = self.products.get(product_id)
        return product.variant(item_id) if product else None

    def new_address(self) -> Address:
        return Address.parse(self.slots.get("new_address") or {})


def bullet_items(items: List[Item]) -> str:
    return "\n".join(f"• {describe_item(i)} — {format_money(i.price)}" for i in items)


# --------------------------------------------------------------------------- plans
class ChangePlan(ABC):
    """A kind of change: the slots it asks, its eligibility, read-back and execution."""

    change_type = ""
    title = ""  # completes "… can no longer be {title}"
    needs_order = True
    statuses: Tuple[str, ...] = ("pending",)
    slots: Tuple[str, ...] = ()

    def required_slots(self) -> List[str]:
        """The slots this change asks, in order (the order id first when a plan needs one)."""
        wanted = (["change_order_id"] if self.needs_order else []) + list(self.slots)
        return wanted + ["change_confirmed"]

    def eligible(self, order: Order) -> bool:
        return order.status in self.statuses

    def why_not(self, order: Order) -> Tuple[str, List[Dict[str, str]]]:
        """Why ``order`` can't get this change, with buttons for what can be done instead."""
        return refusal(order, self.change_type, self.title)

    def payment_choices(self, ctx: ChangeContext) -> List[PaymentMethod]:
        """Payment methods the shopper may pick for this change."""
        return list(ctx.methods.values())

    @abstractmethod
    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        """Exactly what will be sent to the shop; the read-back is built from it."""

    @abstractmethod
    def readback(self, ctx: ChangeContext) -> str:
        """The whole change in plain words, ending with the yes/no question."""

    client_method = ""  # the ShopClient write that does this change

    @abstractmethod
    def change_args(self, ctx: ChangeContext) -> Tuple[Any, ...]:
        """What ``client_method`` takes after the order and the shopper."""

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Any:
        """The shop call, with idempotency key ``key``."""
        write = getattr(client, self.client_method)
        return write(self.order_id(ctx), ctx.customer.user_id, *self.change_args(ctx),
                     idem_key=key)

    @abstractmethod
    def done(self, ctx: ChangeContext) -> str:
        """What was done and what happens next."""

    def fingerprint(self, ctx: ChangeContext) -> str:
        """Identifies the change as read back: any edit after the read-back changes it."""
        body = {"type": self.change_type, "order": ctx.order.order_id if ctx.order else None}
        body.update(self.payload(ctx))
        text = json.dumps(body, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def order_id(self, ctx: ChangeContext) -> str:
        return ctx.order.order_id if ctx.order else ""


class CancelPlan(ChangePlan):
    change_type = "cancel"
    client_method = "cancel_order"
    title = "cancelled"
    slots = ("cancel_reason",)

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {"reason": ctx.slots.get("cancel_reason")}

    def _refunds(self, ctx: ChangeContext) -> str:
        paid = ctx.order.paid_by_method() if ctx.order else {}
        lines = [f"• {format_money(amount)} back to {describe_method(ctx.methods.get(mid))}"
                 for mid, amount in paid.items()]
        return "\n".join(lines) or "• nothing was paid, so nothing to refund"

    def readback(self, ctx: ChangeContext) -> str:
        items = list(ctx.order.items) if ctx.order else []
        return (
            f"Please check: cancel order {self.order_id(ctx)} because "
            f"\"{ctx.slots.get('cancel_reason')}\".\n"
            f"Items:\n{bullet_items(items)}\n"
            f"Refund:\n{self._refunds(ctx)}\n"
            "Cancelling is final. Shall I go ahead?"
        )

    def change_args(self, ctx: ChangeContext) -> Tuple[Any, ...]:
        return (ctx.slots["cancel_reason"],)

    def done(self, ctx: ChangeContext) -> str:
        return (
            f"Done: order {self.order_id(ctx)} is cancelled. Everything you paid goes back to "
            f"the method it came from. {REFUND_TIMING}"
        )


class ReturnPlan(ChangePlan):
    change_type = "return"
    client_method = "return_order"
    title = "returned"
    statuses = ("delivered",)
    slots = ("change_items", "return_reason", "payment_method_id")

    def payment_choices(self, ctx: ChangeContext) -> List[PaymentMethod]:
        """The order's original method(s), or any gift card of the shopper."""
        original = set(ctx.order.payment_method_ids) if ctx.order else set()
        return [m for m in ctx.methods.values() if m.id in original or m.source == "gift_card"]

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {
            "item_ids": sorted(ctx.slots.get("change_items") or []),
            "payment_method_id": ctx.slots.get("payment_method_id"),
            "reason": ctx.slots.get("return_reason"),
        }

    def readback(self, ctx: ChangeContext) -> str:
        items = ctx.chosen_items()
        refund = round(sum(i.price for i in items), 2)
        return (
            f"Please check: return from order {self.order_id(ctx)}:\n{bullet_items(items)}\n"
            f"Reason: {ctx.slots.get('return_reason')}\n"
            f"Refund: {format_money(refund)} to your {describe_method(ctx.method())}.\n"
            "A return can be requested only once per order. Shall I go ahead?"
        )

    def change_args(self, ctx: ChangeContext) -> Tuple[Any, ...]:
        slots = ctx.slots
        return (list(slots["change_items"]), slots["payment_method_id"], slots.get("return_reason"))

    def done(self, ctx: ChangeContext) -> str:
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

    def pairs(self, ctx: ChangeContext) -> List[Tuple[Item, Variant]]:
        """(old item, new variant) for each item chosen so far."""
        old = ctx.slots.get("change_items") or []
        new = ctx.slots.get("change_new_items") or []
        pairs = []
        for old_id, new_id in zip(old, new, strict=False):
            item = ctx.item(old_id)
            variant = ctx.variant(item.product_id, new_id) if item else None
            if item and variant:
                pairs.append((item, variant))
        return pairs

    def difference(self, ctx: ChangeContext) -> float:
        return round(sum(new.price - old.price for old, new in self.pairs(ctx)), 2)

    def payment_choices(self, ctx: ChangeContext) -> List[PaymentMethod]:
        """Any method; a gift card only if it covers a positive difference."""
        diff = self.difference(ctx) if ctx.slots.get("change_new_items") else 0.0
        return [m for m in ctx.methods.values() if m.covers(diff)]

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {
            "item_ids": list(ctx.slots.get("change_items") or []),
            "new_item_ids": list(ctx.slots.get("change_new_items") or []),
            "payment_method_id": ctx.slots.get("payment_method_id"),
        }

    def settlement(self, ctx: ChangeContext, tense: str = "ask") -> str:
        return settlement(self.difference(ctx), describe_method(ctx.method()), tense)

    def readback(self, ctx: ChangeContext) -> str:
        lines = [
            f"• {describe_item(old)} → {format_item(old.name, new.options)} "
            f"({format_money(old.price)} → {format_money(new.price)})"
            for old, new in self.pairs(ctx)
        ]
        intro = self.intro.format(order_id=self.order_id(ctx))
        return "\n".join([intro, *lines, self.settlement(ctx), self.once, "Shall I go ahead?"])

    def change_args(self, ctx: ChangeContext) -> Tuple[Any, ...]:
        slots = ctx.slots
        return (list(slots["change_items"]), list(slots["change_new_items"]),
                slots["payment_method_id"])

    def done(self, ctx: ChangeContext) -> str:
        return (
            f"Done: the exchange for order {self.order_id(ctx)} is requested. You'll receive an "
            "email with instructions for sending the items back; no new order is placed. "
            + self.settlement(ctx, "will")
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

    def done(self, ctx: ChangeContext) -> str:
        return (
            f"Done: the items of order {self.order_id(ctx)} are changed. Its status is now "
            "\"pending (item modified)\": it can't be cancelled or changed again. "
            + self.settlement(ctx, "paid")
        )


class AddressPlan(ChangePlan):
    change_type = "address"
    client_method = "modify_order_address"
    title = "changed"
    slots = ("new_address",)

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {"address": ctx.slots.get("new_address")}

    def old_address(self, ctx: ChangeContext) -> Address:
        return ctx.order.address if ctx.order else ctx.customer.address

    def readback(self, ctx: ChangeContext) -> str:
        return (
            f"Please check: ship order {self.order_id(ctx)} to\n"
            f"{format_address(ctx.new_address())}\n"
            f"instead of {format_address(self.old_address(ctx))}. Shall I go ahead?"
        )

    def change_args(self, ctx: ChangeContext) -> Tuple[Any, ...]:
        return (ctx.slots["new_address"],)

    def done(self, ctx: ChangeContext) -> str:
        return (
            f"Done: order {self.order_id(ctx)} will be shipped to "
            f"{format_address(ctx.new_address())}. Your account's default address is unchanged."
        )


class DefaultAddressPlan(AddressPlan):
    change_type = "default_address"
    needs_order = False
    statuses = ()

    def old_address(self, ctx: ChangeContext) -> Address:
        return ctx.customer.address

    def readback(self, ctx: ChangeContext) -> str:
        return (
            "Please check: your account's default address becomes\n"
            f"{format_address(ctx.new_address())}\n"
            f"instead of {format_address(self.old_address(ctx))}. Existing orders keep their "
            "addresses. Shall I go ahead?"
        )

    def execute(self, client: ShopClient, ctx: ChangeContext, key: str) -> Any:
        """The account's address: no order in the call."""
        return client.update_default_address(ctx.customer.user_id, *self.change_args(ctx),
                                             idem_key=key)

    def done(self, ctx: ChangeContext) -> str:
        return (
            f"Done: your default address is now {format_address(ctx.new_address())}. Orders "
            "already placed keep their shipping addresses."
        )


class PaymentPlan(ChangePlan):
    change_type = "payment"
    client_method = "modify_order_payment"
    title = "changed"
    slots = ("payment_method_id",)

    def eligible(self, order: Order) -> bool:
        payments = [p for p in order.payment_history if p.transaction_type == "payment"]
        return super().eligible(order) and len(payments) == 1

    def current_method(self, ctx: ChangeContext) -> Optional[str]:
        return next(iter(ctx.order.payment_method_ids), None) if ctx.order else None

    def payment_choices(self, ctx: ChangeContext) -> List[PaymentMethod]:
        """Another method than the current one; a gift card must cover the whole total."""
        total = ctx.order.total if ctx.order else 0.0
        current = self.current_method(ctx)
        return [m for m in ctx.methods.values() if m.id != current and m.covers(total)]

    def payload(self, ctx: ChangeContext) -> Dict[str, Any]:
        return {"payment_method_id": ctx.slots.get("payment_method_id")}

    def readback(self, ctx: ChangeContext) -> str:
        new = describe_method(ctx.method())
        old = describe_method(ctx.methods.get(self.current_method(ctx) or ""))
        total = format_money(ctx.order.total if ctx.order else 0)
        return (
            f"Please check: pay order {self.order_id(ctx)} ({total}) with your {new} instead "
            f"of your {old}. {capitalized(old)} gets a refund of {total}. Shall I go ahead?"
        )

    def change_args(self, ctx: ChangeContext) -> Tuple[Any, ...]:
        return (ctx.slots["payment_method_id"],)

    def done(self, ctx: ChangeContext) -> str:
        return (
            f"Done: order {self.order_id(ctx)} is now paid with your "
            f"{describe_method(ctx.method())}. The previous payment is refunded. {REFUND_TIMING}"
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
