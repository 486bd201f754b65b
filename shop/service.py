"""The store's rules (RETAIL_RULES.md), one function per operation.

Every write runs in one transaction that first locks what it changes (the order row with
SELECT ... FOR UPDATE on PostgreSQL; the database write lock via BEGIN IMMEDIATE on SQLite), then
checks every rule, and only then changes anything. A refusal raises ShopError before the first
change, so a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shop.db import (
    ADDRESS_FIELDS,
    Customer,
    Handoff,
    Order,
    PaymentMethod,
    Product,
    Rating,
    Shipment,
    Variant,
    fold,
    to_cents,
    to_dollars,
    utcnow,
)
from shop.errors import ShopError, conflict, invalid, not_found
from shop.schemas import AddressIn, CancelIn, HandoffIn, ItemsIn, PaymentIn, RatingIn, ReturnIn

PENDING = "pending"
PENDING_MODIFIED = "pending (item modified)"
PROCESSED = "processed"
DELIVERED = "delivered"
CANCELLED = "cancelled"
RETURN_REQUESTED = "return requested"
EXCHANGE_REQUESTED = "exchange requested"
CANCEL_REASONS = ("no longer needed", "ordered by mistake")


# ---------------------------------------------------------------- ids and views


def normalize_order_id(raw: str) -> str:
    """`#W2611340`, `W2611340`, `w2611340` and `2611340` all name order `#W2611340`."""
    value = raw.strip().lstrip("#").strip()
    if value[:1] in ("w", "W"):
        value = "W" + value[1:]
    elif value.isdigit():
        value = "W" + value
    return "#" + value


def order_view(order: Order) -> dict[str, Any]:
    """The order with the seed's field names, plus the fields a cancel/return/exchange recorded."""
    view: dict[str, Any] = {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "address": order.address,
        "items": order.items,
        "status": order.status,
        "fulfillments": order.fulfillments,
        "payment_history": order.payment_history,
    }
    if order.cancel_reason is not None:
        view["cancel_reason"] = order.cancel_reason
    if order.return_items is not None:
        view["return_items"] = order.return_items
        view["return_payment_method_id"] = order.return_payment_method_id
        if order.return_reason is not None:
            view["return_reason"] = order.return_reason
    if order.exchange_items is not None:
        view["exchange_items"] = order.exchange_items
        view["exchange_new_items"] = order.exchange_new_items
        view["exchange_payment_method_id"] = order.exchange_payment_method_id
        view["exchange_price_difference"] = to_dollars(order.exchange_price_difference_cents or 0)
    return view


def method_view(method: PaymentMethod) -> dict[str, Any]:
    """Cards show brand and last four only; gift cards their balance."""
    view: dict[str, Any] = {"source": method.source, "id": method.id}
    if method.source == "credit_card":
        view["brand"] = method.brand
        view["last_four"] = method.last_four
    if method.source == "gift_card":
        view["balance"] = to_dollars(method.balance_cents or 0)
    return view


def customer_view(session: Session, customer: Customer) -> dict[str, Any]:
    methods = session.scalars(
        select(PaymentMethod)
        .where(PaymentMethod.user_id == customer.user_id)
        .order_by(PaymentMethod.position, PaymentMethod.id)
    ).all()
    order_ids = session.scalars(
        select(Order.order_id)
        .where(Order.user_id == customer.user_id)
        .order_by(Order.position, Order.order_id)
    ).all()
    return {
        "user_id": customer.user_id,
        "name": {"first_name": customer.first_name, "last_name": customer.last_name},
        "address": {f: getattr(customer, f) for f in ADDRESS_FIELDS},
        "email": customer.email,
        "payment_methods": {m.id: method_view(m) for m in methods},
        "orders": list(order_ids),
    }


def product_view(product: Product, variants: Iterable[Variant]) -> dict[str, Any]:
    return {
        "name": product.name,
        "product_id": product.product_id,
        "variants": {
            v.item_id: {
                "item_id": v.item_id,
                "options": v.options,
                "available": v.available,
                "price": to_dollars(v.price_cents),
            }
            for v in variants
        },
    }


