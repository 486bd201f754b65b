"""Carrier tracking of a shipment (deterministic per tracking id, see shop/shipments.py); only
the customer whose order it carries may see it (X-Customer-Id)."""

from __future__ import annotations

from fastapi import APIRouter

from shop.deps import Caller, StoreDep, TrackingId
from shop.routes.common import READ
from shop.schemas import ShipmentOut
from shop.shipments import get_shipment

router = APIRouter(prefix="/shipments", tags=["logistics"])


@router.get("/{tracking_id}", **READ)
async def shipment(tracking_id: TrackingId, caller: Caller, store: StoreDep) -> ShipmentOut:
    """Carrier, status and dated events (deterministic per tracking id) of a parcel of one of
    the caller's orders; any other tracking id is a 404."""
    return await store.query(get_shipment, tracking_id, caller)
