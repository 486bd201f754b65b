"""Identifying a shopper, the profile and the default address (scoped by X-Customer-Id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shop import customers
from shop.deps import Caller, CustomerId, IdemKey, StoreDep, refusing
from shop.idempotency import idempotent_write
from shop.routes.common import READ, WRITE
from shop.schemas import AddressIn, CustomerOut, LookupOut, clean_lookup

router = APIRouter(prefix="/customers", tags=["customers"])
Lookup = refusing(clean_lookup)


@router.get("/lookup", **READ)
async def lookup(
    store: StoreDep,
    email: Annotated[str | None, Query(max_length=320), Lookup] = None,
    first_name: Annotated[str | None, Query(max_length=200), Lookup] = None,
    last_name: Annotated[str | None, Query(max_length=200), Lookup] = None,
    zip: Annotated[str | None, Query(max_length=40), Lookup] = None,  # noqa: A002 - contract name
) -> LookupOut:
    """Identify a shopper by email, or by first name + last name + zip."""
    return await store.query(customers.lookup_customer, email, first_name, last_name, zip)


@router.get("/{user_id}", **READ)
async def customer(user_id: CustomerId, caller: Caller, store: StoreDep) -> CustomerOut:
    """Profile: name, email, address, payment methods (cards: brand + last four), orders."""
    return await store.query(customers.get_customer, user_id, caller)


@router.put("/{user_id}/address", **WRITE)
async def customer_address(user_id: CustomerId, body: AddressIn, caller: Caller,
                           store: StoreDep, idempotency_key: IdemKey = None) -> CustomerOut:
    """New default address of the customer; existing orders keep theirs."""
    return await idempotent_write(
        store, f"address {user_id}", caller, body, idempotency_key,
        lambda s: customers.change_customer_address(s, user_id, caller, body))
