"""Risk control's report and reviews (shop/risk.py, docs/risk.md).

`GET /risk/stats` is the operator's report (bearer token only, as `/desk/stats`; never with
X-Customer-Id). The decisions and their review need an agent session, as the desk does: the
shopper's path (X-Customer-Id, no agent password) can neither read them nor approve a change.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from shop import risk
from shop.db import RiskDecision
from shop.deps import AgentDep, IdemKey, NoShopper, StoreDep, refusing
from shop.errors import ShopError, invalid
from shop.idempotency import idempotent_write
from shop.routes.desk import READ_ERRORS, STATS_ERRORS, WRITE_ERRORS
from shop.routes.orders import WRITES
from shop.schemas import (
    AgentOut,
    ErrorOut,
    OrderOut,
    RiskDecisionListOut,
    RiskDecisionOut,
    RiskReviewIn,
    RiskReviewOut,
    RiskStatsOut,
    clean_path_id,
)

router = APIRouter(prefix="/risk", tags=["risk control"])
RULES = {operation: (model, rule) for _suffix, _name, operation, model, rule in WRITES}
REVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    404: {"model": ErrorOut, "description": "Unknown decision (`risk_decision_not_found`)"},
    409: {"model": ErrorOut, "description": "`risk_decision_not_refused` (its change was done), "
          "`risk_decision_reviewed` (with `review`, `reviewed_by`), or, approving, the store's "
          "rule refusing the change now (e.g. `order_not_delivered`): nothing changes"},
}


def _decision_id(value: str) -> str:
    try:
        return clean_path_id(value, "Decision")
    except ShopError:
        raise risk.decision_not_found() from None


DecisionId = Annotated[str, Path(), refusing(_decision_id)]


def _utc(since: datetime | None) -> datetime | None:
    if since is not None and since.tzinfo is None:
        raise invalid("validation_error", "since needs a time zone (e.g. 2025-03-01T00:00:00Z).")
    return since and since.astimezone(timezone.utc)


@router.get("/stats", responses=STATS_ERRORS)
async def stats(store: StoreDep, _shopper: Annotated[None, NoShopper],
                since: datetime | None = None) -> RiskStatsOut:
    """Risk decisions from `since` (ISO 8601 with zone) on, or all: how many, how many flagged
    (flag rate overall, per operation and per rule), the reviews of refused changes. Bearer
    token only (the operator's report); never with X-Customer-Id."""
    return await store.query(risk.stats, store.settings.risk, _utc(since))


@router.get("/decisions", responses=READ_ERRORS)
async def decisions(agent: AgentDep, store: StoreDep,
                    decision: Literal["allowed", "flagged"] | None = None,
                    review: Literal["pending", "approved", "rejected"] | None = None,
                    user_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                    since: datetime | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> RiskDecisionListOut:
    """Decisions newest first, with score, reasons and the change's body; `review=pending`:
    the refused changes no agent has approved or rejected yet."""
    return await store.query(risk.list_decisions, decision, review, user_id, _utc(since), limit)


@router.get("/decisions/{decision_id}", responses=READ_ERRORS)
async def decision(decision_id: DecisionId, agent: AgentDep, store: StoreDep) -> RiskDecisionOut:
    """One decision."""
    return await store.query(risk.get_decision, decision_id)


async def _review(store: Any, action: str, decision_id: str, agent: AgentOut,
                  body: RiskReviewIn, key: str | None, approve: bool) -> RiskReviewOut:
    def change(session: Session) -> RiskReviewOut:
        now = store.clock()
        session.info[risk.NOW_KEY] = now

        def run(found: RiskDecision) -> OrderOut:
            model, rule = RULES[found.operation]
            return rule(session, found.order_id, found.user_id,
                        model.model_validate(found.request))

        reviewed, order = risk.review(session, decision_id, agent.agent_id, body, now,
                                      run if approve else None)
        return RiskReviewOut(decision=reviewed, order=order)

    return await idempotent_write(store, f"risk-{action} {decision_id}",
                                  f"agent:{agent.agent_id}", body, key, change)


@router.post("/decisions/{decision_id}/approve", responses=REVIEW_ERRORS,
             response_model_exclude_unset=True)
async def approve(decision_id: DecisionId, agent: AgentDep, store: StoreDep,
                  body: RiskReviewIn | None = None,
                  idempotency_key: IdemKey = None) -> RiskReviewOut:
    """An agent approves a refused change: it is done now, exactly as it was asked (the store's
    rules checked again; no risk check, the agent is the review), and the decision records the
    agent, the time and the optional `note`. Agent session required."""
    return await _review(store, "approve", decision_id, agent, body or RiskReviewIn(),
                         idempotency_key, approve=True)


@router.post("/decisions/{decision_id}/reject", responses=REVIEW_ERRORS,
             response_model_exclude_unset=True)
async def reject(decision_id: DecisionId, agent: AgentDep, store: StoreDep,
                 body: RiskReviewIn | None = None,
                 idempotency_key: IdemKey = None) -> RiskReviewOut:
    """An agent rejects a refused change: nothing is done, the decision records the verdict.
    Agent session required."""
    return await _review(store, "reject", decision_id, agent, body or RiskReviewIn(),
                         idempotency_key, approve=False)
