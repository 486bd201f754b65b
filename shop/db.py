"""Schema, engines and seeding.

Money is stored as integer cents so that sums never drift; the API shows dollars rounded to cents.
Line items, fulfillments and payment history live as JSON documents in the order row: they are only
ever read and written together with their order, under the order's row lock.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

from shop.config import SEED_FILE

JSONType = JSON().with_variant(JSONB(), "postgresql")


def fold(value: str) -> str:
    """Case- and accent-insensitive form used for identification lookups (as tau2-bench does)."""
    decomposed = unicodedata.normalize("NFKD", value.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def to_cents(amount: float) -> int:
    return int(round(float(amount) * 100))


def to_dollars(cents: int) -> float:
    return round(cents / 100, 2)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime) -> datetime:
    """A stored time as UTC: SQLite gives it back without its zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), index=True)
    first_name_key: Mapped[str] = mapped_column(String(200))
    last_name_key: Mapped[str] = mapped_column(String(200))
    address1: Mapped[str] = mapped_column(String(200))
    address2: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(200))
    zip: Mapped[str] = mapped_column(String(40))

    __table_args__ = (Index("ix_customers_name_zip", "last_name_key", "first_name_key", "zip"),)


class PaymentMethod(Base):
    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("customers.user_id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32))  # gift_card | credit_card | paypal
    brand: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_four: Mapped[str | None] = mapped_column(String(4), nullable=True)
    balance_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Product(Base):
    __tablename__ = "products"

    product_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)


class Variant(Base):
    __tablename__ = "variants"

    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.product_id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType)
    available: Mapped[bool] = mapped_column(Boolean)
    price_cents: Mapped[int] = mapped_column(Integer)


class Order(Base):
    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("customers.user_id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # place in the customer's order list
    status: Mapped[str] = mapped_column(String(40), index=True)
    address: Mapped[dict[str, Any]] = mapped_column(JSONType)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    fulfillments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    payment_history: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    cancel_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    return_items: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    return_payment_method_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    return_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    exchange_items: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    exchange_new_items: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    exchange_payment_method_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    exchange_price_difference_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Shipment(Base):
    """Tracking id -> order, so a tracking lookup is one indexed read."""

    __tablename__ = "shipments"

    tracking_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), index=True)


class IdempotencyKey(Base):
    """The first answer to a write sent with an `Idempotency-Key`, replayed for repeats."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Handoff(Base):
    """A human-agent ticket: opened by the assistant, worked by an agent at the desk.

    `status` is `open` (waiting for an agent), `claimed` (an agent has it) or `closed` (final,
    with an `outcome`); see shop/desk.py. The desk columns came after the first release, so
    they are nullable and `upgrade_schema` adds them to an existing database.
    """

    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    summary: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # since when it waits for an agent: its creation, or its last release (null: created_at)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                              nullable=True)
    first_agent_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                                  nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (Index("ix_handoffs_status_created", "status", "created_at"),)


class Agent(Base):
    """A desk agent; written from SHOP_AGENTS / AGENT_TOKEN on start (shop/agents.py).

    `password_hash` is `scrypt$n$r$p$salt$hash` (hex). An agent no longer configured is kept
    (the audit names it) but inactive: it cannot log in and its sessions are gone.
    """

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentSession(Base):
    """A logged-in agent: SHA-256 of the session token (the token itself is never stored)."""

    __tablename__ = "agent_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AgentLoginFailure(Base):
    """One failed `POST /agents/login` of an agent id (known or not), counted by the login lock."""

    __tablename__ = "agent_login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    __table_args__ = (Index("ix_agent_login_failures_agent_time", "agent_id", "failed_at"),)


class DeskAudit(Base):
    """One agent action: login, logout, claim, reply, release, close (shop/desk.py)."""

    __tablename__ = "desk_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    handoff_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Rating(Base):
    """A shopper's 1-5 satisfaction rating of one conversation (at most one per conversation)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(200), unique=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)


class IdentificationFailure(Base):
    """One failed identification attempt under one key (shop/identification.py).

    A failed lookup adds a row for its account key and, when the caller named its client, one for
    the client key. `key` is a SHA-256 of the key (so no email or name is stored here); old rows
    are pruned as new failures arrive.
    """

    __tablename__ = "identification_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    __table_args__ = (Index("ix_identification_failures_key_time", "key", "failed_at"),)


# ---------------------------------------------------------------- risk control (shop/risk.py)


class RiskDecision(Base):
    """The risk decision on one order change that passed the store's rules (shop/risk.py).

    `decision` is `allowed` or `flagged` (score at or over the threshold); `refused` says the
    change was not done (a flagged change in enforce mode). `reasons` are the rules that gave
    points (`[{"code", "points", "message"}]`), `request` the change's body (what an agent
    approving it runs). `review` (`approved` / `rejected`) is an agent's verdict on a refused one.
    """

    __tablename__ = "risk_decisions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(20))
    score: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(10))
    refused: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    value_cents: Mapped[int] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    review: Mapped[str | None] = mapped_column(String(10), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_risk_decisions_decision_at", "decision", "at"),)


class AccountEvent(Base):
    """An address change: the customer's default address or an order's shipping address.

    Written by shop/risk.py's listeners whenever such a row changes (any code path), so the
    rule "address changed shortly before" can see it; the rows themselves keep no history.
    """

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # customer_address | order_address
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index("ix_account_events_user_time", "user_id", "at"),)


