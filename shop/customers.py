"""Customer profiles and the default address (scoped to the caller); identifying a shopper is
shop/identification.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import ADDRESS_FIELDS, Customer
from shop.errors import not_found
from shop.schemas import AddressIn, CustomerOut
from shop.views import customer_view


def _own_customer(session: Session, user_id: str, caller: str, lock: bool = False) -> Customer:
    """The caller's own profile; anyone else's answers as unknown (and is never locked)."""
    if user_id != caller:
        raise not_found("Customer")
    stmt = select(Customer).where(Customer.user_id == user_id)
    customer = session.scalar(stmt.with_for_update() if lock else stmt)
    if customer is None:
        raise not_found("Customer")
    return customer


def get_customer(session: Session, user_id: str, caller: str) -> CustomerOut:
    return customer_view(session, _own_customer(session, user_id, caller))


def change_customer_address(
    session: Session, user_id: str, caller: str, body: AddressIn
) -> CustomerOut:
    """New default address; the orders keep the address they were placed with."""
    customer = _own_customer(session, user_id, caller, lock=True)
    for field in ADDRESS_FIELDS:
        setattr(customer, field, getattr(body, field))
    return customer_view(session, customer)
