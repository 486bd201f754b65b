"""An order, and the six changes docs/retail-rules.md allows (all scoped to the caller).

The writes differ only in path, body model and rule, so they are declared as one table. Each
runs through the risk check (shop/risk.py, docs/risk.md): there is no other route to the rules,
so a flagged change is refused (409 `risk_review_required`) whoever asks. (No
`from __future__ import annotations` here: FastAPI must see each body model as a real type.)
"""

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shop import risk, service
from shop.deps import Caller, IdemKey, OrderId, StoreDep
from shop.idempotency import idempotent_write
from shop.routes.common import READ, WRITE, WRITE_ERRORS
from shop.schemas import (
    AddressIn,
    CancelIn,
    ItemsIn,
    OrderOut,
    PaymentIn,
    ReturnIn,
    RiskRefusalOut,
)

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


CHECKED_WRITE: dict[str, Any] = {
    **WRITE,
    "responses": {**WRITE_ERRORS, 409: {
        "model": RiskRefusalOut,
        "description": "The order's state forbids it (code says why; `error` has only `code` "
        "and `message`), or `risk_review_required`: the change scored at or over the risk "
        "threshold and was not done (`error` also has `decision_id`, `score`, `threshold`, "
        "`reasons`; docs/risk.md)"}},
}


def _add_write(suffix: str, name: str, operation: str, model: type[BaseModel], rule: Rule) -> None:
    async def write(order_id: OrderId, body: model, caller: Caller,  # type: ignore[valid-type]
                    store: StoreDep, idempotency_key: IdemKey = None) -> OrderOut:
        def change(session: Session) -> OrderOut:
            return risk.checked_write(session, store, operation, order_id, caller, body, rule)

        try:
            return await idempotent_write(store, f"{operation} {order_id}", caller, body,
                                          idempotency_key, change)
        except risk.RiskRefused as refusal:  # the first answer only: a replay is `Replayed`
            await run_in_threadpool(risk.record_refusal, store, refusal)
            raise

    description = (inspect.getdoc(rule) or "") + (
        "\n\nRisk-checked (docs/risk.md): a change scored at or over the threshold is not done, "
        "409 `risk_review_required` with the reasons.")
    router.post(f"/{{order_id}}/{suffix}", name=name, description=description,
                **CHECKED_WRITE)(write)


for _write in WRITES:
    _add_write(*_write)
