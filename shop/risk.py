"""Risk control on order changes: a transparent score from rules and the customer's history.

Every order change the shopper's path can make (`POST /orders/{id}/cancel|address|payment|
items|return|exchange`) runs through :func:`checked_write`: the store's rule runs first (a
refusal stays what it was: 404, 409, 422), then the change is scored, in the same transaction
and under the same locks, from the customer's history in this database:

- `returns_30d`: a return/exchange that is the 3rd or later in 30 days (this one counted):
  100 points per return beyond 2;
- `returns_90d`: ... the 4th or later in 90 days: 50 per return beyond 3;
- `refund_value_30d`: refunds requested in 30 days (this one counted) reach $3,000: 30;
- `gift_card_refund`: this change refunds money to a gift card that did not pay the order: 30;
- `gift_card_refunds_90d`: ... and earlier refunds (90 days) did the same: 70 per earlier one;
- `identification_failures`: 3 or more failed identifications on the account in 24 h, and
  this change is not a cancel (which only refunds each method what it paid): 100;
- `address_change`: an address (the default one or an order's) changed in the last 24 h and
  this change ships goods or credits a gift card: 70;
- `high_value`: the change is worth $1,000 or more (not for a cancel): 30.

The score is the sum; at the threshold (100) the change is **flagged**. Enforced (the default
mode), a flagged change is not done: 409 `risk_review_required` with the reasons, the order
untouched. Every decision is a row of `risk_decisions`; an allowed one is written with the
change, a refused one right after the refusal's transaction (which rolls back everything it
did). The rules on the change alone (`gift_card_refund`, `refund_value_30d`, `high_value`)
add up to 90 at most, so a customer without history is never flagged; the history rules
(`returns_30d`, `returns_90d`, `gift_card_refunds_90d`, `identification_failures`) reach the
threshold on their own, `address_change` with `high_value` or a gift-card refund. Weights and
thresholds: `shop.config.RiskSettings`.

Two facts leave no trace in the order rows, so listeners record them: address changes (table
`account_events`, from any code path that updates a customer's default address or an order's
shipping address) and failed identifications (a copy in `risk_identification_failures`,
which, unlike `identification_failures`, a later successful lookup does not clear).
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, delete, event, func, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapper, Session, object_session

from shop.config import MAX_ID_FAILURE_HOURS, RiskSettings
from shop.db import (
    ADDRESS_FIELDS,
    AccountEvent,
    Customer,
    IdentificationFailure,
    Order,
    PaymentMethod,
    RiskDecision,
    RiskIdentificationFailure,
    Variant,
    aware,
    to_cents,
    utcnow,
)
from shop.deps import Store
from shop.errors import ShopError, conflict
from shop.identification import key_hash
from shop.schemas import (
    OrderOut,
    RiskDecisionListOut,
    RiskDecisionOut,
    RiskRate,
    RiskReasonCount,
    RiskReviewIn,
    RiskStatsOut,
)

log = logging.getLogger("shop.risk")

OPERATIONS = ("cancel", "order-address", "payment", "items", "return", "exchange")
REVIEW_REQUIRED = "risk_review_required"
REFUSAL_MESSAGE = ("This change needs a review by a colleague before it can be done; nothing "
                   "has been changed.")
RETURNED = ("return requested", "exchange requested")
ITEM_MODIFIED = "pending (item modified)"
DAYS_30, DAYS_90 = timedelta(days=30), timedelta(days=90)
NOW_KEY = "shop_now"  # session.info: the time of the write (Store.clock), for the listeners
PRUNE_BATCH = 500


# ---------------------------------------------------------------- what a change is


@dataclass(frozen=True)
class Change:
    """One order change, as the rules see it (money in cents)."""

    operation: str
    order_id: str
    value_cents: int  # what it moves: a refund, the goods it ships, the amount re-paid
    refund_cents: int = 0  # money it refunds (a return; an exchange or item change to cheaper)
    gift_card_refund_cents: int = 0  # the part of it refunded to a gift card that did not pay
    ships_goods: bool = False  # order address, item change, exchange
    is_return: bool = False  # return or exchange


@dataclass(frozen=True)
class Reason:
    code: str
    points: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "message": self.message}


@dataclass
class Assessment:
    change: Change
    reasons: list[Reason]
    threshold: int

    @property
    def score(self) -> int:
        return sum(r.points for r in self.reasons)

    @property
    def flagged(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class Past:
    """A change found in the customer's other orders (dated by the order's last write)."""

    at: datetime | None  # None: undated (a returned order of the seed) - counts in every window
    is_return: bool
    refund_cents: int
    gift_card_steered: bool


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _original_method(payment_history: list[dict[str, Any]]) -> str | None:
    return next((e["payment_method_id"] for e in payment_history
                 if e["transaction_type"] == "payment"), None)


def _value_of(items: list[dict[str, Any]], item_ids: list[str]) -> int:
    prices = {i["item_id"]: to_cents(i["price"]) for i in items}
    return sum(prices.get(item_id, 0) for item_id in item_ids)


def _steered(method_id: str | None, original: str | None, sources: dict[str, str]) -> bool:
    """A refund to a gift card that is not the method the order was paid with."""
    return method_id is not None and sources.get(method_id) == "gift_card" and method_id != original


def describe(session: Session, operation: str, before: Any, answer: OrderOut, body: BaseModel,
             sources: dict[str, str]) -> Change:
    """The change `answer` made to the order row `before` (read under the lock, unchanged)."""
    items, history = list(before.items), list(before.payment_history)
    original = _original_method(history)
    total = sum(to_cents(i["price"]) for i in items)
    order_id = before.order_id
    if operation == "cancel":
        refunded = sum(to_cents(e.amount) for e in answer.payment_history[len(history):])
        return Change(operation, order_id, refunded)
    if operation == "order-address":
        return Change(operation, order_id, total, ships_goods=True)
    if operation == "payment":
        return Change(operation, order_id, to_cents(history[0]["amount"]) if history else total)
    if operation == "return":
        value = _value_of(items, list(body.item_ids))  # type: ignore[attr-defined]
        steered = _steered(body.payment_method_id, original, sources)  # type: ignore[attr-defined]
        return Change(operation, order_id, value, refund_cents=value,
                      gift_card_refund_cents=value if steered else 0, is_return=True)
    # items / exchange: the goods it ships are the new variants; a negative difference a refund
    new_ids = list(body.new_item_ids)  # type: ignore[attr-defined]
    prices = dict(session.execute(select(Variant.item_id, Variant.price_cents)
                                  .where(Variant.item_id.in_(set(new_ids)))).all())
    value = sum(prices.get(i, 0) for i in new_ids)
    if operation == "exchange":
        diff = to_cents(answer.exchange_price_difference or 0)
    else:
        last = answer.payment_history[-1]
        diff = to_cents(last.amount) * (1 if last.transaction_type == "payment" else -1)
    refund = max(0, -diff)
    steered = refund > 0 and _steered(body.payment_method_id,  # type: ignore[attr-defined]
                                      original, sources)
    return Change(operation, order_id, value, refund_cents=refund,
                  gift_card_refund_cents=refund if steered else 0, ships_goods=True,
                  is_return=operation == "exchange")


def _past(row: Any, sources: dict[str, str]) -> Past | None:
    """What an earlier change of another order of the customer left in its row."""
    at = aware(row.updated_at) if row.updated_at is not None else None
    history = row.payment_history or []
    original = _original_method(history)
    if row.status == "return requested":
        refund = _value_of(row.items, row.return_items or [])
        return Past(at, True, refund, _steered(row.return_payment_method_id, original, sources))
    if row.status == "exchange requested":
        refund = max(0, -(row.exchange_price_difference_cents or 0))
        steered = refund > 0 and _steered(row.exchange_payment_method_id, original, sources)
        return Past(at, True, refund, steered)
    if row.status == ITEM_MODIFIED and history and history[-1]["transaction_type"] == "refund":
        last = history[-1]
        return Past(at, False, to_cents(last["amount"]),
                    _steered(last["payment_method_id"], original, sources))
    return None


# ---------------------------------------------------------------- the rules


def _within(moment: datetime | None, now: datetime, window: timedelta) -> bool:
    return moment is None or moment >= now - window


def account_keys(session: Session, customer: Any) -> list[str]:
    """The hashed identification keys of a customer (shop/identification.py's account keys):
    the email's, and the name's when no other customer has that first and last name (a
    guess at a shared name is no sign against any one of them)."""
    keys = [key_hash("account", f"email:{customer.email_key}")]
    namesakes = session.scalar(select(func.count()).select_from(Customer).where(
        Customer.first_name_key == customer.first_name_key,
        Customer.last_name_key == customer.last_name_key)) or 0
    if namesakes <= 1:
        keys.append(key_hash("account",
                             f"name:{customer.first_name_key}\x1f{customer.last_name_key}"))
    return keys


def assess(session: Session, settings: RiskSettings, user_id: str, change: Change,
           sources: dict[str, str], now: datetime) -> Assessment:
    """Score `change` of `user_id`'s order against the history (the order itself excluded)."""
    reasons: list[Reason] = []

    def add(code: str, message: str, times: int = 1) -> None:
        points = settings.weight(code) * times
        if points > 0:
            reasons.append(Reason(code, points, message))

    rows = session.execute(
        select(Order.status, Order.items, Order.payment_history, Order.return_items,
               Order.return_payment_method_id, Order.exchange_payment_method_id,
               Order.exchange_price_difference_cents, Order.updated_at)
        .where(Order.user_id == user_id, Order.order_id != change.order_id,
               Order.status.in_((*RETURNED, ITEM_MODIFIED)))
    ).all()
    past = [p for p in (_past(r, sources) for r in rows) if p is not None]

    if change.is_return:
        for code, window, free in (("returns_30d", DAYS_30, settings.returns_30d_free),
                                   ("returns_90d", DAYS_90, settings.returns_90d_free)):
            count = 1 + sum(1 for p in past if p.is_return and _within(p.at, now, window))
            if count > free:
                add(code, f"This is the {_ordinal(count)} return or exchange in "
                    f"{window.days} days ({free} without points).", count - free)
    if change.refund_cents > 0:
        total = change.refund_cents + sum(p.refund_cents for p in past
                                          if _within(p.at, now, DAYS_30))
        if total >= settings.refund_value_30d_cents:
            add("refund_value_30d", f"Refunds of {_money(total)} requested in 30 days, this one "
                f"included ({_money(settings.refund_value_30d_cents)} or more).")
    if change.gift_card_refund_cents > 0:
        add("gift_card_refund", f"{_money(change.gift_card_refund_cents)} would be refunded to a "
            f"gift card that did not pay order {change.order_id}.")
        earlier = sum(1 for p in past if p.gift_card_steered and _within(p.at, now, DAYS_90))
        if earlier:
            add("gift_card_refunds_90d", f"{earlier} earlier refund(s) in 90 days went to a gift "
                "card instead of the payment method of the order.", earlier)
    if change.operation != "cancel" and settings.weight("identification_failures"):
        customer = session.execute(
            select(Customer.email_key, Customer.first_name_key, Customer.last_name_key)
            .where(Customer.user_id == user_id)).first()
        hours = settings.id_failure_hours
        failures = 0 if customer is None else session.scalar(
            select(func.count()).select_from(RiskIdentificationFailure).where(
                RiskIdentificationFailure.key.in_(account_keys(session, customer)),
                RiskIdentificationFailure.failed_at > now - timedelta(hours=hours))) or 0
        if failures >= settings.id_failures:
            add("identification_failures", f"{failures} failed identification attempts on this "
                f"account in the last {hours} hours.")
    if (change.ships_goods or change.gift_card_refund_cents > 0) and settings.weight(
            "address_change"):
        hours = settings.address_hours
        last = session.execute(
            select(AccountEvent.kind, AccountEvent.order_id, AccountEvent.at)
            .where(AccountEvent.user_id == user_id,
                   AccountEvent.at > now - timedelta(hours=hours))
            .order_by(AccountEvent.at.desc()).limit(1)).first()
        if last is not None:
            what = ("The default address of the account" if last.kind == "customer_address"
                    else f"The shipping address of order {last.order_id}")
            add("address_change", f"{what} changed in the last {hours} hours, before this "
                "change that ships goods or credits a gift card.")
    if change.operation != "cancel" and change.value_cents >= settings.high_value_cents:
        add("high_value", f"The change is worth {_money(change.value_cents)} "
            f"({_money(settings.high_value_cents)} or more).")
    return Assessment(change, reasons, settings.threshold)


# ---------------------------------------------------------------- the guarded write


class RiskRefused(ShopError):
    """409 `risk_review_required`: a flagged change, not done; `record` is its decision row."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(409, REVIEW_REQUIRED, REFUSAL_MESSAGE, details={
            "decision_id": record["id"], "score": record["score"],
            "threshold": record["threshold"], "reasons": record["reasons"]})
        self.record = record


Rule = Callable[[Session, str, str, Any], OrderOut]


def checked_write(session: Session, store: Store, operation: str, order_id: str, caller: str,
                  body: BaseModel, rule: Rule) -> OrderOut:
    """`rule` (one of shop/service.py's writes), then its risk decision; in one transaction.

    Refusals of the rule are raised unscored. A flagged change (enforce mode) raises
    :class:`RiskRefused` after the rule changed things in the session: the transaction (or the
    idempotency savepoint) rolls them back, and the route writes the decision afterwards.
    """
    return decide(session, store, operation, order_id, caller, body, rule)[0]


def decide(session: Session, store: Store, operation: str, order_id: str, caller: str,
           body: BaseModel, rule: Rule) -> tuple[OrderOut, dict[str, Any]]:
    """:func:`checked_write`, also returning the decision row it added (bench/risk_eval.py)."""
    settings = store.settings.risk
    now = store.clock()
    session.info[NOW_KEY] = now
    # Locks first (PostgreSQL FOR UPDATE; SQLite's write transaction holds the database):
    # the customer's row, so two changes of one customer (or a change and a new default
    # address) are scored one after the other and each sees the other's history, then the
    # order as it is, as the rule locks it.
    session.execute(select(Customer.user_id).where(Customer.user_id == caller)
                    .with_for_update())
    before = session.execute(select(Order.__table__).where(Order.order_id == order_id)
                             .with_for_update()).first()
    answer = rule(session, order_id, caller, body)
    assert before is not None  # the rule found the caller's order
    with session.no_autoflush:  # the history is the database's, without this change
        sources = dict(session.execute(select(PaymentMethod.id, PaymentMethod.source)
                                       .where(PaymentMethod.user_id == caller)).all())
        change = describe(session, operation, before, answer, body, sources)
        assessment = assess(session, settings, caller, change, sources, now)
    record = decision_record(assessment, caller, body, now,
                             refused=assessment.flagged and settings.mode == "enforce")
    if record["refused"]:
        raise RiskRefused(record)
    session.add(RiskDecision(**record))
    return answer, record


def decision_record(assessment: Assessment, user_id: str, body: BaseModel, now: datetime,
                    refused: bool) -> dict[str, Any]:
    change = assessment.change
    return {
        "id": "rk_" + secrets.token_hex(8),
        "at": now,
        "user_id": user_id,
        "order_id": change.order_id,
        "operation": change.operation,
        "score": assessment.score,
        "threshold": assessment.threshold,
        "decision": "flagged" if assessment.flagged else "allowed",
        "refused": refused,
        "reasons": [r.as_dict() for r in assessment.reasons],
        "value_cents": change.value_cents,
        "request": body.model_dump(mode="json"),
    }


def record_refusal(store: Store, refusal: RiskRefused) -> None:
    """Write a refused change's decision (its own transaction: the refusal's rolled back)."""
    try:
        with Session(store.writer) as session, session.begin():
            session.add(RiskDecision(**refusal.record))
    except SQLAlchemyError:  # the 409 stands; the log line keeps what the table could not
        log.exception("risk decision %s not stored: %s", refusal.record["id"], refusal.record)


# ---------------------------------------------------------------- review by an agent


def decision_view(d: RiskDecision) -> RiskDecisionOut:
    return RiskDecisionOut.model_validate({
        "id": d.id, "at": aware(d.at), "user_id": d.user_id, "order_id": d.order_id,
        "operation": d.operation, "score": d.score, "threshold": d.threshold,
        "decision": d.decision, "refused": d.refused, "reasons": d.reasons,
        "value": round(d.value_cents / 100, 2), "request": d.request, "review": d.review,
        "reviewed_by": d.reviewed_by,
        "reviewed_at": aware(d.reviewed_at) if d.reviewed_at else None,
        "review_note": d.review_note,
    })


def decision_not_found() -> ShopError:
    return ShopError(404, "risk_decision_not_found", "Risk decision not found.")


def get_decision(session: Session, decision_id: str) -> RiskDecisionOut:
    found = session.get(RiskDecision, decision_id)
    if found is None:
        raise decision_not_found()
    return decision_view(found)


def list_decisions(session: Session, decision: str | None, review: str | None,
                   user_id: str | None, since: datetime | None,
                   limit: int) -> RiskDecisionListOut:
    query = select(RiskDecision).order_by(RiskDecision.at.desc(), RiskDecision.id.desc())
    if decision is not None:
        query = query.where(RiskDecision.decision == decision)
    if review == "pending":
        query = query.where(RiskDecision.refused.is_(True), RiskDecision.review.is_(None))
    elif review is not None:
        query = query.where(RiskDecision.review == review)
    if user_id is not None:
        query = query.where(RiskDecision.user_id == user_id)
    if since is not None:
        query = query.where(RiskDecision.at >= since)
    return RiskDecisionListOut(
        decisions=[decision_view(d) for d in session.scalars(query.limit(limit))])


def _pending_review(session: Session, decision_id: str) -> RiskDecision:
    """The refused decision, locked, if no agent has reviewed it yet (else 404 / 409)."""
    found = session.scalar(select(RiskDecision).where(RiskDecision.id == decision_id)
                           .with_for_update())
    if found is None:
        raise decision_not_found()
    if not found.refused:
        raise conflict("risk_decision_not_refused",
                       f"Risk decision {decision_id} did not refuse its change; there is nothing "
                       "to review.")
    if found.review is not None:
        raise conflict("risk_decision_reviewed",
                       f"Risk decision {decision_id} was {found.review} already.",
                       review=found.review, reviewed_by=found.reviewed_by)
    return found


def review(session: Session, decision_id: str, agent_id: str, body: RiskReviewIn,
           now: datetime, approve: Callable[[RiskDecision], OrderOut] | None
           ) -> tuple[RiskDecisionOut, OrderOut | None]:
    """Approve (`approve` runs the stored change, with every store rule checked now, but no
    risk check: the agent is the review) or reject a refused change."""
    found = _pending_review(session, decision_id)
    order = approve(found) if approve is not None else None
    found.review = "approved" if approve is not None else "rejected"
    found.reviewed_by = agent_id
    found.reviewed_at = now
    found.review_note = body.note or None
    return decision_view(found), order


# ---------------------------------------------------------------- the operator's report


def _rate(flagged: int, total: int) -> float | None:
    return round(flagged / total, 4) if total else None


def stats(session: Session, settings: RiskSettings, since: datetime | None) -> RiskStatsOut:
    """Decisions, flags and flag rates (overall, per operation, per reason), reviews."""
    query = select(RiskDecision.operation, RiskDecision.decision, RiskDecision.refused,
                   RiskDecision.review, RiskDecision.reasons)
    if since is not None:
        query = query.where(RiskDecision.at >= since)
    totals: Counter[str] = Counter()
    operations = {op: Counter() for op in OPERATIONS}
    reasons = {code: Counter() for code in settings.points}
    reviews: Counter[str] = Counter()
    for operation, decision, refused, verdict, given in session.execute(query):
        flagged = decision == "flagged"
        totals.update(total=1, flagged=flagged, refused=bool(refused))
        operations.setdefault(operation, Counter()).update(total=1, flagged=flagged)
        for reason in given or []:
            reasons.setdefault(reason["code"], Counter()).update(decisions=1, flagged=flagged)
        if refused:
            reviews[verdict or "pending"] += 1
    return RiskStatsOut(
        since=since, mode=settings.mode, threshold=settings.threshold,
        decisions={"total": totals["total"], "allowed": totals["total"] - totals["flagged"],
                   "flagged": totals["flagged"], "refused": totals["refused"]},
        flag_rate=_rate(totals["flagged"], totals["total"]),
        operations={op: RiskRate(total=c["total"], flagged=c["flagged"],
                                 flag_rate=_rate(c["flagged"], c["total"]))
                    for op, c in operations.items()},
        reasons={code: RiskReasonCount(decisions=c["decisions"], flagged=c["flagged"])
                 for code, c in reasons.items()},
        reviews={k: reviews[k] for k in ("pending", "approved", "rejected")},
    )


# ---------------------------------------------------------------- listeners


def _now_of(target: Any) -> datetime:
    session = object_session(target)
    moment = session.info.get(NOW_KEY) if session is not None else None
    return moment or utcnow()


def _changed(target: Any, names: tuple[str, ...]) -> bool:
    state = inspect(target)
    return any(state.attrs[name].history.has_changes() for name in names)


@event.listens_for(Customer, "before_update")
def _customer_address_changed(_mapper: Mapper[Any], conn: Connection, target: Customer) -> None:
    if _changed(target, ADDRESS_FIELDS):
        conn.execute(insert(AccountEvent).values(at=_now_of(target), user_id=target.user_id,
                                                 kind="customer_address", order_id=None))


@event.listens_for(Order, "before_update")
def _order_address_changed(_mapper: Mapper[Any], conn: Connection, target: Order) -> None:
    if _changed(target, ("address",)):
        conn.execute(insert(AccountEvent).values(at=_now_of(target), user_id=target.user_id,
                                                 kind="order_address", order_id=target.order_id))


@event.listens_for(IdentificationFailure, "after_insert")
def _identification_failed(_mapper: Mapper[Any], conn: Connection,
                           target: IdentificationFailure) -> None:
    """Keep a copy of each failure; drop a batch of copies older than 7 days."""
    F = RiskIdentificationFailure
    conn.execute(insert(F).values(key=target.key, failed_at=target.failed_at))
    expired = (select(F.id).where(F.failed_at <= target.failed_at
                                  - timedelta(hours=MAX_ID_FAILURE_HOURS))
               .limit(PRUNE_BATCH).with_for_update(skip_locked=True))
    conn.execute(delete(F).where(F.id.in_(expired)))
