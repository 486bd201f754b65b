"""The agent desk's work on handoff tickets: the queue, claims, first replies, releases, closes.

A ticket's states (column `status`):

```
            claim (any agent)              close (the claimant)
   open ───────────────────────▶ claimed ─────────────────────▶ closed (final)
    ▲  │                           │  │
    │  └───── close (any agent) ───┼──┼──────────────────────▶ closed
    └──────── release (claimant) ──┘  └ reply-recorded (claimant): first_agent_reply_at
```

- **claim**: `open` → `claimed` by the caller. The ticket row is locked first (PostgreSQL:
  `SELECT … FOR UPDATE`; SQLite: the write transaction's `BEGIN IMMEDIATE`), so of two agents
  claiming one ticket exactly one wins; the other gets 409 `already_claimed` naming the holder.
  Claiming a ticket one already holds answers 200 and changes nothing.
- **reply-recorded**: the claimant's first reply to the shopper; the first time is kept.
- **release**: the claimant hands the conversation back to the bot; the ticket is `open` again
  (queued anew, claimable by anyone), the note goes to the audit.
- **close**: with an outcome (`resolved`, `unresolved`, `no_reply`), from `open` (any agent: the
  shopper left before anyone claimed it) or `claimed` (the claimant only). `closed` is final.

Every refused transition is a 409 with a code saying why (`handoff_closed`, `not_claimed`,
`claimed_by_other`, `already_claimed`), raised before any change. Every change writes one row
of `desk_audit` (agent id, action, ticket, time, note) in the same transaction.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from shop.db import Agent, Customer, DeskAudit, Handoff, aware
from shop.errors import ShopError, conflict, not_found
from shop.schemas import (
    AgentOut,
    AuditEntryOut,
    AuditListOut,
    CloseIn,
    DeskHandoffListOut,
    DeskHandoffOut,
    DeskStatsOut,
    Durations,
    ReleaseIn,
)

STATUSES = ("open", "claimed", "closed")
OUTCOMES = ("resolved", "unresolved", "no_reply")

_Holder = aliased(Agent)


def _ticket_query() -> Select[Any]:
    """Tickets with their customer's name and the holder's display name."""
    return (
        select(Handoff, Customer.first_name, Customer.last_name, _Holder.display_name)
        .outerjoin(Customer, Customer.user_id == Handoff.user_id)
        .outerjoin(_Holder, _Holder.id == Handoff.claimed_by)
    )


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, int((aware(end) - aware(start)).total_seconds()))


def _out(ticket: Handoff, first: str | None, last: str | None, holder: str | None,
         now: datetime) -> DeskHandoffOut:
    queued = aware(ticket.queued_at or ticket.created_at)
    if ticket.status == "open":
        waiting: int | None = _seconds(queued, now)
    elif ticket.status == "claimed" and ticket.claimed_at is not None:
        waiting = _seconds(queued, ticket.claimed_at)
    else:
        waiting = None
    name = " ".join(p for p in (first, last) if p) or None
    return DeskHandoffOut(
        id=ticket.id, status=ticket.status, created_at=ticket.created_at,
        waiting_seconds=waiting, summary=ticket.summary, reason=ticket.reason,
        user_id=ticket.user_id, customer_name=name, conversation_id=ticket.conversation_id,
        queued_at=queued, claimed_by=ticket.claimed_by, claimed_by_name=holder,
        claimed_at=ticket.claimed_at, first_agent_reply_at=ticket.first_agent_reply_at,
        closed_at=ticket.closed_at, closed_by=ticket.closed_by, outcome=ticket.outcome,
    )


def _describe(session: Session, handoff_id: str, now: datetime) -> DeskHandoffOut:
    row = session.execute(_ticket_query().where(Handoff.id == handoff_id)).first()
    if row is None:
        raise not_found("Handoff")
    return _out(*row, now)


def list_handoffs(session: Session, status: str | None, limit: int,
                  now: datetime) -> DeskHandoffListOut:
    """Newest first; all statuses, or one."""
    query = _ticket_query()
    if status is not None:
        query = query.where(Handoff.status == status)
    rows = session.execute(query.order_by(Handoff.created_at.desc(), Handoff.id.desc())
                           .limit(limit)).all()
    return DeskHandoffListOut(handoffs=[_out(*row, now) for row in rows])


def get_handoff(session: Session, handoff_id: str, now: datetime) -> DeskHandoffOut:
    return _describe(session, handoff_id, now)


# ---------------------------------------------------------------- transitions


def _locked(session: Session, handoff_id: str) -> Handoff:
    ticket = session.scalar(select(Handoff).where(Handoff.id == handoff_id).with_for_update())
    if ticket is None:
        raise not_found("Handoff")
    return ticket


def _holder_name(session: Session, agent_id: str | None) -> str | None:
    return None if agent_id is None else session.scalar(
        select(Agent.display_name).where(Agent.id == agent_id))


def _refuse_closed(ticket: Handoff) -> None:
    if ticket.status == "closed":
        raise conflict("handoff_closed",
                       f"This ticket was closed ({ticket.outcome}); a closed ticket is final.",
                       outcome=ticket.outcome)


def _require_claimant(session: Session, ticket: Handoff, agent: AgentOut) -> None:
    """Only the agent holding a claimed ticket may reply on it or release it."""
    _refuse_closed(ticket)
    if ticket.status != "claimed":
        raise conflict("not_claimed", "Nobody has claimed this ticket: claim it first.")
    if ticket.claimed_by != agent.agent_id:
        raise _held_by(session, ticket, "claimed_by_other")


def _held_by(session: Session, ticket: Handoff, code: str) -> ShopError:
    name = _holder_name(session, ticket.claimed_by)
    return conflict(code, f"Another agent ({name or ticket.claimed_by}) has this ticket.",
                    claimed_by=ticket.claimed_by, claimed_by_name=name,
                    claimed_at=aware(ticket.claimed_at).isoformat().replace("+00:00", "Z")
                    if ticket.claimed_at else None)


def _audit(session: Session, agent: AgentOut, action: str, ticket: Handoff, now: datetime,
           note: str | None = None, outcome: str | None = None) -> None:
    session.add(DeskAudit(at=now, agent_id=agent.agent_id, action=action, handoff_id=ticket.id,
                          note=note or None, outcome=outcome))


def claim(session: Session, handoff_id: str, agent: AgentOut, now: datetime) -> DeskHandoffOut:
    """Take an open ticket (the conversation is the caller's until released or closed).

    Exactly one of several agents claiming at once wins; the others get 409 `already_claimed`
    with `claimed_by`. The holder claiming again gets 200 and nothing changes.
    """
    ticket = _locked(session, handoff_id)
    _refuse_closed(ticket)
    if ticket.status == "claimed":
        if ticket.claimed_by == agent.agent_id:
            return _describe(session, handoff_id, now)
        raise _held_by(session, ticket, "already_claimed")
    ticket.status, ticket.claimed_by, ticket.claimed_at = "claimed", agent.agent_id, now
    ticket.first_claimed_at = ticket.first_claimed_at or now
    _audit(session, agent, "claim", ticket, now)
    session.flush()
    return _describe(session, handoff_id, now)


def record_reply(session: Session, handoff_id: str, agent: AgentOut,
                 now: datetime) -> DeskHandoffOut:
    """The claimant's reply reached the shopper: the first time is kept (later calls: 200)."""
    ticket = _locked(session, handoff_id)
    _require_claimant(session, ticket, agent)
    if ticket.first_agent_reply_at is None:
        ticket.first_agent_reply_at = now
        _audit(session, agent, "reply_recorded", ticket, now)
        session.flush()
    return _describe(session, handoff_id, now)


def release(session: Session, handoff_id: str, agent: AgentOut, body: ReleaseIn,
            now: datetime) -> DeskHandoffOut:
    """The claimant hands the conversation back to the bot: open again, queued anew."""
    ticket = _locked(session, handoff_id)
    _require_claimant(session, ticket, agent)
    ticket.status, ticket.claimed_by, ticket.claimed_at, ticket.queued_at = (
        "open", None, None, now)
    _audit(session, agent, "release", ticket, now, note=body.note)
    session.flush()
    return _describe(session, handoff_id, now)


def close(session: Session, handoff_id: str, agent: AgentOut, body: CloseIn,
          now: datetime) -> DeskHandoffOut:
    """Close with an outcome: an open ticket by any agent, a claimed one by its claimant."""
    ticket = _locked(session, handoff_id)
    _refuse_closed(ticket)
    if ticket.status == "claimed" and ticket.claimed_by != agent.agent_id:
        raise _held_by(session, ticket, "claimed_by_other")
    ticket.status, ticket.closed_at, ticket.closed_by, ticket.outcome = (
        "closed", now, agent.agent_id, body.outcome)
    _audit(session, agent, "close", ticket, now, note=body.note, outcome=body.outcome)
    session.flush()
    return _describe(session, handoff_id, now)


# ---------------------------------------------------------------- audit and stats


def audit(session: Session, handoff_id: str | None, agent_id: str | None,
          limit: int) -> AuditListOut:
    query = select(DeskAudit)
    if handoff_id is not None:
        query = query.where(DeskAudit.handoff_id == handoff_id)
    if agent_id is not None:
        query = query.where(DeskAudit.agent_id == agent_id)
    rows = session.scalars(query.order_by(DeskAudit.at.desc(), DeskAudit.id.desc())
                           .limit(limit)).all()
    return AuditListOut(entries=[AuditEntryOut.model_validate(r, from_attributes=True)
                                 for r in rows])


def durations(values: list[float]) -> Durations:
    """Count, median and nearest-rank 90th percentile, in seconds (0.1 s)."""
    if not values:
        return Durations(count=0, median_seconds=None, p90_seconds=None)
    ordered = sorted(values)
    p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]
    return Durations(count=len(ordered), median_seconds=round(statistics.median(ordered), 1),
                     p90_seconds=round(p90, 1))


