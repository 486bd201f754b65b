"""Customer profiles: identifying a shopper, and the default address (scoped to the caller)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import ADDRESS_FIELDS, Customer, fold
from shop.errors import invalid, not_found
from shop.schemas import AddressIn, CustomerOut, LookupOut
from shop.views import customer_view


def lookup_customer(
    session: Session,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    zip_code: str | None,
) -> LookupOut:
    """Identify by email, or by first name + last name + zip (case/accent-insensitive)."""
    if email is not None and email.strip():
        match = Customer.email_key == fold(email)
    elif first_name and last_name and zip_code and first_name.strip() and last_name.strip():
        match = (Customer.first_name_key == fold(first_name)) & (
            Customer.last_name_key == fold(last_name)) & (Customer.zip == zip_code.strip())
    else:
        raise invalid(
            "lookup_parameters",
            "Give either email, or first_name, last_name and zip.",
        )
    user_id = session.scalar(select(Customer.user_id).where(match).limit(1))
    if user_id is None:
        raise not_found("Customer")
    return LookupOut(user_id=user_id)


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
