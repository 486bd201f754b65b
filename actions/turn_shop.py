"""The shop's records as of one user message: each fetched at most once per turn.

Rasa runs the change form's validation, its question and the submit as separate action
calls for the same message; all of them need the shopper, the order and its products. They
share one memo per (conversation, user message), so a turn costs one read of each record;
a write clears the memo of its turn.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from rasa_sdk import Tracker

from actions.change_plans import ChangeContext, ChangePlan
from actions.shop_client import ShopClient, get_client
from actions.shop_records import Order

_MEMO_TURNS = 256
_memos: OrderedDict[Tuple[str, Any], Dict[Tuple[str, str], Any]] = OrderedDict()
_memo_lock = threading.Lock()


def turn_memo(tracker: Tracker) -> Dict[Tuple[str, str], Any]:
    """The shop records already fetched for this user message (shared by the validation, the
    question and the submit of one turn, which Rasa runs as separate action calls)."""
    stamp = next((e.get("timestamp") for e in reversed(tracker.events)
                  if e.get("event") == "user"), None)
    if stamp is None:
        return {}
    key = (tracker.sender_id, stamp)
    with _memo_lock:
        memo = _memos.setdefault(key, {})
        _memos.move_to_end(key)
        while len(_memos) > _MEMO_TURNS:
            _memos.popitem(last=False)
    return memo


def forget_turn(tracker: Tracker) -> None:
    """After a write the memo of this turn is stale."""
    turn_memo(tracker).clear()


@dataclass
class TurnShop:
    """Reads of one turn, each record fetched from the shop at most once."""

    client: ShopClient
    customer_id: str
    memo: Dict[Tuple[str, str], Any]

    def _once(self, kind: str, key: str, fetch: Any) -> Any:
        if (kind, key) not in self.memo:
            self.memo[(kind, key)] = fetch()
        return self.memo[(kind, key)]

    def order(self, order_id: str) -> Order:
        return self._once("order", order_id,
                          lambda: self.client.get_order(order_id, self.customer_id))

    def orders(self) -> List[Order]:
        return self._once("orders", "", lambda: self.client.list_orders(self.customer_id))

    def context(self, slots: Dict[str, Any]) -> ChangeContext:
        """The shopper, the order being changed and its products."""
        customer = self._once("customer", "",
                              lambda: self.client.get_customer(self.customer_id))
        ctx = ChangeContext(customer=customer, slots=slots)
        order_id = slots.get("change_order_id")
        if order_id:
            ctx.order = self.order(order_id)
            if slots.get("change_type") in ("exchange", "modify_items"):
                for pid in {i.product_id for i in ctx.order.items}:
                    ctx.products[pid] = self._once("product", pid,
                                                   lambda p=pid: self.client.get_product(p))
        return ctx

    def eligible_orders(self, plan: ChangePlan) -> List[Order]:
        return [o for o in self.orders() if plan.eligible(o)]


def turn_shop(tracker: Tracker, customer_id: str) -> TurnShop:
    return TurnShop(get_client(), customer_id, turn_memo(tracker))
