"""Identifying a shopper from two facts, and the lock on repeated failed attempts.

An anonymous shopper is identified by **two** facts: email + zip, or first name + last name +
zip (folded: case-, accent- and space-insensitive, as tau2-bench does). Anything less is a 422
`lookup_parameters` that says which facts are missing, and is not counted.

Every failed lookup is recorded in the database (table `identification_failures`), so every
shop worker and every Rasa replica behind it sees the same count:

- per **account key**: the folded email, or the folded first + last name (the zip is not part
  of it, so guessing zips for one name counts against that name);
- per **client**: the opaque `X-Client-Id` the action server passes (the shopper's address);
  absent, only the account key counts.

When either key has at least its maximum of failures inside the sliding window
(`SHOP_ID_WINDOW_SECONDS`, `SHOP_ID_MAX_FAILURES_ACCOUNT`, `SHOP_ID_MAX_FAILURES_CLIENT`), the
lookup answers 429 `identification_locked` with `Retry-After` **before** it looks anything up:
the right details are refused too, and an unknown email is locked exactly like a real one.
Refused attempts are not counted (hammering a locked key does not extend its lock). A successful
lookup clears its account key's failures (not the client's).

The check, the lookup and the recording are one write transaction that first locks the keys:
`BEGIN IMMEDIATE` on SQLite (the database write lock), a transaction-level advisory lock per key
(taken in a fixed order) on PostgreSQL. So concurrent failures count exactly, and no burst of
parallel guesses gets past the maximum.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from shop.db import Customer, IdentificationFailure, fold
from shop.deps import Store
from shop.errors import ShopError, invalid, not_found
from shop.schemas import LookupOut

LOCKED = "identification_locked"
PRUNE_BATCH = 500  # expired rows removed per failed attempt (bounded work per request)
_TWO_FACTS = "Identification takes two facts: email and zip, or first_name, last_name and zip"


@dataclass(frozen=True)
class LookupQuery:
    """A complete set of identification facts: what to match and whose failures count."""

    account_key: str
    match: ColumnElement[bool]


def _given(value: str | None) -> bool:
    return value is not None and bool(value.strip())


def lookup_query(
    email: str | None, first_name: str | None, last_name: str | None, zip_code: str | None
) -> LookupQuery:
    """The facts of a lookup, or a 422 `lookup_parameters` naming the facts it lacks.

    With an email, the zip is required; without one, first name, last name and zip are.
    """
    if _given(email):
        assert email is not None
        if not _given(zip_code):
            raise invalid("lookup_parameters",
                          f"{_TWO_FACTS}; an email needs the zip too (missing: zip).")
        assert zip_code is not None
        folded = fold(email)
        return LookupQuery(f"email:{folded}",
                           (Customer.email_key == folded) & (Customer.zip == zip_code.strip()))
    named = {"first_name": first_name, "last_name": last_name, "zip": zip_code}
    missing = [name for name, value in named.items() if not _given(value)]
    if missing:
        raise invalid("lookup_parameters", f"{_TWO_FACTS} (missing: {', '.join(missing)}).")
    assert first_name is not None and last_name is not None and zip_code is not None
    first, last = fold(first_name), fold(last_name)
    # \x1f cannot occur in a lookup value (control characters are refused), so keys never clash
    return LookupQuery(
        f"name:{first}\x1f{last}",
        (Customer.first_name_key == first) & (Customer.last_name_key == last)
        & (Customer.zip == zip_code.strip()),
    )


def key_hash(kind: str, value: str) -> str:
    """The stored form of a key: no email or name in the failures table."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def locked(retry_after: int) -> ShopError:
    return ShopError(
        429, LOCKED,
        f"Too many failed identification attempts; try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )


def _aware(moment: datetime) -> datetime:
    """SQLite gives the stored UTC time back without its zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _lock_keys(session: Session, keys: list[str]) -> None:
    """Serialise attempts on the same keys (SQLite: BEGIN IMMEDIATE already did)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({int.from_bytes(bytes.fromhex(k[:16]), "big", signed=True) for k in keys})
    for lock_id in ids:  # a fixed order: two attempts sharing keys never deadlock
        session.execute(select(func.pg_advisory_xact_lock(lock_id)))


def _wait(session: Session, key: str, limit: int, window: timedelta, now: datetime) -> int:
    """Seconds until `key` has fewer than `limit` failures in the window (0: not locked)."""
    F = IdentificationFailure
    times = session.scalars(
        select(F.failed_at).where(F.key == key, F.failed_at > now - window)
        .order_by(F.failed_at)
    ).all()
    if len(times) < limit:
        return 0
    # allowed again once all but limit-1 have left: normally when the oldest one leaves
    leaves = _aware(times[len(times) - limit]) + window
    return max(1, math.ceil((leaves - now).total_seconds()))


def _prune(session: Session, before: datetime) -> None:
    """Drop a batch of failures that left the window (rows other attempts lock are skipped)."""
    F = IdentificationFailure
    expired = (select(F.id).where(F.failed_at <= before).limit(PRUNE_BATCH)
               .with_for_update(skip_locked=True))
    session.execute(delete(F).where(F.id.in_(expired)).execution_options(
        synchronize_session=False))


def identify(store: Store, query: LookupQuery, client_id: str | None) -> LookupOut:
    """The user id for `query`; 404 (counted) when nothing matches; 429 while locked.

    Blocking: run it in the thread pool. An unknown email and a known email with the wrong zip
    get the same 404 body, and a locked key the same 429 whatever the facts.
    """
    settings = store.settings
    window = timedelta(seconds=settings.id_window_seconds)
    account = key_hash("account", query.account_key)
    keys = [(account, settings.id_max_failures_account)]
    if client_id is not None:
        keys.append((key_hash("client", client_id), settings.id_max_failures_client))
    outcome: LookupOut | ShopError
    with Session(store.writer, expire_on_commit=False) as session, session.begin():
        _lock_keys(session, [k for k, _ in keys])
        now = store.clock()
        wait = max(_wait(session, key, limit, window, now) for key, limit in keys)
        if wait:
            outcome = locked(wait)
        else:
            user_id = session.scalar(select(Customer.user_id).where(query.match).limit(1))
            if user_id is None:
                session.add_all(IdentificationFailure(key=key, failed_at=now) for key, _ in keys)
                session.flush()
                _prune(session, now - window)
                outcome = not_found("Customer")
            else:
                session.execute(delete(IdentificationFailure).where(
                    IdentificationFailure.key == account).execution_options(
                    synchronize_session=False))
                outcome = LookupOut(user_id=user_id)
    # committed: a failure stays counted although the answer is a refusal
    if isinstance(outcome, ShopError):
        raise outcome
    return outcome
