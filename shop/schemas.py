"""Request bodies (strict: unknown fields and odd strings are refused), the cleaning of ids in
paths and headers, and the documented answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from shop.errors import ShopError, invalid, not_found


def _is_id_char(ch: str) -> bool:
    return ch.isprintable() and not ch.isspace() and not 0xD800 <= ord(ch) <= 0xDFFF


def check_text(value: str) -> str:
    """Refuse control characters and lone surrogates: they cannot be stored or shown safely."""
    for ch in value:
        code = ord(ch)
        if code < 0x20 and ch not in "\t\n" or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            raise ValueError("text contains control characters or invalid unicode")
    return value


def check_id(value: str) -> str:
    """Ids are short printable tokens; anything else cannot name a record."""
    if not all(_is_id_char(ch) for ch in value):
        raise ValueError("id contains whitespace, control characters or invalid unicode")
    return value


def _require_id(value: str, refusal: Callable[[], ShopError], max_length: int = 64) -> str:
    """The id stripped; empty, too long or not a printable token raises `refusal()`."""
    value = value.strip()
    if not value or len(value) > max_length or not all(_is_id_char(ch) for ch in value):
        raise refusal()
    return value


def clean_path_id(value: str, what: str) -> str:
    """Path ids: malformed ones are simply unknown (404), never a crash."""
    return _require_id(value, lambda: not_found(what))


def clean_order_id(value: str) -> str:
    """The one place order ids are normalised: `#W2611340` (`%23W2611340` in a URL),
    `W2611340`, `w2611340` and `2611340` all name order `#W2611340`."""
    canonical = clean_path_id(value, "Order").lstrip("#")
    if canonical[:1] in ("w", "W"):
        canonical = "W" + canonical[1:]
    elif canonical.isdigit():
        canonical = "W" + canonical
    return "#" + canonical


def clean_customer_header(value: str) -> str:
    """X-Customer-Id as a customer id string, or a 422 saying it is missing/malformed."""
    return _require_id(value, lambda: invalid(
        "customer_id_required",
        "Header X-Customer-Id must carry the user id of the identified customer."))


def clean_client_id(value: str | None) -> str | None:
    """X-Client-Id: an opaque 1-128 character string of printable characters (spaces inside)."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 128 or not value.isprintable() or any(
            0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise invalid("invalid_client_id",
                      "X-Client-Id must be 1-128 printable characters.")
    return value


def clean_idempotency_key(value: str | None) -> str | None:
    """A client's Idempotency-Key (the header caps it at 255 characters)."""
    return None if value is None else _require_id(value, lambda: invalid(
        "invalid_idempotency_key",
        "Idempotency-Key must be 1-255 printable characters without spaces."), max_length=255)


def clean_lookup(value: str | None) -> str | None:
    """Lookup query values are free text, but never control characters or broken unicode."""
    try:
        return value if value is None else check_text(value)
    except ValueError:
        raise invalid("validation_error", "Lookup values contain invalid characters.") from None


def iso(moment: datetime | str) -> str:
    """UTC timestamps with a `Z`, whether or not the database kept the time zone."""
    if isinstance(moment, str):
        return moment
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if moment.tzinfo else text + "Z"


Text = Annotated[str, AfterValidator(check_text)]
Id = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_id)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(Strict):
    address1: Annotated[Text, Field(min_length=1, max_length=200)]
    address2: Annotated[Text, Field(max_length=200)] = ""
    city: Annotated[Text, Field(min_length=1, max_length=100)]
    state: Annotated[Text, Field(min_length=1, max_length=100)]
    country: Annotated[Text, Field(min_length=1, max_length=100)]
    zip: Annotated[Text, Field(min_length=1, max_length=20)]


class CancelIn(Strict):
    reason: Annotated[Text, Field(min_length=1, max_length=200)] = Field(
        description='"no longer needed" or "ordered by mistake"'
    )


class PaymentIn(Strict):
    payment_method_id: Id


class ItemsIn(Strict):
    """Same shape for modifying a pending order's items and exchanging delivered ones."""

    item_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] = Field(
        description="Item ids of the order; the same id may appear twice (two units)."
    )
    new_item_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] = Field(
        description="New variant for the item at the same position, of the same product."
    )
    payment_method_id: Id


class ReturnIn(Strict):
    item_ids: Annotated[list[Id], Field(min_length=1, max_length=100)]
    payment_method_id: Id
    reason: Annotated[Text, Field(max_length=1000)] | None = None


class HandoffIn(Strict):
    summary: Annotated[Text, Field(min_length=1, max_length=4000)]
    reason: Annotated[Text, Field(max_length=500)] | None = None
    user_id: Id | None = None
    conversation_id: Annotated[Text, Field(max_length=200)] | None = None


