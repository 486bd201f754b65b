"""HTTP layer: routes, auth, body limit, error shape, idempotent writes."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop import service
from shop.config import Settings
from shop.db import IdempotencyKey, init_db, make_engine, ping, write_engine
from shop.errors import ShopError, error_body, invalid
from shop.schemas import (
    AddressIn,
    CancelIn,
    CustomerOut,
    ErrorOut,
    HandoffIn,
    HandoffOut,
    HealthOut,
    ItemsIn,
    LookupOut,
    OrderOut,
    PaymentIn,
    ProductOut,
    RatingIn,
    RatingListOut,
    RatingOut,
    ReturnIn,
    ShipmentOut,
    check_id,
    check_text,
    clean_header_id,
    clean_path_id,
)
from shop.shipments import shipment_view

log = logging.getLogger("shop")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorOut, "description": "Unknown, or not this customer's"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}
WRITE_ERRORS = {**ERRORS, 409: {"model": ErrorOut, "description": "Wrong order state"},
                413: {"model": ErrorOut, "description": "Body too large"}}

CustomerHeader = Annotated[
    str,
    Header(alias="X-Customer-Id", min_length=1, max_length=64,
           description="user_id of the identified customer; other customers' data is a 404"),
]
IdemHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255,
           description="A repeated key returns the first result and changes nothing again"),
]


class Store:
    """The database handles of one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url)
        self.writer: Engine = write_engine(self.engine)

    def read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


# ---------------------------------------------------------------- ASGI guard


class Guard:
    """Bearer-token check on everything but GET /health, and a hard limit on body size."""

    def __init__(self, app: ASGIApp, token: str, max_body: int) -> None:
        self.app = app
        self.token = f"Bearer {token}".encode()
        self.max_body = max_body

    async def _send_error(self, send: Send, status: int, code: str, message: str,
                          extra: list[tuple[bytes, bytes]] | None = None) -> None:
        payload = json.dumps(error_body(code, message)).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(payload)).encode())] + (extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = dict(scope.get("headers") or [])
        if not (path == "/health" and method in ("GET", "HEAD")):
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                await self._send_error(send, 401, "unauthorized",
                                       "Missing or wrong bearer token.",
                                       [(b"www-authenticate", b"Bearer")])
                return
        if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = True
            if too_big:
                await self._send_error(send, 413, "payload_too_large",
                                       f"Request body is limited to {self.max_body} bytes.")
                return
        # Read the (bounded) body up front so a chunked upload cannot exceed the limit.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._send_error(send, 413, "payload_too_large",
                                       f"Request body is limited to {self.max_body} bytes.")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ---------------------------------------------------------------- writes


def _clean_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    try:
        if not key:
            raise ValueError
        check_id(key)
    except ValueError:
        raise invalid(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 printable characters without spaces.",
        ) from None
    return key


def run_write(
    store: Store,
    operation: str,
    caller: str | None,
    payload: BaseModel | None,
    key: str | None,
    action: Callable[[Session], dict[str, Any]],
    ok_status: int = 200,
) -> JSONResponse:
    """Run one write atomically; with an Idempotency-Key, store its answer or replay the first.

    Refusals are stored too, so a repeated key always gets the same status and body.
    """
    key = _clean_key(key)
    fingerprint = hashlib.sha256(
        json.dumps([operation, caller, payload.model_dump(mode="json") if payload else None],
                   sort_keys=True).encode()
    ).hexdigest()

    def replay(saved: IdempotencyKey) -> JSONResponse:
        if saved.fingerprint != fingerprint:
            raise invalid("idempotency_key_reused",
                          "This Idempotency-Key was already used for a different request.")
        return JSONResponse(json.loads(saved.body), saved.status_code,
                            headers={"Idempotent-Replayed": "true"})

    if key is None:
        with Session(store.writer, expire_on_commit=False) as session, session.begin():
            result = action(session)
        return JSONResponse(result, ok_status)

    for _attempt in range(3):
        try:
            with Session(store.writer, expire_on_commit=False) as session, session.begin():
                saved = session.get(IdempotencyKey, key)
                if saved is not None:
                    return replay(saved)
                savepoint = session.begin_nested()
                try:
                    status, body = ok_status, action(session)
                    savepoint.commit()
                except ShopError as exc:
                    savepoint.rollback()
                    status, body = exc.status, exc.body()
                session.add(IdempotencyKey(key=key, fingerprint=fingerprint,
                                           status_code=status, body=json.dumps(body)))
                session.flush()
            return JSONResponse(body, status)
        except IntegrityError:
            # The same key was committed by a concurrent request: replay its answer.
            continue
    raise invalid("idempotency_conflict", "Concurrent requests with this Idempotency-Key; retry.")


# ---------------------------------------------------------------- app


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    parts, code = [], "validation_error"
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            code = "malformed_json"
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return code, ("; ".join(parts) or "Invalid request.")[:1000]