def handoff_view(ticket: Handoff) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "status": ticket.status,
        "summary": ticket.summary,
        "reason": ticket.reason,
        "user_id": ticket.user_id,
        "conversation_id": ticket.conversation_id,
        "created_at": ticket.created_at.isoformat().replace("+00:00", "Z")
        if ticket.created_at.tzinfo
        else ticket.created_at.isoformat() + "Z",
    }


# ---------------------------------------------------------------- reads


def lookup_customer(
    session: Session,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    zip_code: str | None,
) -> dict[str, str]:
    """Identify by email, or by first name + last name + zip (case/accent-insensitive)."""
    if email is not None and email.strip():
        user_id = session.scalar(
            select(Customer.user_id).where(Customer.email_key == fold(email)).limit(1)
        )
    elif first_name and last_name and zip_code and first_name.strip() and last_name.strip():
        user_id = session.scalar(
            select(Customer.user_id)
            .where(
                Customer.first_name_key == fold(first_name),
                Customer.last_name_key == fold(last_name),
                Customer.zip == zip_code.strip(),
            )
            .limit(1)
        )
    else:
        raise invalid(
            "lookup_parameters",
            "Give either email, or first_name, last_name and zip.",
        )
    if user_id is None:
        raise not_found("Customer")
    return {"user_id": user_id}


def get_customer(session: Session, user_id: str, caller: str) -> dict[str, Any]:
    if user_id != caller:
        raise not_found("Customer")
    customer = session.get(Customer, user_id)
    if customer is None:
        raise not_found("Customer")
    return customer_view(session, customer)


def _load_order(session: Session, order_id: str, caller: str, lock: bool = False) -> Order:
    stmt = select(Order).where(Order.order_id == normalize_order_id(order_id))
    if lock:
        stmt = stmt.with_for_update()
    order = session.scalar(stmt)
    if order is None or order.user_id != caller:
        raise not_found("Order")
    return order


def get_order(session: Session, order_id: str, caller: str) -> dict[str, Any]:
    """Hot path (the bench's read): a Core row, no ORM identity map."""
    row = session.execute(
        select(Order.__table__).where(Order.order_id == normalize_order_id(order_id))
    ).first()
    if row is None or row.user_id != caller:
        raise not_found("Order")
    return order_view(row)  # type: ignore[arg-type]  # a Row has the same attributes


def list_products(session: Session) -> list[dict[str, Any]]:
    products = session.scalars(select(Product).order_by(Product.position)).all()
    variants = session.scalars(select(Variant).order_by(Variant.product_id, Variant.position)).all()
    by_product: dict[str, list[Variant]] = {}
    for v in variants:
        by_product.setdefault(v.product_id, []).append(v)
    return [product_view(p, by_product.get(p.product_id, [])) for p in products]


def get_product(session: Session, product_id: str) -> dict[str, Any]:
    product = session.get(Product, product_id)
    if product is None:
        raise not_found("Product")
    variants = session.scalars(
        select(Variant).where(Variant.product_id == product_id).order_by(Variant.position)
    ).all()
    return product_view(product, variants)


def get_shipment_order(session: Session, tracking_id: str) -> Order:
    order_id = session.scalar(
        select(Shipment.order_id).where(Shipment.tracking_id == tracking_id)
    )
    order = session.get(Order, order_id) if order_id else None
    if order is None:
        raise not_found("Shipment")
    return order


def get_handoff(session: Session, handoff_id: str) -> dict[str, Any]:
    ticket = session.get(Handoff, handoff_id)
    if ticket is None:
        raise not_found("Handoff")
    return handoff_view(ticket)


# ---------------------------------------------------------------- write helpers


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


def _entry(kind: str, cents: int, method_id: str) -> dict[str, Any]:
    return {"transaction_type": kind, "amount": to_dollars(cents), "payment_method_id": method_id}


def _require_status(order: Order, wanted: str, action: str) -> None:
    if order.status == wanted:
        return
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