class RatingIn(Strict):
    """A satisfaction rating; strict integers so that `true` or `"5"` are not taken for 1 or 5."""

    conversation_id: Annotated[Text, Field(min_length=1, max_length=200)]
    rating: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Annotated[Text, Field(max_length=1000)] | None = None
    customer_id: Id | None = None


AgentIdIn = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Note = Annotated[Text, Field(max_length=2000)]
Outcome = Literal["resolved", "unresolved", "no_reply"]


class LoginIn(Strict):
    agent_id: AgentIdIn = Field(description="The agent's id of SHOP_AGENTS (`desk`: AGENT_TOKEN)")
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class NoBody(Strict):
    """The (empty) request of a write without a body: what its Idempotency-Key fingerprints."""


class ReleaseIn(Strict):
    note: Note | None = Field(None, description="For the bot / the next agent (audit row)")


class CloseIn(Strict):
    outcome: Outcome
    note: Note | None = None


# ---------------------------------------------------------------- documented answers

UtcTime = Annotated[str, BeforeValidator(iso), Field(description="ISO 8601, UTC")]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # some errors say more (who claimed a ticket)

    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class Address(BaseModel):
    # The seed's key order, which the JSON answers have always had.
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str


class OrderItem(BaseModel):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, Any]


class Fulfillment(BaseModel):
    tracking_id: list[str]
    item_ids: list[str]


class PaymentEntry(BaseModel):
    transaction_type: Literal["payment", "refund"]
    amount: float
    payment_method_id: str


class OrderOut(BaseModel):
    order_id: str
    user_id: str
    address: Address
    items: list[OrderItem]
    status: str
    fulfillments: list[Fulfillment]
    payment_history: list[PaymentEntry]
    cancel_reason: str | None = None
    return_items: list[str] | None = None
    return_payment_method_id: str | None = None
    return_reason: str | None = None
    exchange_items: list[str] | None = None
    exchange_new_items: list[str] | None = None
    exchange_payment_method_id: str | None = None
    exchange_price_difference: float | None = None


class Name(BaseModel):
    first_name: str
    last_name: str


class PaymentMethodOut(BaseModel):
    source: Literal["gift_card", "credit_card", "paypal"]
    id: str
    brand: str | None = None
    last_four: str | None = None
    balance: float | None = None


class CustomerOut(BaseModel):
    user_id: str
    name: Name
    address: Address
    email: str
    payment_methods: dict[str, PaymentMethodOut]
    orders: list[str]


class LookupOut(BaseModel):
    user_id: str


class VariantOut(BaseModel):
    item_id: str
    options: dict[str, Any]
    available: bool
    price: float


class ProductOut(BaseModel):
    name: str
    product_id: str
    variants: dict[str, VariantOut]


class TrackingEvent(BaseModel):
    time: str
    status: str
    description: str
    location: str


class ShipmentOut(BaseModel):
    tracking_id: str
    carrier: str
    status: str
    order_id: str
    item_ids: list[str]
    estimated_delivery: str | None = None
    delivered_at: str | None = None
    events: list[TrackingEvent]


class HandoffOut(BaseModel):
    id: str = Field(description='"ho_" and 16 hex digits')
    status: str = Field(description='"open" when created')
    summary: str
    reason: str | None = None
    user_id: str | None = Field(None, description="The customer concerned, if identified")
    conversation_id: str | None = None
    created_at: UtcTime


class RatingOut(BaseModel):
    id: int
    conversation_id: str = Field(description="Rasa's sender id; one rating each")
    rating: int = Field(description="1 to 5")
    comment: str | None = None
    customer_id: str | None = Field(None, description="The identified shopper, if any")
    created_at: UtcTime


class RatingSummary(BaseModel):
    count: int
    average: float | None = Field(description="Mean rating, 2 decimals; null when none")
    distribution: dict[str, int] = Field(description='Count per rating, keys "1" to "5"')


class RatingListOut(BaseModel):
    ratings: list[RatingOut] = Field(description="Newest first, at most `limit`")
    summary: RatingSummary = Field(description="Over every stored rating, not only this page")


class HealthOut(BaseModel):
    status: str
    database: str


# ---------------------------------------------------------------- agent desk

OptionalTime = Annotated[str | None, BeforeValidator(lambda v: None if v is None else iso(v)),
                         Field(description="ISO 8601, UTC; null when it has not happened")]
Seconds = Field(description="Whole seconds")


class AgentOut(BaseModel):
    agent_id: str
    display_name: str
    expires_at: UtcTime = Field(description="When this session ends")


class LoginOut(AgentOut):
    token: str = Field(description="Send as X-Agent-Token (with X-Agent-Id) on desk calls")