def create_app(settings: Settings | None = None, *, init: bool = True) -> FastAPI:
    """Build the app; `settings` default to the environment (refuses to start without a token)."""
    settings = settings or Settings.from_env()
    store = Store(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        if init:
            init_db(store.engine)
        yield
        store.engine.dispose()

    app = FastAPI(
        title="Shop backend",
        version="1.0.0",
        description="Orders, customers, catalog, returns, logistics and handoff tickets of the "
        "online store; enforces RETAIL_RULES.md. Errors: {\"error\": {\"code\", \"message\"}}.",
        lifespan=lifespan,
    )
    app.state.store = store

    @app.exception_handler(ShopError)
    async def _shop_error(_r: Request, exc: ShopError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _validation_message(exc)
        return JSONResponse(error_body(code, message), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        return JSONResponse(error_body(codes.get(exc.status_code, "http_error"), message),
                            exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _db_busy(_r: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(error_body("database_unavailable", "Database busy; retry."), 503,
                            headers={"Retry-After": "1"})

    # ------------------------------------------------------------ reads

    @app.get("/health", response_model=HealthOut, tags=["meta"])
    def health() -> JSONResponse:
        """200 when the database answers (no token needed)."""
        try:
            ping(store.engine)
        except Exception:  # noqa: BLE001 - any DB failure means "not healthy"
            return JSONResponse(error_body("database_unavailable", "Database does not answer."),
                                503)
        return JSONResponse({"status": "ok", "database": store.engine.dialect.name})

    @app.get("/customers/lookup", response_model=LookupOut, responses=ERRORS, tags=["customers"])
    def lookup(
        email: Annotated[str | None, Query(max_length=320)] = None,
        first_name: Annotated[str | None, Query(max_length=200)] = None,
        last_name: Annotated[str | None, Query(max_length=200)] = None,
        zip: Annotated[str | None, Query(max_length=40)] = None,  # noqa: A002 - contract name
    ) -> JSONResponse:
        """Identify a shopper by email, or by first name + last name + zip."""
        for value in (email, first_name, last_name, zip):
            if value is not None:
                try:
                    check_text(value)
                    value.encode("utf-8")
                except (ValueError, UnicodeError):
                    raise invalid("validation_error", "Lookup values contain invalid characters.") \
                        from None
        with store.read() as session:
            return JSONResponse(service.lookup_customer(session, email, first_name, last_name, zip))

    @app.get("/customers/{user_id}", response_model=CustomerOut, responses=ERRORS,
             tags=["customers"])
    def customer(user_id: str, x_customer_id: CustomerHeader) -> JSONResponse:
        """Profile: name, email, address, payment methods (cards: brand + last four), orders."""
        caller = clean_header_id(x_customer_id)
        user_id = clean_path_id(user_id, "Customer")
        with store.read() as session:
            return JSONResponse(service.get_customer(session, user_id, caller))

    @app.get("/orders/{order_id}", response_model=OrderOut, responses=ERRORS, tags=["orders"])
    async def order(order_id: str, x_customer_id: CustomerHeader) -> JSONResponse:
        """The order with the seed's fields (`#` optional in the id; `%23` when given)."""
        caller = clean_header_id(x_customer_id)
        order_id = clean_path_id(order_id, "Order")
        with store.read() as session:
            return JSONResponse(service.get_order(session, order_id, caller))

    @app.get("/products", response_model=list[ProductOut], responses=ERRORS, tags=["catalog"])
    def products() -> JSONResponse:
        """The whole catalog: every product with its variants, availability and prices."""
        with store.read() as session:
            return JSONResponse(service.list_products(session))

    @app.get("/products/{product_id}", response_model=ProductOut, responses=ERRORS,
             tags=["catalog"])
    def product(product_id: str) -> JSONResponse:
        product_id = clean_path_id(product_id, "Product")
        with store.read() as session:
            return JSONResponse(service.get_product(session, product_id))

    @app.get("/shipments/{tracking_id}", response_model=ShipmentOut, responses=ERRORS,
             tags=["logistics"])
    def shipment(tracking_id: str) -> JSONResponse:
        """Carrier, status and dated events (deterministic per tracking id)."""
        tracking_id = clean_path_id(tracking_id, "Shipment")
        with store.read() as session:
            order = service.get_shipment_order(session, tracking_id)
            return JSONResponse(shipment_view(tracking_id, order))

    @app.get("/handoffs/{handoff_id}", response_model=HandoffOut, responses=ERRORS,
             tags=["handoffs"])
    def handoff(handoff_id: str) -> JSONResponse:
        handoff_id = clean_path_id(handoff_id, "Handoff")
        with store.read() as session:
            return JSONResponse(service.get_handoff(session, handoff_id))

    # ------------------------------------------------------------ writes

    def order_write(
        name: str,
        fn: Callable[[Session, str, str, Any], dict[str, Any]],
        order_id: str,
        caller_header: str,
        body: BaseModel,
        key: str | None,
    ) -> JSONResponse:
        caller = clean_header_id(caller_header)
        order_id = service.normalize_order_id(clean_path_id(order_id, "Order"))
        return run_write(store, f"{name} {order_id}", caller, body, key,
                         lambda s: fn(s, order_id, caller, body))

    @app.put("/customers/{user_id}/address", response_model=CustomerOut,
             responses=WRITE_ERRORS, tags=["customers"])
    def customer_address(user_id: str, body: AddressIn, x_customer_id: CustomerHeader,
                         idempotency_key: IdemHeader = None) -> JSONResponse:
        """New default address of the customer; existing orders keep theirs."""
        caller = clean_header_id(x_customer_id)
        user_id = clean_path_id(user_id, "Customer")
        return run_write(store, f"address {user_id}", caller, body, idempotency_key,
                         lambda s: service.change_customer_address(s, user_id, caller, body))

    @app.post("/orders/{order_id}/cancel", response_model=OrderOut, responses=WRITE_ERRORS,
              tags=["orders"])
    def cancel(order_id: str, body: CancelIn, x_customer_id: CustomerHeader,
               idempotency_key: IdemHeader = None) -> JSONResponse:
        """Cancel a pending order; every payment is refunded to its method."""
        return order_write("cancel", service.cancel_order, order_id, x_customer_id, body,
                           idempotency_key)

    @app.post("/orders/{order_id}/address", response_model=OrderOut, responses=WRITE_ERRORS,
              tags=["orders"])
    def order_address(order_id: str, body: AddressIn, x_customer_id: CustomerHeader,
                      idempotency_key: IdemHeader = None) -> JSONResponse:
        """New shipping address of a pending order."""
        return order_write("order-address", service.change_order_address, order_id,
                           x_customer_id, body, idempotency_key)

    @app.post("/orders/{order_id}/payment", response_model=OrderOut, responses=WRITE_ERRORS,
              tags=["orders"])
    def order_payment(order_id: str, body: PaymentIn, x_customer_id: CustomerHeader,
                      idempotency_key: IdemHeader = None) -> JSONResponse:
        """Pay a pending single-payment order with another method of the customer."""
        return order_write("payment", service.change_order_payment, order_id, x_customer_id,
                           body, idempotency_key)

    @app.post("/orders/{order_id}/items", response_model=OrderOut, responses=WRITE_ERRORS,
              tags=["orders"])
    def order_items(order_id: str, body: ItemsIn, x_customer_id: CustomerHeader,
                    idempotency_key: IdemHeader = None) -> JSONResponse:
        """Swap items of a pending order for other available variants (once per order)."""
        return order_write("items", service.modify_order_items, order_id, x_customer_id, body,
                           idempotency_key)

    @app.post("/orders/{order_id}/return", response_model=OrderOut, responses=WRITE_ERRORS,
              tags=["orders"])
    def order_return(order_id: str, body: ReturnIn, x_customer_id: CustomerHeader,
                     idempotency_key: IdemHeader = None) -> JSONResponse:
        """Request a return of delivered items (refund: original method or a gift card)."""
        return order_write("return", service.return_items, order_id, x_customer_id, body,
                           idempotency_key)

    @app.post("/orders/{order_id}/exchange", response_model=OrderOut, responses=WRITE_ERRORS,
              tags=["orders"])
    def order_exchange(order_id: str, body: ItemsIn, x_customer_id: CustomerHeader,
                       idempotency_key: IdemHeader = None) -> JSONResponse:
        """Request an exchange of delivered items for other available variants."""
        return order_write("exchange", service.exchange_items, order_id, x_customer_id, body,
                           idempotency_key)

    @app.post("/handoffs", response_model=HandoffOut, status_code=201, responses=WRITE_ERRORS,
              tags=["handoffs"])
    def open_handoff(body: HandoffIn, idempotency_key: IdemHeader = None) -> JSONResponse:
        """Open a human-agent ticket with a summary; returns its id."""
        return run_write(store, "handoff", None, body, idempotency_key,
                         lambda s: service.open_handoff(s, body), ok_status=201)

    @app.post("/ratings", response_model=RatingOut, status_code=201,
              responses={**WRITE_ERRORS, 409: {"model": ErrorOut,
                                               "description": "Conversation already rated"}},
              tags=["ratings"])
    def create_rating(body: RatingIn, idempotency_key: IdemHeader = None) -> JSONResponse:
        """Store a shopper's 1-5 rating of a conversation (one per conversation)."""
        return run_write(store, "rating", None, body, idempotency_key,
                         lambda s: service.create_rating(s, body), ok_status=201)

    @app.get("/ratings", response_model=RatingListOut, responses=ERRORS, tags=["ratings"])
    def ratings(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> JSONResponse:
        """The newest ratings first, and count / average / distribution over all ratings."""
        with store.read() as session:
            return JSONResponse(service.list_ratings(session, limit))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            for path, ops in schema.get("paths", {}).items():
                if path == "/health":
                    continue
                for op in ops.values():
                    op["security"] = [{"bearer": []}]
                    op.setdefault("responses", {}).setdefault(
                        "401", {"description": "Missing or wrong bearer token",
                                "content": {"application/json": {"schema": {
                                    "$ref": "#/components/schemas/ErrorOut"}}}})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Guard, token=settings.api_token, max_body=settings.max_body_bytes)
    return app
