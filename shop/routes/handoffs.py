"""Human-agent tickets: the assistant opens one when it cannot help further."""

from __future__ import annotations

from fastapi import APIRouter

from shop import support
from shop.deps import HandoffId, IdemKey, StoreDep
from shop.idempotency import idempotent_write
from shop.routes.common import READ, WRITE
from shop.schemas import HandoffIn, HandoffOut

router = APIRouter(prefix="/handoffs", tags=["handoffs"])


@router.post("", status_code=201, **WRITE)
async def open_handoff(body: HandoffIn, store: StoreDep,
                      idempotency_key: IdemKey = None) -> HandoffOut:
    """Open a human-agent ticket with a summary; returns its id."""
    return await idempotent_write(store, "handoff", None, body, idempotency_key,
                                  lambda s: support.open_handoff(s, body), ok_status=201)


@router.get("/{handoff_id}", **READ)
async def handoff(handoff_id: HandoffId, store: StoreDep) -> HandoffOut:
    return await store.query(support.get_handoff, handoff_id)