def _match_items(order: Order, item_ids: list[str]) -> list[int]:
    """Positions in the order of the named items; a repeated id needs as many units in the order."""
    used: set[int] = set()
    positions: list[int] = []
    for item_id in item_ids:
        for pos, item in enumerate(order.items):
            if pos not in used and item["item_id"] == item_id:
                used.add(pos)
                positions.append(pos)
                break
        else:
            wanted = item_ids.count(item_id)
            have = sum(1 for i in order.items if i["item_id"] == item_id)
            if have:
                raise invalid(
                    "item_not_in_order",
                    f"Item {item_id} is {wanted} times in the request but {have} times in "
                    f"order {order.order_id}.",
                )
            raise invalid("item_not_in_order", f"Item {item_id} is not in order {order.order_id}.")
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


def cancel_order(session: Session, order_id: str, caller: str, body: CancelIn) -> dict[str, Any]:
    order = _load_order(session, order_id, caller, lock=True)
    _require_status(order, PENDING, "cancelled")
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
        method = methods.get(mid)
        if method is not None and method.source == "gift_card":
            method.balance_cents = (method.balance_cents or 0) + cents
    order.payment_history = order.payment_history + [
        _entry("refund", cents, mid) for mid, cents in refunds.items()
    ]
    order.status = CANCELLED
    order.cancel_reason = reason
    order.updated_at = utcnow()
    return order_view(order)


def change_order_address(
    session: Session, order_id: str, caller: str, body: AddressIn
) -> dict[str, Any]:
    order = _load_order(session, order_id, caller, lock=True)
    _require_status(order, PENDING, "modified")
    order.address = {f: getattr(body, f) for f in ADDRESS_FIELDS}
    order.updated_at = utcnow()
    return order_view(order)


def change_order_payment(
    session: Session, order_id: str, caller: str, body: PaymentIn
) -> dict[str, Any]:
    order = _load_order(session, order_id, caller, lock=True)
    _require_status(order, PENDING, "modified")
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
    new = methods[method.id]
    if new.source == "gift_card" and (new.balance_cents or 0) < amount:
        raise conflict(
            "insufficient_gift_card_balance",
            f"Gift card {new.id} has {to_dollars(new.balance_cents or 0):.2f}, less than the "
            f"order total {to_dollars(amount):.2f}.",
        )
    if new.source == "gift_card":
        new.balance_cents = (new.balance_cents or 0) - amount
    old = methods.get(old_id)
    if old is not None and old.source == "gift_card":
        old.balance_cents = (old.balance_cents or 0) + amount
    order.payment_history = history + [
        _entry("payment", amount, new.id),
        _entry("refund", amount, old_id),
    ]
    order.updated_at = utcnow()
    return order_view(order)


def modify_order_items(
    session: Session, order_id: str, caller: str, body: ItemsIn
) -> dict[str, Any]:
    order = _load_order(session, order_id, caller, lock=True)
    _require_status(order, PENDING, "modified")
    positions, variants, diff = _new_variants(session, order, body)
    method = _payment_method(session, order, body.payment_method_id)
    method = _lock_methods(session, [method.id])[method.id]
    if method.source == "gift_card" and (method.balance_cents or 0) < diff:
        raise conflict(
            "insufficient_gift_card_balance",
            f"Gift card {method.id} has {to_dollars(method.balance_cents or 0):.2f}, less than "
            f"the price difference {to_dollars(diff):.2f}.",
        )
    if method.source == "gift_card":
        method.balance_cents = (method.balance_cents or 0) - diff
    items = [dict(i) for i in order.items]
    for pos, variant in zip(positions, variants, strict=True):
        old = items[pos]
        items[pos] = {
            "name": old["name"],
            "product_id": old["product_id"],
            "item_id": variant.item_id,
            "price": to_dollars(variant.price_cents),
            "options": variant.options,
        }
    order.items = items
    order.payment_history = order.payment_history + [
        _entry("payment" if diff > 0 else "refund", abs(diff), method.id)
    ]
    order.status = PENDING_MODIFIED
    order.updated_at = utcnow()
    return order_view(order)