class DeskHandoffOut(BaseModel):
    """A ticket as the desk sees it (every field present; null when it does not apply)."""

    id: str
    status: Literal["open", "claimed", "closed"]
    created_at: UtcTime
    waiting_seconds: int | None = Field(
        description="open: since it (re)entered the queue; claimed: how long it waited for "
        "this claim; closed: null")
    summary: str
    reason: str | None
    user_id: str | None = Field(description="The identified customer, if any")
    customer_name: str | None = Field(description="First and last name of that customer")
    conversation_id: str | None = Field(description="Rasa's sender id")
    queued_at: UtcTime = Field(description="Creation, or the last release")
    claimed_by: str | None = Field(description="Agent id holding it (claimed), or who held it "
                                   "when it was closed")
    claimed_by_name: str | None
    claimed_at: OptionalTime
    first_agent_reply_at: OptionalTime
    closed_at: OptionalTime
    closed_by: str | None
    outcome: Outcome | None


class DeskHandoffListOut(BaseModel):
    handoffs: list[DeskHandoffOut] = Field(description="Newest first, at most `limit`")


class AuditEntryOut(BaseModel):
    id: int
    at: UtcTime
    agent_id: str
    action: Literal["login", "logout", "claim", "reply_recorded", "release", "close"]
    handoff_id: str | None
    outcome: Outcome | None = Field(description="Of a close")
    note: str | None


class AuditListOut(BaseModel):
    entries: list[AuditEntryOut] = Field(description="Newest first, at most `limit`")


class Durations(BaseModel):
    count: int = Field(description="Tickets it was measured on")
    median_seconds: float | None = Field(description="null when count is 0")
    p90_seconds: float | None = Field(description="Nearest rank; null when count is 0")


class DeskStatsOut(BaseModel):
    since: OptionalTime = Field(None, description="Tickets created from then on (all if null)")
    handoffs: dict[str, int] = Field(description="Count per status, and `total`")
    time_to_claim: Durations = Field(description="Creation to first claim")
    time_to_first_reply: Durations = Field(description="Creation to first agent reply")
    outcomes: dict[str, int] = Field(description="Closed tickets per outcome")


# ---------------------------------------------------------------- risk control (shop/risk.py)

RiskOperation = Literal["cancel", "order-address", "payment", "items", "return", "exchange"]


class RiskReason(BaseModel):
    code: str = Field(description="The rule, e.g. `returns_30d` (docs/risk.md)")
    points: int
    message: str = Field(description="What the rule saw, in plain words")


class RiskRefusalDetail(ErrorDetail):
    """The `error` of a 409 `risk_review_required`."""

    decision_id: str = Field(description='"rk_" and 16 hex digits: the logged decision')
    score: int
    threshold: int
    reasons: list[RiskReason]


class RiskRefusalOut(BaseModel):
    error: RiskRefusalDetail


class RiskDecisionOut(BaseModel):
    id: str
    at: UtcTime
    user_id: str
    order_id: str
    operation: RiskOperation
    score: int
    threshold: int
    decision: Literal["allowed", "flagged"]
    refused: bool = Field(description="The change was not done (flagged, enforce mode)")
    reasons: list[RiskReason]
    value: float = Field(description="What the change moves, in dollars")
    request: dict[str, Any] = Field(description="The change's body")
    review: Literal["approved", "rejected"] | None = Field(
        description="An agent's verdict on a refused change; null: none (yet)")
    reviewed_by: str | None
    reviewed_at: OptionalTime
    review_note: str | None


class RiskDecisionListOut(BaseModel):
    decisions: list[RiskDecisionOut] = Field(description="Newest first, at most `limit`")


class RiskReviewIn(Strict):
    note: Note | None = None


class RiskReviewOut(BaseModel):
    decision: RiskDecisionOut
    order: OrderOut | None = Field(None, description="The order after an approved change")


class RiskRate(BaseModel):
    total: int
    flagged: int
    flag_rate: float | None = Field(description="flagged / total; null when total is 0")


class RiskReasonCount(BaseModel):
    decisions: int = Field(description="Decisions the rule gave points to")
    flagged: int = Field(description="... of them flagged")


class RiskStatsOut(BaseModel):
    since: OptionalTime = Field(None, description="Decisions from then on (all if null)")
    mode: Literal["enforce", "monitor"]
    threshold: int
    decisions: dict[str, int] = Field(description="`total`, `allowed`, `flagged`, `refused`")
    flag_rate: float | None = Field(description="flagged / total; null when there is none")
    operations: dict[str, RiskRate] = Field(description="Per operation")
    reasons: dict[str, RiskReasonCount] = Field(description="Per rule (reason code)")
    reviews: dict[str, int] = Field(description="Refused changes: `pending`, `approved`, "
                                    "`rejected`")