def stats(session: Session, since: datetime | None) -> DeskStatsOut:
    """Counts by status, time to first claim / first agent reply, outcomes (`make report`)."""
    query = select(Handoff.status, Handoff.created_at, Handoff.first_claimed_at,
                   Handoff.first_agent_reply_at, Handoff.outcome)
    counted = select(Handoff.status, func.count()).group_by(Handoff.status)
    outcomes = select(Handoff.outcome, func.count()).where(
        Handoff.status == "closed").group_by(Handoff.outcome)
    if since is not None:
        query = query.where(Handoff.created_at >= since)
        counted = counted.where(Handoff.created_at >= since)
        outcomes = outcomes.where(Handoff.created_at >= since)
    by_status = {str(s): int(n) for s, n in session.execute(counted)}
    by_outcome = {str(o): int(n) for o, n in session.execute(outcomes) if o is not None}
    to_claim: list[float] = []
    to_reply: list[float] = []
    for _status, created, claimed, replied, _outcome in session.execute(
            query.where((Handoff.first_claimed_at.is_not(None))
                        | (Handoff.first_agent_reply_at.is_not(None)))):
        if claimed is not None:
            to_claim.append(max(0.0, (aware(claimed) - aware(created)).total_seconds()))
        if replied is not None:
            to_reply.append(max(0.0, (aware(replied) - aware(created)).total_seconds()))
    handoffs = {s: by_status.get(s, 0) for s in STATUSES}
    handoffs["total"] = sum(by_status.values())
    return DeskStatsOut(
        since=since, handoffs=handoffs, time_to_claim=durations(to_claim),
        time_to_first_reply=durations(to_reply),
        outcomes={o: by_outcome.get(o, 0) for o in OUTCOMES},
    )