def return_items(session: Session, order_id: str, caller: str, body: ReturnIn) -> dict[str, Any]:
    order = _load_order(session, order_id, caller, lock=True)
    _require_status(order, DELIVERED, "returned")
    method = _payment_method(session, order, body.payment_method_id)
    original = next(
        (
            e["payment_method_id"]
            for e in order.payment_history
            if e["transaction_type"] == "payment"
        ),
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
    order.updated_at = utcnow()
    return order_view(order)


def exchange_items(
    session: Session, order_id: str, caller: str, body: ItemsIn
) -> dict[str, Any]:
    order = _load_order(session, order_id, caller, lock=True)
    _require_status(order, DELIVERED, "exchanged")
    _, _, diff = _new_variants(session, order, body)
    method = _payment_method(session, order, body.payment_method_id)
    if method.source == "gift_card" and (method.balance_cents or 0) < diff:
        raise conflict(
            "insufficient_gift_card_balance",
            f"Gift card {method.id} has {to_dollars(method.balance_cents or 0):.2f}, less than "
            f"the price difference {to_dollars(diff):.2f}.",
        )
    order.status = EXCHANGE_REQUESTED
    order.exchange_items = sorted(body.item_ids)
    order.exchange_new_items = sorted(body.new_item_ids)
    order.exchange_payment_method_id = method.id
    order.exchange_price_difference_cents = diff
    order.updated_at = utcnow()
    return order_view(order)


def change_customer_address(
    session: Session, user_id: str, caller: str, body: AddressIn
) -> dict[str, Any]:
    if user_id != caller:
        raise not_found("Customer")
    customer = session.scalar(
        select(Customer).where(Customer.user_id == user_id).with_for_update()
    )
    if customer is None:
        raise not_found("Customer")
    for field in ADDRESS_FIELDS:
        setattr(customer, field, getattr(body, field))
    return customer_view(session, customer)


def open_handoff(session: Session, body: HandoffIn) -> dict[str, Any]:
    import secrets

    if body.user_id is not None and session.get(Customer, body.user_id) is None:
        raise invalid("customer_not_found", f"No customer {body.user_id}.")
    ticket = Handoff(
        id="ho_" + secrets.token_hex(8),
        summary=body.summary,
        reason=body.reason or None,
        user_id=body.user_id,
        conversation_id=body.conversation_id or None,
        status="open",
        created_at=utcnow(),
    )
    session.add(ticket)
    session.flush()
    return handoff_view(ticket)


# ---------------------------------------------------------------- ratings


def _iso(moment: Any) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if moment.tzinfo else text + "Z"


def rating_view(rating: Rating) -> dict[str, Any]:
    return {
        "id": rating.id,
        "conversation_id": rating.conversation_id,
        "rating": rating.rating,
        "comment": rating.comment,
        "customer_id": rating.customer_id,
        "created_at": _iso(rating.created_at),
    }


def create_rating(session: Session, body: RatingIn) -> dict[str, Any]:
    """Store a rating; a conversation is rated once (409), so a re-sent form cannot count twice."""
    if body.customer_id is not None and session.get(Customer, body.customer_id) is None:
        raise invalid("customer_not_found", f"No customer {body.customer_id}.")
    taken = select(Rating.id).where(Rating.conversation_id == body.conversation_id)
    if session.scalar(taken) is not None:
        raise conflict("already_rated", "This conversation has already been rated.")
    rating = Rating(
        conversation_id=body.conversation_id,
        rating=body.rating,
        comment=body.comment or None,
        customer_id=body.customer_id,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():  # a concurrent insert for the same conversation (PostgreSQL)
            session.add(rating)
            session.flush()
    except IntegrityError:
        raise conflict("already_rated", "This conversation has already been rated.") from None
    return rating_view(rating)


def list_ratings(session: Session, limit: int) -> dict[str, Any]:
    """The newest ratings and a summary over all of them (for reports and dashboards)."""
    rows = session.scalars(
        select(Rating).order_by(Rating.created_at.desc(), Rating.id.desc()).limit(limit)
    ).all()
    counts = {int(value): int(n) for value, n in
              session.execute(select(Rating.rating, func.count()).group_by(Rating.rating))}
    distribution = {str(n): int(counts.get(n, 0)) for n in range(1, 6)}
    total = sum(distribution.values())
    average = (round(sum(int(k) * v for k, v in distribution.items()) / total, 2)
               if total else None)
    return {
        "ratings": [rating_view(r) for r in rows],
        "summary": {"count": total, "average": average, "distribution": distribution},
    }


def engine_name(engine: Engine) -> str:
    return engine.dialect.name


__all__ = ["ShopError"]
