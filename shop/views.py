"""Orders and customers as the documented answer models (the seed's field names and shapes).

Optional fields are only set when the row has them, and routes serialise with
`response_model_exclude_unset`, so an answer never grows keys the shop did not send before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import ADDRESS_FIELDS, Customer, Order, PaymentMethod, to_dollars
from shop.schemas import CustomerOut, OrderOut, PaymentMethodOut


def order_view(order: Order) -> OrderOut:
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
    return OrderOut.model_validate(view)


def method_view(method: PaymentMethod) -> PaymentMethodOut:
    """Cards show brand and last four only; gift cards their balance."""
    view: dict[str, Any] = {"source": method.source, "id": method.id}
    if method.source == "credit_card":
        view["brand"] = method.brand
        view["last_four"] = method.last_four
    if method.source == "gift_card":
        view["balance"] = to_dollars(method.balance_cents or 0)
    return PaymentMethodOut.model_validate(view)


def customer_view(session: Session, customer: Customer) -> CustomerOut:
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
    return CustomerOut.model_validate({
        "user_id": customer.user_id,
        "name": {"first_name": customer.first_name, "last_name": customer.last_name},
        "address": {f: getattr(customer, f) for f in ADDRESS_FIELDS},
        "email": customer.email,
        "payment_methods": {m.id: method_view(m) for m in methods},
        "orders": list(order_ids),
    })
