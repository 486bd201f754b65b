"""Deterministic carrier tracking.

The seed data has tracking ids but no carrier history, so each history is derived from a hash of
the tracking id (same id, same answer, on every machine and every day) and cut to agree with the
order's status: processed = label created, picked up, in transit, with an estimated delivery;
delivered (and returns/exchanges requested after delivery) = through to a delivery event at the
order's city and state; cancelled = the label was voided before pickup. Pending orders have no
tracking ids at all (nothing shipped yet), so their shipments are simply unknown (404).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import Order, Shipment
from shop.errors import not_found
from shop.schemas import ShipmentOut

CARRIERS = ("UPS", "FedEx", "USPS", "DHL Express")
WAREHOUSES = (
    "Columbus, OH",
    "Reno, NV",
    "Allentown, PA",
    "Dallas, TX",
    "Atlanta, GA",
    "Ontario, CA",
)
HUBS = (
    "Louisville, KY",
    "Memphis, TN",
    "Indianapolis, IN",
    "Chicago, IL",
    "Kansas City, MO",
    "Denver, CO",
    "Phoenix, AZ",
    "Newark, NJ",
)
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
SHIPPED_AFTER_DELIVERY = {"delivered", "return requested", "exchange requested"}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(moment: datetime, status: str, description: str, location: str) -> dict[str, str]:
    return {"time": _stamp(moment), "status": status, "description": description,
            "location": location}


def get_shipment(session: Session, tracking_id: str, caller: str) -> ShipmentOut:
    """The shipment's history, for the customer whose order it carries.

    A tracking id that is not in a fulfilment of one of the caller's orders is unknown: the same
    404 as an id of no order at all, so another customer's parcels reveal nothing.
    """
    order_id = session.scalar(
        select(Shipment.order_id).where(Shipment.tracking_id == tracking_id)
    )
    order = session.get(Order, order_id) if order_id else None
    if order is None or order.user_id != caller or not any(
            tracking_id in f.get("tracking_id", ()) for f in order.fulfillments):
        raise not_found("Shipment")
    return shipment_view(tracking_id, order)


def shipment_view(tracking_id: str, order: Order) -> ShipmentOut:
    """Carrier, current status and dated events for one tracking id of `order`."""
    h = hashlib.sha256(tracking_id.encode("utf-8")).digest()
    carrier = CARRIERS[h[0] % len(CARRIERS)]
    origin = WAREHOUSES[h[1] % len(WAREHOUSES)]
    hub = HUBS[h[2] % len(HUBS)]
    label_at = EPOCH + timedelta(days=int.from_bytes(h[3:5], "big") % 540,
                                 hours=8 + h[5] % 9, minutes=h[6] % 60)
    picked_at = label_at + timedelta(hours=6 + h[7] % 14)
    hub_at = picked_at + timedelta(hours=10 + h[8] % 30)
    transit_days = 3 + h[9] % 4
    estimated = (label_at + timedelta(days=transit_days)).date()
    out_at = datetime(estimated.year, estimated.month, estimated.day, 7, 30 + h[10] % 30,
                      tzinfo=timezone.utc)
    delivered_at = out_at + timedelta(hours=3 + h[11] % 8, minutes=h[12] % 60)
    address = order.address or {}
    destination = f"{address.get('city', '')}, {address.get('state', '')}".strip(", ")
    item_ids = next(
        (f["item_ids"] for f in order.fulfillments if tracking_id in f["tracking_id"]), []
    )

    events = [_event(label_at, "label_created", f"Shipping label created by {carrier}", origin)]
    status, estimated_delivery, delivered = "label_created", None, None
    if order.status == "cancelled":
        events.append(_event(label_at + timedelta(hours=2), "cancelled",
                             "Shipment cancelled before pickup; label voided", origin))
        status = "cancelled"
    elif order.status == "processed" or order.status in SHIPPED_AFTER_DELIVERY:
        events.append(_event(picked_at, "picked_up", "Picked up by carrier", origin))
        events.append(_event(hub_at, "in_transit", "Arrived at carrier sort facility", hub))
        status, estimated_delivery = "in_transit", estimated.isoformat()
        if order.status in SHIPPED_AFTER_DELIVERY:
            events.append(_event(out_at, "out_for_delivery", "Out for delivery", destination))
            events.append(_event(delivered_at, "delivered",
                                 f"Delivered in {destination}", destination))
            status, delivered = "delivered", _stamp(delivered_at)
    return ShipmentOut.model_validate({
        "tracking_id": tracking_id,
        "carrier": carrier,
        "status": status,
        "order_id": order.order_id,
        "item_ids": item_ids,
        "estimated_delivery": estimated_delivery,
        "delivered_at": delivered,
        "events": events,
    })
