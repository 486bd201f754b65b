"""The shop's records as typed, frozen objects, parsed once where the answer arrives.

The contract is the shop's own (``shop/schemas.py``, ``/openapi.json``, docs/shop.md): the
client parses each answer into these classes, so no action has to defend itself against
missing keys or other shapes, and an answer that breaks the contract is one typed error
(``MalformedRecord``, which the client reports as the shop being unavailable), not a
``KeyError`` three calls later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple


class MalformedRecord(ValueError):
    """A shop answer that does not have the contract's shape."""


def _text(data: Mapping[str, Any], key: str, default: Optional[str] = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise MalformedRecord(f"missing {key!r}")
    return str(value)


def _money(data: Mapping[str, Any], key: str) -> float:
    try:
        return float(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedRecord(f"bad amount {key!r}") from exc


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedRecord(f"{what} is not an object")
    return value


def _strings(cls: Any, data: Any, what: str) -> Dict[str, str]:
    """Every field of a record made of text only (missing ones empty)."""
    data = _mapping(data, what)
    return {k: str(data.get(k) or "") for k in cls.__dataclass_fields__}


def _options(data: Mapping[str, Any]) -> Dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(data.get("options") or {}, "options").items()}


class _TextRecord:
    """A record whose fields are all text, parsed with every missing field empty."""

    what: ClassVar[str] = "record"

    @classmethod
    def parse(cls, data: Any) -> Any:
        return cls(**_strings(cls, data, cls.what))


@dataclass(frozen=True)
class Address(_TextRecord):
    """A shipping or default address, in the shop's fields (country: "USA")."""

    what = "address"
    address1: str
    address2: str
    city: str
    state: str
    country: str
    zip: str

    def as_body(self) -> Dict[str, str]:
        """The request body of the shop's address endpoints."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Item:
    """One unit of an order (an order lists a variant twice for two units)."""

    item_id: str
    product_id: str
    name: str
    price: float
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any) -> Item:
        data = _mapping(data, "item")
        return cls(item_id=_text(data, "item_id"), product_id=_text(data, "product_id", ""),
                   name=_text(data, "name", "item"), price=_money(data, "price"),
                   options=_options(data))


@dataclass(frozen=True)
class Variant:
    """One purchasable version of a product (its ``item_id`` is what an order item carries)."""

    item_id: str
    options: Mapping[str, str]
    available: bool
    price: float

    @classmethod
    def parse(cls, data: Any, item_id: Optional[str] = None) -> Variant:
        data = _mapping(data, "variant")
        return cls(item_id=str(data.get("item_id") or item_id or _text(data, "item_id")),
                   options=_options(data), available=bool(data.get("available")),
                   price=_money(data, "price"))


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    variants: Tuple[Variant, ...]

    @classmethod
    def parse(cls, data: Any) -> Product:
        data = _mapping(data, "product")
        variants = _mapping(data.get("variants") or {}, "variants")
        return cls(product_id=_text(data, "product_id"), name=_text(data, "name"),
                   variants=tuple(Variant.parse(v, k) for k, v in variants.items()))

    def variant(self, item_id: str) -> Optional[Variant]:
        return next((v for v in self.variants if v.item_id == str(item_id)), None)


@dataclass(frozen=True)
class PaymentMethod:
    id: str
    source: str  # gift_card, credit_card, paypal
    brand: Optional[str] = None
    last_four: Optional[str] = None
    balance: Optional[float] = None

    @classmethod
    def parse(cls, data: Any, method_id: Optional[str] = None) -> PaymentMethod:
        data = _mapping(data, "payment method")
        balance = data.get("balance")
        return cls(id=str(data.get("id") or method_id or _text(data, "id")),
                   source=_text(data, "source"), brand=data.get("brand"),
                   last_four=data.get("last_four"),
                   balance=None if balance is None else _money(data, "balance"))

    def covers(self, amount: float) -> bool:
        """Whether this method can pay ``amount``: a gift card only up to its balance."""
        return self.source != "gift_card" or amount <= 0 or (self.balance or 0) >= amount


@dataclass(frozen=True)
class Payment:
    transaction_type: str  # payment, refund
    amount: float
    payment_method_id: str

    @classmethod
    def parse(cls, data: Any) -> Payment:
        data = _mapping(data, "payment")
        return cls(transaction_type=_text(data, "transaction_type"),
                   amount=_money(data, "amount"),
                   payment_method_id=_text(data, "payment_method_id"))


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    status: str
    address: Address
    items: Tuple[Item, ...]
    payment_history: Tuple[Payment, ...] = ()
    tracking_ids: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Any) -> Order:
        data = _mapping(data, "order")
        tracking = tuple(str(t) for f in data.get("fulfillments") or []
                         for t in _mapping(f, "fulfillment").get("tracking_id") or [])
        return cls(order_id=_text(data, "order_id"), user_id=_text(data, "user_id", ""),
                   status=_text(data, "status").lower(),
                   address=Address.parse(data.get("address") or {}),
                   items=tuple(Item.parse(i) for i in data.get("items") or []),
                   payment_history=tuple(Payment.parse(p) for p in
                                         data.get("payment_history") or []),
                   tracking_ids=tracking)

    def item(self, item_id: str) -> Optional[Item]:
        return next((i for i in self.items if i.item_id == str(item_id)), None)

    @property
    def total(self) -> float:
        return round(sum(i.price for i in self.items), 2)

    @property
    def payment_method_ids(self) -> Tuple[str, ...]:
        """The methods the order was paid with (payments, not refunds), first one first."""
        return tuple(dict.fromkeys(p.payment_method_id for p in self.payment_history
                                   if p.transaction_type == "payment"))

    def paid_by_method(self) -> Dict[str, float]:
        """Net amount paid per payment method (payments minus refunds)."""
        totals: Dict[str, float] = {}
        for entry in self.payment_history:
            sign = 1 if entry.transaction_type == "payment" else -1
            method = entry.payment_method_id
            totals[method] = round(totals.get(method, 0.0) + sign * entry.amount, 2)
        return {m: a for m, a in totals.items() if a > 0}


@dataclass(frozen=True)
class Customer:
    user_id: str
    first_name: str
    last_name: str
    email: str
    address: Address
    payment_methods: Mapping[str, PaymentMethod]
    order_ids: Tuple[str, ...]

    @classmethod
    def parse(cls, data: Any) -> Customer:
        data = _mapping(data, "customer")
        name = _mapping(data.get("name") or {}, "name")
        methods = _mapping(data.get("payment_methods") or {}, "payment_methods")
        return cls(user_id=_text(data, "user_id"), first_name=str(name.get("first_name") or ""),
                   last_name=str(name.get("last_name") or ""), email=str(data.get("email") or ""),
                   address=Address.parse(data.get("address") or {}),
                   payment_methods={str(k): PaymentMethod.parse(v, k)
                                    for k, v in methods.items()},
                   order_ids=tuple(str(o) for o in data.get("orders") or []))


@dataclass(frozen=True)
class TrackingEvent(_TextRecord):
    time: str
    status: str
    description: str
    location: str
    what = "tracking event"  # in error messages


@dataclass(frozen=True)
class Shipment:
    tracking_id: str
    carrier: str
    status: str
    events: Tuple[TrackingEvent, ...]
    estimated_delivery: Optional[str] = None
    delivered_at: Optional[str] = None

    @classmethod
    def parse(cls, data: Any) -> Shipment:
        data = _mapping(data, "shipment")
        return cls(tracking_id=_text(data, "tracking_id"), carrier=str(data.get("carrier") or ""),
                   status=str(data.get("status") or ""),
                   events=tuple(TrackingEvent.parse(e) for e in data.get("events") or []),
                   estimated_delivery=data.get("estimated_delivery"),
                   delivered_at=data.get("delivered_at"))

    @property
    def latest_event(self) -> Optional[TrackingEvent]:
        """The most recent event (ISO times sort as text; the list may come unsorted)."""
        return max(self.events, key=lambda e: e.time, default=None)
