"""Liveness for load balancers and the assistant's startup check (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from shop.db import ping
from shop.deps import StoreDep
from shop.errors import error_body
from shop.schemas import HealthOut

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=HealthOut)
async def health(store: StoreDep) -> HealthOut | JSONResponse:
    """200 when the database answers (no token needed)."""
    try:
        await run_in_threadpool(ping, store.engine)
    except Exception:  # noqa: BLE001 - any DB failure means "not healthy"
        return JSONResponse(error_body("database_unavailable", "Database does not answer."), 503)
    return HealthOut(status="ok", database=store.engine.dialect.name)
