"""The agent desk's handoff API: the queue, claim / reply / release / close, audit, stats.

Every desk call needs the bearer token and an agent session (X-Agent-Id + X-Agent-Token), and
is refused with X-Customer-Id (403): a shopper's path can never act as an agent. `/desk/stats`
is the operator's report (bearer token, no shopper header), as `GET /ratings` is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shop import desk
from shop.deps import AgentDep, HandoffId, IdemKey, NoShopper, StoreDep
from shop.errors import invalid
from shop.idempotency import idempotent_write
from shop.schemas import (
    AgentOut,
    AuditListOut,
    CloseIn,
    DeskHandoffListOut,
    DeskHandoffOut,
    DeskStatsOut,
    ErrorOut,
    NoBody,
    ReleaseIn,
)

router = APIRouter(prefix="/desk", tags=["agent desk"])

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Bearer token, or agent session, missing or wrong"},
    403: {"model": ErrorOut, "description": "A shopper's request (X-Customer-Id)"},
    404: {"model": ErrorOut, "description": "Unknown ticket"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}
WRITE_ERRORS = {
    **READ_ERRORS,
    409: {"model": ErrorOut, "description": "The ticket's state forbids it (code says why)"},
    413: {"model": ErrorOut, "description": "Body too large"},
}
Status = Literal["open", "claimed", "closed"]


async def _write(store: Any, action: str, handoff_id: str, agent: AgentOut, body: BaseModel,
                 key: str | None,
                 change: Callable[[Session, datetime], DeskHandoffOut]) -> DeskHandoffOut:
    """One transaction; the agent is part of the Idempotency-Key's fingerprint."""
    return await idempotent_write(store, f"desk-{action} {handoff_id}", f"agent:{agent.agent_id}",
                                  body, key, lambda s: change(s, store.clock()))


@router.get("/handoffs", responses=READ_ERRORS)
async def handoffs(agent: AgentDep, store: StoreDep, status: Status | None = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> DeskHandoffListOut:
    """Tickets newest first (all, or of one status), with waiting time, customer and holder."""
    return await store.query(desk.list_handoffs, status, limit, store.clock())


@router.get("/handoffs/{handoff_id}", responses=READ_ERRORS)
async def handoff(handoff_id: HandoffId, agent: AgentDep, store: StoreDep) -> DeskHandoffOut:
    """One ticket as the desk sees it."""
    return await store.query(desk.get_handoff, handoff_id, store.clock())


@router.post("/handoffs/{handoff_id}/claim", responses=WRITE_ERRORS)
async def claim(handoff_id: HandoffId, agent: AgentDep, store: StoreDep,
                idempotency_key: IdemKey = None) -> DeskHandoffOut:
    """Take an open ticket. Two agents at once: one 200, the other 409 `already_claimed`
    (with `claimed_by`); the holder claiming again: 200, nothing changes. 409 `handoff_closed`."""
    return await _write(store, "claim", handoff_id, agent, NoBody(), idempotency_key,
                        lambda s, now: desk.claim(s, handoff_id, agent, now))


@router.post("/handoffs/{handoff_id}/reply-recorded", responses=WRITE_ERRORS)
async def reply_recorded(handoff_id: HandoffId, agent: AgentDep, store: StoreDep,
                         idempotency_key: IdemKey = None) -> DeskHandoffOut:
    """The claimant's reply reached the shopper: sets `first_agent_reply_at` once (later calls
    keep it). 409 `not_claimed`, `claimed_by_other`, `handoff_closed`."""
    return await _write(store, "reply", handoff_id, agent, NoBody(), idempotency_key,
                        lambda s, now: desk.record_reply(s, handoff_id, agent, now))


@router.post("/handoffs/{handoff_id}/release", responses=WRITE_ERRORS)
async def release(handoff_id: HandoffId, agent: AgentDep, store: StoreDep,
                  body: ReleaseIn | None = None,
                  idempotency_key: IdemKey = None) -> DeskHandoffOut:
    """The claimant hands the conversation back to the bot (optional `note`, kept in the
    audit); the ticket is open again. 409 `not_claimed`, `claimed_by_other`, `handoff_closed`."""
    given = body or ReleaseIn()
    return await _write(store, "release", handoff_id, agent, given, idempotency_key,
                        lambda s, now: desk.release(s, handoff_id, agent, given, now))


@router.post("/handoffs/{handoff_id}/close", responses=WRITE_ERRORS)
async def close(handoff_id: HandoffId, body: CloseIn, agent: AgentDep, store: StoreDep,
                idempotency_key: IdemKey = None) -> DeskHandoffOut:
    """Close with an outcome: an open ticket (any agent) or one the caller holds; final.
    409 `claimed_by_other`, `handoff_closed`."""
    return await _write(store, "close", handoff_id, agent, body, idempotency_key,
                        lambda s, now: desk.close(s, handoff_id, agent, body, now))


@router.get("/audit", responses=READ_ERRORS)
async def audit(agent: AgentDep, store: StoreDep,
                handoff_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                agent_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> AuditListOut:
    """Agent actions newest first: of one ticket, of one agent, or all."""
    return await store.query(desk.audit, handoff_id, agent_id, limit)


STATS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    403: READ_ERRORS[403],
    422: READ_ERRORS[422],
}


@router.get("/stats", responses=STATS_ERRORS)
async def stats(store: StoreDep, _shopper: Annotated[None, NoShopper],
                since: datetime | None = None) -> DeskStatsOut:
    """Tickets by status, median / p90 time to first claim and to first agent reply (from
    creation), outcomes; tickets created from `since` (ISO 8601) on, or all. Bearer token only
    (the operator's report, as `GET /ratings`); never with X-Customer-Id."""
    if since is not None and since.tzinfo is None:
        raise invalid("validation_error", "since needs a time zone (e.g. 2025-03-01T00:00:00Z).")
    return await store.query(desk.stats, since and since.astimezone(timezone.utc))
