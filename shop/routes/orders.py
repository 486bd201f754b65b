"""An order, and the six changes docs/retail-rules.md allows (all scoped to the caller).

The writes differ only in path, body model and rule, so they are declared as one table. (No
`from __future__ import annotations` here: FastAPI must see each body model as a real type.)
"""

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shop import service
from shop.deps import Caller, IdemKey, OrderId, StoreDep
from shop.idempotency import idempotent_write
from shop.routes.common import READ, WRITE
from shop.schemas import AddressIn, CancelIn, ItemsIn, OrderOut, PaymentIn, ReturnIn

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("/{order_id}", **READ)
async def order(order_id: OrderId, caller: Caller, store: StoreDep) -> OrderOut:
    """The order with the seed's fields (`#` optional in the id; `%23` when given)."""
    return await store.query(service.get_order, order_id, caller)


Rule = Callable[[Session, str, str, Any], OrderOut]

# Path suffix, route name (the operation id), name in the request fingerprint, body, rule; the
# rule's docstring describes the operation.
WRITES: list[tuple[str, str, str, type[BaseModel], Rule]] = [
    ("cancel", "cancel", "cancel", CancelIn, service.cancel_order),
    ("address", "order_address", "order-address", AddressIn, service.change_order_address),
    ("payment", "order_payment", "payment", PaymentIn, service.change_order_payment),
    ("items", "order_items", "items", ItemsIn, service.modify_order_items),
    ("return", "order_return", "return", ReturnIn, service.return_items),
    ("exchange", "order_exchange", "exchange", ItemsIn, service.exchange_items),
]


def _add_write(suffix: str, name: str, operation: str, model: type[BaseModel], rule: Rule) -> None:
    async def write(order_id: OrderId, body: model, caller: Caller,  # type: ignore[valid-type]
                    store: StoreDep, idempotency_key: IdemKey = None) -> OrderOut:
        return await idempotent_write(store, f"{operation} {order_id}", caller, body,
                                      idempotency_key, lambda s: rule(s, order_id, caller, body))

    router.post(f"/{{order_id}}/{suffix}", name=name, description=inspect.getdoc(rule),
                **WRITE)(write)


for _write in WRITES:
    _add_write(*_write)
