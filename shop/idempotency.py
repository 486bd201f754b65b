"""Writes: one transaction each; with an Idempotency-Key the first answer is stored and replayed.

Refusals are stored too, so a repeated key always gets the same status and body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shop.db import IdempotencyKey
from shop.deps import Store
from shop.errors import ShopError, invalid

Answer = TypeVar("Answer", bound=BaseModel)


class Replayed(Exception):
    """A repeated Idempotency-Key: the stored answer goes out unchanged (see `replay`)."""

    def __init__(self, saved: IdempotencyKey) -> None:
        super().__init__(saved.key)
        self.status = saved.status_code
        self.body = saved.body


async def replay(_request: Request, exc: Exception) -> JSONResponse:
    """Exception handler: the first answer's status and body, marked as a replay."""
    assert isinstance(exc, Replayed)
    return JSONResponse(json.loads(exc.body), exc.status, headers={"Idempotent-Replayed": "true"})


def run_write(
    store: Store,
    operation: str,
    caller: str | None,
    payload: BaseModel,
    key: str | None,
    action: Callable[[Session], Answer],
    ok_status: int = 200,
) -> Answer:
    """Run `action` atomically and return its answer; raise its refusal, or `Replayed`.

    The stored body is the answer as the route's response model serialises it (unset optional
    fields left out), so the replay is the first answer byte for byte.
    """
    if key is None:
        with Session(store.writer, expire_on_commit=False) as session, session.begin():
            return action(session)
    fingerprint = hashlib.sha256(
        json.dumps([operation, caller, payload.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()
    for _attempt in range(3):
        try:
            with Session(store.writer, expire_on_commit=False) as session, session.begin():
                saved = session.get(IdempotencyKey, key)
                if saved is not None and saved.fingerprint != fingerprint:
                    raise invalid("idempotency_key_reused",
                                  "This Idempotency-Key was already used for a different request.")
                if saved is not None:
                    raise Replayed(saved)
                outcome = _attempt_action(session, action)
                if isinstance(outcome, ShopError):
                    status, body = outcome.status, outcome.body()
                else:
                    status, body = ok_status, outcome.model_dump(mode="json", exclude_unset=True)
                session.add(IdempotencyKey(key=key, fingerprint=fingerprint,
                                           status_code=status, body=json.dumps(body)))
                session.flush()
        except IntegrityError:
            continue  # the same key was committed by a concurrent request: replay its answer
        if isinstance(outcome, ShopError):
            raise outcome
        return outcome
    raise invalid("idempotency_conflict", "Concurrent requests with this Idempotency-Key; retry.")


def _attempt_action(session: Session, action: Callable[[Session], Answer]) -> Answer | ShopError:
    """The action in a savepoint: a refusal rolls back its changes but not the stored key."""
    savepoint = session.begin_nested()
    try:
        answer = action(session)
    except ShopError as exc:
        savepoint.rollback()
        return exc
    savepoint.commit()
    return answer


async def idempotent_write(store: Store, operation: str, caller: str | None, payload: BaseModel,
                           key: str | None, action: Callable[[Session], Answer],
                           ok_status: int = 200) -> Answer:
    """:func:`run_write` in one trip to the thread pool, off the event loop (async routes)."""
    return await run_in_threadpool(run_write, store, operation, caller, payload, key, action,
                                   ok_status)
