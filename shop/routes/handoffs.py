"""Human-agent tickets: the assistant opens one when it cannot help further.

A ticket naming a customer (`user_id`) needs that customer's X-Customer-Id; a ticket is read
back only with its customer's X-Customer-Id.
"""

from __future__ import annotations

from fastapi import APIRouter

from shop import support
from shop.deps import Caller, HandoffId, IdemKey, OptionalCaller, StoreDep
from shop.idempotency import idempotent_write
from shop.routes.common import READ, WRITE
from shop.schemas import HandoffIn, HandoffOut

router = APIRouter(prefix="/handoffs", tags=["handoffs"])


@router.post("", status_code=201, **WRITE)
async def open_handoff(body: HandoffIn, store: StoreDep, caller: OptionalCaller,
                      idempotency_key: IdemKey = None) -> HandoffOut:
    """Open a human-agent ticket with a summary; returns its id.

    Anonymous, or for the caller: `user_id` must equal X-Customer-Id (both or neither).
    """
    support.check_named_customer(body.user_id, caller, "user_id")
    return await idempotent_write(store, "handoff", caller, body, idempotency_key,
                                  lambda s: support.open_handoff(s, body, store.clock()),
                                  ok_status=201)


@router.get("/{handoff_id}", **READ)
async def handoff(handoff_id: HandoffId, caller: Caller, store: StoreDep) -> HandoffOut:
    """The ticket, if its customer is the caller; any other is a 404."""
    return await store.query(support.get_handoff, handoff_id, caller)