class RiskIdentificationFailure(Base):
    """Risk control's copy of a failed identification (same hashed key and time).

    `identification_failures` forgets an account's failures when a lookup succeeds (that is the
    lock's job); this copy is kept 7 days, so a change right after a run of wrong guesses still
    sees them. Written by a listener in shop/risk.py.
    """

    __tablename__ = "risk_identification_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    __table_args__ = (Index("ix_risk_identification_failures_key_time", "key", "failed_at"),)


# ---------------------------------------------------------------- engines


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """Engine with the locking behaviour the write path relies on.

    SQLite: WAL (readers never wait for the writer), a busy timeout, and `BEGIN IMMEDIATE` for
    connections marked `shop_write`, so a write transaction holds the database write lock from its
    first statement and two writes to one order are serialised. PostgreSQL: writes lock the order
    row with SELECT ... FOR UPDATE (see service.py).
    """
    if url.startswith("sqlite"):
        memory = ":memory:" in url or url in ("sqlite://", "sqlite:///")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if memory:
            kwargs["poolclass"] = StaticPool
        else:
            kwargs.update(pool_size=20, max_overflow=20)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            write = conn.get_execution_options().get("shop_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def write_engine(engine: Engine) -> Engine:
    """Same pool, but transactions take the write lock up front (SQLite)."""
    return engine.execution_options(shop_write=True)


# ---------------------------------------------------------------- seeding


def _seed_rows(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    customers, methods, products, variants, orders, shipments = [], [], [], [], [], []
    for p_pos, product in enumerate(data["products"].values()):
        products.append(
            {"product_id": product["product_id"], "name": product["name"], "position": p_pos}
        )
        for v_pos, variant in enumerate(product["variants"].values()):
            variants.append(
                {
                    "item_id": variant["item_id"],
                    "product_id": product["product_id"],
                    "position": v_pos,
                    "options": variant["options"],
                    "available": bool(variant["available"]),
                    "price_cents": to_cents(variant["price"]),
                }
            )
    order_position: dict[str, int] = {}
    for user in data["users"].values():
        name, addr = user["name"], user["address"]
        customers.append(
            {
                "user_id": user["user_id"],
                "first_name": name["first_name"],
                "last_name": name["last_name"],
                "email": user["email"],
                "email_key": fold(user["email"]),
                "first_name_key": fold(name["first_name"]),
                "last_name_key": fold(name["last_name"]),
                **{k: addr.get(k, "") for k in ADDRESS_FIELDS},
            }
        )
        for m_pos, method in enumerate(user["payment_methods"].values()):
            balance = method.get("balance")
            methods.append(
                {
                    "id": method["id"],
                    "user_id": user["user_id"],
                    "position": m_pos,
                    "source": method["source"],
                    "brand": method.get("brand"),
                    "last_four": method.get("last_four"),
                    "balance_cents": to_cents(balance) if balance is not None else None,
                }
            )
        for o_pos, order_id in enumerate(user["orders"]):
            order_position[order_id] = o_pos
    for order in data["orders"].values():
        orders.append(
            {
                "order_id": order["order_id"],
                "user_id": order["user_id"],
                "position": order_position.get(order["order_id"], 0),
                "status": order["status"],
                "address": order["address"],
                "items": order["items"],
                "fulfillments": order["fulfillments"],
                "payment_history": order["payment_history"],
            }
        )
        for fulfillment in order["fulfillments"]:
            for tracking_id in fulfillment["tracking_id"]:
                shipments.append({"tracking_id": tracking_id, "order_id": order["order_id"]})
    return {
        "products": products,
        "variants": variants,
        "customers": customers,
        "payment_methods": methods,
        "orders": orders,
        "shipments": shipments,
    }


ADDRESS_FIELDS = ("address1", "address2", "city", "country", "state", "zip")
_TABLE_MODELS = {
    "products": Product,
    "variants": Variant,
    "customers": Customer,
    "payment_methods": PaymentMethod,
    "orders": Order,
    "shipments": Shipment,
}


def upgrade_schema(conn: Connection) -> list[str]:
    """Add the columns and indexes a table gained since an existing database was created.

    `create_all` makes missing tables but never changes an existing one; new columns are
    nullable (without a default), so adding them leaves every row as it was. Returns what it
    added (`table.column`, index names).
    """
    added: list[str] = []
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.primary_key:
                raise RuntimeError(f"cannot add required column {table.name}.{column.name}")
            ddl_type = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {quote(table.name)} "
                              f"ADD COLUMN {quote(column.name)} {ddl_type}"))
            added.append(f"{table.name}.{column.name}")
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
                added.append(str(index.name))
    return added


def init_db(engine: Engine, seed_file: Path = SEED_FILE) -> bool:
    """Create (or upgrade) the schema and seed it once; safe when several workers start at once.

    Returns True when this call seeded the database.
    """
    with write_engine(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(727_001)))
        Base.metadata.create_all(conn)
        upgrade_schema(conn)
        if conn.execute(select(func.count()).select_from(Product)).scalar_one():
            return False
        data = json.loads(seed_file.read_text(encoding="utf-8"))
        for table, rows in _seed_rows(data).items():
            conn.execute(insert(_TABLE_MODELS[table]), rows)
        return True


def reset_db(engine: Engine, seed_file: Path = SEED_FILE) -> None:
    """Drop every table of the shop and seed afresh (`python -m shop.reset`)."""
    with write_engine(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(727_001)))
        Base.metadata.drop_all(conn)
    init_db(engine, seed_file)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
