"""The store's rules (docs/retail-rules.md) for orders, one function per operation.

Every write runs in one transaction that first locks what it changes (the order row with
SELECT ... FOR UPDATE on PostgreSQL; the database write lock via BEGIN IMMEDIATE on SQLite), then
checks every rule, and only then changes anything. A refusal raises ShopError before the first
change, so a refused request changes nothing. Order ids arrive canonical (`#W…`, see
`schemas.clean_order_id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import ADDRESS_FIELDS, Order, PaymentMethod, Variant, to_cents, to_dollars, utcnow
from shop.errors import conflict, invalid, not_found
from shop.schemas import AddressIn, CancelIn, ItemsIn, OrderOut, PaymentIn, ReturnIn
from shop.views import order_view

PENDING = "pending"
PENDING_MODIFIED = "pending (item modified)"
PROCESSED = "processed"
DELIVERED = "delivered"
CANCELLED = "cancelled"
RETURN_REQUESTED = "return requested"
EXCHANGE_REQUESTED = "exchange requested"
CANCEL_REASONS = ("no longer needed", "ordered by mistake")


# ---------------------------------------------------------------- reads and helpers


def get_order(session: Session, order_id: str, caller: str) -> OrderOut:
    """Hot path (the bench's read): a Core row, no ORM identity map."""
    row = session.execute(select(Order.__table__).where(Order.order_id == order_id)).first()
    if row is None or row.user_id != caller:
        raise not_found("Order")
    return order_view(row)  # type: ignore[arg-type]  # a Row has the same attributes


def _open_order(session: Session, order_id: str, caller: str, wanted: str, action: str) -> Order:
    """The caller's order, locked, if its status is `wanted`: else 404 or 409."""
    order = session.scalar(select(Order).where(Order.order_id == order_id).with_for_update())
    if order is None or order.user_id != caller:
        raise not_found("Order")
    if order.status == wanted:
        return order
    if wanted == PENDING and order.status == PENDING_MODIFIED:
        raise conflict(
            "order_already_modified",
            f"Order {order.order_id} had its items modified already; it can no longer be "
            f"{action}.",
        )
    raise conflict(
        f"order_not_{wanted.replace(' ', '_')}",
        f"Order {order.order_id} is {order.status}; only {wanted} orders can be {action}.",
    )


def _saved(order: Order) -> OrderOut:
    order.updated_at = utcnow()
    return order_view(order)


def _payment_method(session: Session, order: Order, method_id: str) -> PaymentMethod:
    method = session.get(PaymentMethod, method_id)
    if method is None or method.user_id != order.user_id:
        raise invalid(
            "payment_method_not_found",
            f"Payment method {method_id} is not one of this customer's payment methods.",
        )
    return method


def _lock_methods(session: Session, method_ids: Iterable[str]) -> dict[str, PaymentMethod]:
    """Lock the payment methods whose balance may change, in a fixed order (no deadlocks)."""
    ids = sorted(set(method_ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(PaymentMethod)
        .where(PaymentMethod.id.in_(ids))
        .order_by(PaymentMethod.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {m.id: m for m in rows}


def _gift_card_covers(method: PaymentMethod, cents: int, what: str, charge: bool) -> None:
    """A gift card must hold `cents` (409 otherwise); with `charge` they are taken at once."""
    if method.source != "gift_card":
        return
    balance = method.balance_cents or 0
    if balance < cents:
        raise conflict(
            "insufficient_gift_card_balance",
            f"Gift card {method.id} has {to_dollars(balance):.2f}, less than {what} "
            f"{to_dollars(cents):.2f}.",
        )
    if charge:
        method.balance_cents = balance - cents


def _credit_gift_card(method: PaymentMethod | None, cents: int) -> None:
    if method is not None and method.source == "gift_card":
        method.balance_cents = (method.balance_cents or 0) + cents


def _entry(kind: str, cents: int, method_id: str) -> dict[str, Any]:
    return {"transaction_type": kind, "amount": to_dollars(cents), "payment_method_id": method_id}


def _match_items(order: Order, item_ids: list[str]) -> list[int]:
    """Positions in the order of the named items; a repeated id needs as many units in the order."""
    used: set[int] = set()
    positions: list[int] = []
    for item_id in item_ids:
        pos = next((p for p, item in enumerate(order.items)
                    if p not in used and item["item_id"] == item_id), None)
        if pos is None:
            wanted = item_ids.count(item_id)
            have = sum(1 for i in order.items if i["item_id"] == item_id)
            if have:
                raise invalid(
                    "item_not_in_order",
                    f"Item {item_id} is {wanted} times in the request but {have} times in "
                    f"order {order.order_id}.",
                )
            raise invalid("item_not_in_order", f"Item {item_id} is not in order {order.order_id}.")
        used.add(pos)
        positions.append(pos)
    return positions


def _new_variants(
    session: Session, order: Order, body: ItemsIn
) -> tuple[list[int], list[Variant], int]:
    """Check an item swap: same product, another available variant. Returns the difference."""
    if len(body.item_ids) != len(body.new_item_ids):
        raise invalid(
            "item_count_mismatch",
            "item_ids and new_item_ids must have the same length (one new variant per item).",
        )
    positions = _match_items(order, body.item_ids)
    variants: list[Variant] = []
    diff = 0
    for pos, new_id in zip(positions, body.new_item_ids, strict=True):
        item = order.items[pos]
        if new_id == item["item_id"]:
            raise invalid(
                "same_item",
                f"New item {new_id} is the item already ordered; choose another variant.",
            )
        variant = session.get(Variant, new_id)
        if variant is None or variant.product_id != item["product_id"]:
            raise invalid(
                "item_product_mismatch",
                f"New item {new_id} is not a variant of {item['name']} "
                f"(product {item['product_id']}); an item can only become another variant of "
                "the same product.",
            )
        if not variant.available:
            raise conflict("item_unavailable", f"New item {new_id} is not available.")
        variants.append(variant)
        diff += variant.price_cents - to_cents(item["price"])
    return positions, variants, diff


# ---------------------------------------------------------------- writes


def cancel_order(session: Session, order_id: str, caller: str, body: CancelIn) -> OrderOut:
    """Cancel a pending order; every payment is refunded to its method."""
    order = _open_order(session, order_id, caller, PENDING, "cancelled")
    reason = " ".join(body.reason.split()).lower()
    if reason not in CANCEL_REASONS:
        raise invalid(
            "invalid_cancel_reason",
            'The reason must be "no longer needed" or "ordered by mistake".',
        )
    # What each method paid, net of refunds already made, in order of first use.
    net: dict[str, int] = {}
    for entry in order.payment_history:
        cents = to_cents(entry["amount"])
        sign = 1 if entry["transaction_type"] == "payment" else -1
        net[entry["payment_method_id"]] = net.get(entry["payment_method_id"], 0) + sign * cents
    refunds = {mid: cents for mid, cents in net.items() if cents > 0}
    methods = _lock_methods(session, refunds)
    for mid, cents in refunds.items():
        _credit_gift_card(methods.get(mid), cents)
    order.payment_history = order.payment_history + [
        _entry("refund", cents, mid) for mid, cents in refunds.items()
    ]
    order.status = CANCELLED
    order.cancel_reason = reason
    return _saved(order)


def change_order_address(
    session: Session, order_id: str, caller: str, body: AddressIn
) -> OrderOut:
    """New shipping address of a pending order."""
    order = _open_order(session, order_id, caller, PENDING, "modified")
    order.address = {f: getattr(body, f) for f in ADDRESS_FIELDS}
    return _saved(order)


def change_order_payment(
    session: Session, order_id: str, caller: str, body: PaymentIn
) -> OrderOut:
    """Pay a pending single-payment order with another method of the customer."""
    order = _open_order(session, order_id, caller, PENDING, "modified")
    method = _payment_method(session, order, body.payment_method_id)
    history = order.payment_history
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        raise conflict(
            "not_single_payment",
            "The payment method can only be changed for an order paid with exactly one payment.",
        )
    old_id = history[0]["payment_method_id"]
    if old_id == method.id:
        raise invalid(
            "same_payment_method",
            f"Order {order.order_id} is already paid with {method.id}; choose another method.",
        )
    amount = to_cents(history[0]["amount"])
    methods = _lock_methods(session, [old_id, method.id])
    _gift_card_covers(methods[method.id], amount, "the order total", charge=True)
    _credit_gift_card(methods.get(old_id), amount)
    order.payment_history = history + [
        _entry("payment", amount, method.id),
        _entry("refund", amount, old_id),
    ]
    return _saved(order)


def modify_order_items(
    session: Session, order_id: str, caller: str, body: ItemsIn
) -> OrderOut:
    """Swap items of a pending order for other available variants (once per order)."""
    order = _open_order(session, order_id, caller, PENDING, "modified")
    positions, variants, diff = _new_variants(session, order, body)
    method = _payment_method(session, order, body.payment_method_id)
    method = _lock_methods(session, [method.id])[method.id]
    _gift_card_covers(method, diff, "the price difference", charge=True)
    items = [dict(i) for i in order.items]
    for pos, variant in zip(positions, variants, strict=True):
        items[pos] = {
            "name": items[pos]["name"],
            "product_id": items[pos]["product_id"],
            "item_id": variant.item_id,
            "price": to_dollars(variant.price_cents),
            "options": variant.options,
        }
    order.items = items
    order.payment_history = order.payment_history + [
        _entry("payment" if diff > 0 else "refund", abs(diff), method.id)
    ]
    order.status = PENDING_MODIFIED
    return _saved(order)


def return_items(session: Session, order_id: str, caller: str, body: ReturnIn) -> OrderOut:
    """Request a return of delivered items (refund: original method or a gift card)."""
    order = _open_order(session, order_id, caller, DELIVERED, "returned")
    method = _payment_method(session, order, body.payment_method_id)
    original = next(
        (e["payment_method_id"] for e in order.payment_history
         if e["transaction_type"] == "payment"),
        None,
    )
    if method.source != "gift_card" and method.id != original:
        raise invalid(
            "refund_method_not_allowed",
            f"The refund goes to the order's original payment method ({original}) or to a gift "
            "card of the customer.",
        )
    _match_items(order, body.item_ids)
    order.status = RETURN_REQUESTED
    order.return_items = sorted(body.item_ids)
    order.return_payment_method_id = method.id
    order.return_reason = body.reason or None
    return _saved(order)


def exchange_items(session: Session, order_id: str, caller: str, body: ItemsIn) -> OrderOut:
    """Request an exchange of delivered items for other available variants."""
    order = _open_order(session, order_id, caller, DELIVERED, "exchanged")
    _, _, diff = _new_variants(session, order, body)
    method = _payment_method(session, order, body.payment_method_id)
    _gift_card_covers(method, diff, "the price difference", charge=False)
    order.status = EXCHANGE_REQUESTED
    order.exchange_items = sorted(body.item_ids)
    order.exchange_new_items = sorted(body.new_item_ids)
    order.exchange_payment_method_id = method.id
    order.exchange_price_difference_cents = diff
    return _saved(order)
