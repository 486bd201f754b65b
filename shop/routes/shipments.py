"""Carrier tracking of a shipment (deterministic per tracking id, see shop/shipments.py)."""

from __future__ import annotations

from fastapi import APIRouter

from shop.deps import StoreDep, TrackingId
from shop.routes.common import READ
from shop.schemas import ShipmentOut
from shop.shipments import get_shipment

router = APIRouter(prefix="/shipments", tags=["logistics"])


@router.get("/{tracking_id}", **READ)
async def shipment(tracking_id: TrackingId, store: StoreDep) -> ShipmentOut:
    """Carrier, status and dated events (deterministic per tracking id)."""
    return await store.query(get_shipment, tracking_id)
