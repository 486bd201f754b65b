"""The human side: handoff tickets for agents, and shoppers' satisfaction ratings.

Both may be anonymous. One that names a customer is written on that customer's behalf, so it
needs that customer's X-Customer-Id (`check_named_customer`), and a ticket is read back only by
its customer.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shop.db import Customer, Handoff, Rating, utcnow
from shop.errors import ShopError, conflict, invalid, not_found
from shop.schemas import HandoffIn, HandoffOut, RatingIn, RatingListOut, RatingOut


def _known_customer(session: Session, user_id: str | None) -> None:
    """A ticket or rating may name a customer, but only one that exists (422 otherwise)."""
    if user_id is not None and session.get(Customer, user_id) is None:
        raise invalid("customer_not_found", f"No customer {user_id}.")


def check_named_customer(named: str | None, caller: str | None, field: str) -> None:
    """The customer a body names must be the caller (X-Customer-Id), and only the caller.

    Checked before anything is read or written, so the answer never depends on whether the
    named customer exists: no header with a customer in the body is the 422 every scoped call
    gives without the header; a header with another customer, or with none in the body, is a
    404 as for another customer's order or profile.
    """
    if named is None and caller is None:
        return  # anonymous: allowed
    if caller is None:
        raise invalid("customer_id_required",
                      f"A body naming a customer ({field}) needs header X-Customer-Id of that "
                      "customer.")
    if named != caller:
        raise ShopError(404, "customer_mismatch",
                        f"{field} must be the caller's X-Customer-Id: a write is never made on "
                        "behalf of another customer.")


# ---------------------------------------------------------------- handoffs


def open_handoff(session: Session, body: HandoffIn, now: datetime | None = None) -> HandoffOut:
    """A new ticket, `open` in the desk's queue (shop/desk.py) from `now`."""
    _known_customer(session, body.user_id)
    now = now or utcnow()
    ticket = Handoff(
        id="ho_" + secrets.token_hex(8),
        summary=body.summary,
        reason=body.reason or None,
        user_id=body.user_id,
        conversation_id=body.conversation_id or None,
        status="open",
        created_at=now,
        queued_at=now,
    )
    session.add(ticket)
    session.flush()
    return HandoffOut.model_validate(ticket, from_attributes=True)


def get_handoff(session: Session, handoff_id: str, caller: str) -> HandoffOut:
    """The ticket, for its customer only: anyone else's (or an anonymous one) is unknown."""
    ticket = session.get(Handoff, handoff_id)
    if ticket is None or ticket.user_id != caller:
        raise not_found("Handoff")
    return HandoffOut.model_validate(ticket, from_attributes=True)


# ---------------------------------------------------------------- ratings


def create_rating(session: Session, body: RatingIn) -> RatingOut:
    """Store a rating; a conversation is rated once (409), so a re-sent form cannot count twice."""
    _known_customer(session, body.customer_id)
    taken = select(Rating.id).where(Rating.conversation_id == body.conversation_id)
    if session.scalar(taken) is not None:
        raise conflict("already_rated", "This conversation has already been rated.")
    rating = Rating(
        conversation_id=body.conversation_id,
        rating=body.rating,
        comment=body.comment or None,
        customer_id=body.customer_id,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():  # a concurrent insert for the same conversation (PostgreSQL)
            session.add(rating)
            session.flush()
    except IntegrityError:
        raise conflict("already_rated", "This conversation has already been rated.") from None
    return RatingOut.model_validate(rating, from_attributes=True)


def list_ratings(session: Session, limit: int) -> RatingListOut:
    """The newest ratings and a summary over all of them (for reports and dashboards)."""
    rows = session.scalars(
        select(Rating).order_by(Rating.created_at.desc(), Rating.id.desc()).limit(limit)
    ).all()
    counts = {int(value): int(n) for value, n in
              session.execute(select(Rating.rating, func.count()).group_by(Rating.rating))}
    distribution = {str(n): int(counts.get(n, 0)) for n in range(1, 6)}
    total = sum(distribution.values())
    average = (round(sum(int(k) * v for k, v in distribution.items()) / total, 2)
               if total else None)
    return RatingListOut.model_validate({
        "ratings": [RatingOut.model_validate(r, from_attributes=True) for r in rows],
        "summary": {"count": total, "average": average, "distribution": distribution},
    })
