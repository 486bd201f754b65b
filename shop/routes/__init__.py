"""One APIRouter per resource; `create_app` includes each (the hot orders router first)."""

from __future__ import annotations

from fastapi import APIRouter

from shop.routes import (
    agents,
    catalog,
    customers,
    desk,
    handoffs,
    meta,
    orders,
    ratings,
    shipments,
)

ROUTERS: list[APIRouter] = [m.router for m in (orders, meta, customers, catalog, shipments,
                                                handoffs, ratings, agents, desk)]
