"""Identifying a shopper, the profile and the default address (scoped by X-Customer-Id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from shop import customers, identification
from shop.deps import Caller, ClientId, CustomerId, IdemKey, StoreDep, refusing
from shop.idempotency import idempotent_write
from shop.routes.common import ERRORS, READ, WRITE
from shop.schemas import AddressIn, CustomerOut, ErrorOut, LookupOut, clean_lookup

router = APIRouter(prefix="/customers", tags=["customers"])
Lookup = refusing(clean_lookup)


LOOKUP_ERRORS = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "No customer with these facts (the same answer "
          "for an unknown email and a wrong zip); counted as a failed attempt"},
    422: {"model": ErrorOut, "description": "Not two facts (`lookup_parameters`), or invalid "
          "input; not counted"},
    429: {"model": ErrorOut, "description": "`identification_locked`: too many failed attempts "
          "for this account or client in the window; `Retry-After` gives the seconds to wait",
          "headers": {"Retry-After": {"schema": {"type": "integer"},
                                      "description": "Seconds until an attempt is allowed"}}},
}


@router.get("/lookup", responses=LOOKUP_ERRORS, response_model_exclude_unset=True)
async def lookup(
    store: StoreDep,
    email: Annotated[str | None, Query(max_length=320), Lookup] = None,
    first_name: Annotated[str | None, Query(max_length=200), Lookup] = None,
    last_name: Annotated[str | None, Query(max_length=200), Lookup] = None,
    zip: Annotated[str | None, Query(max_length=40), Lookup] = None,  # noqa: A002 - contract name
    client_id: ClientId = None,
) -> LookupOut:
    """Identify a shopper by email + zip, or by first name + last name + zip.

    Failed attempts count per account and per `X-Client-Id`; at the limit the lookup is
    refused (429) whatever the facts, until the window lets the oldest failure go.
    """
    query = identification.lookup_query(email, first_name, last_name, zip)
    return await run_in_threadpool(identification.identify, store, query, client_id)


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
