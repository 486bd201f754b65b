"""Shoppers' 1-5 ratings of a conversation, and the summary `make report` reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shop import support
from shop.deps import IdemKey, OptionalCaller, StoreDep
from shop.idempotency import idempotent_write
from shop.routes.common import ERRORS, WRITE_ERRORS
from shop.schemas import ErrorOut, RatingIn, RatingListOut, RatingOut

router = APIRouter(prefix="/ratings", tags=["ratings"])
RATED = {**WRITE_ERRORS, 409: {"model": ErrorOut, "description": "Conversation already rated"}}


@router.post("", status_code=201, responses=RATED, response_model_exclude_unset=True)
async def create_rating(body: RatingIn, store: StoreDep, caller: OptionalCaller,
                        idempotency_key: IdemKey = None) -> RatingOut:
    """Store a shopper's 1-5 rating of a conversation (one per conversation).

    Anonymous, or for the caller: `customer_id` must equal X-Customer-Id (both or neither).
    """
    support.check_named_customer(body.customer_id, caller, "customer_id")
    return await idempotent_write(store, "rating", caller, body, idempotency_key,
                                  lambda s: support.create_rating(s, body), ok_status=201)


@router.get("", responses=ERRORS, response_model_exclude_unset=True)
async def ratings(store: StoreDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> RatingListOut:
    """The newest ratings first, and count / average / distribution over all ratings."""
    return await store.query(support.list_ratings, limit)
