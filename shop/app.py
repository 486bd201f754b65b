"""The app: middleware, error shape, OpenAPI and the routers (routes live in shop/routes/)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shop.agents import sync_agents
from shop.config import Settings
from shop.db import init_db
from shop.deps import Store
from shop.errors import REFUSED, ShopError, error_body
from shop.guard import Guard
from shop.idempotency import Replayed, replay
from shop.routes import ROUTERS
from shop.routes import risk as risk_routes

log = logging.getLogger("shop")
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def _shop_error(_r: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShopError)
    return JSONResponse(exc.body(), exc.status, headers=exc.headers)


async def _validation(_r: Request, exc: Exception) -> JSONResponse:
    """422 listing what is malformed; if only our own id/header checks failed, the first one."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = [e for e in errors if e.get("type") != REFUSED]
    if not malformed:
        return await _shop_error(_r, ShopError.from_validation(errors[0]))
    parts, code = [], "validation_error"
    for err in malformed[:5]:
        if err.get("type") == "json_invalid":
            code = "malformed_json"
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return JSONResponse(error_body(code, ("; ".join(parts) or "Invalid request.")[:1000]), 422)


async def _http(_r: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request refused."
    return JSONResponse(error_body(HTTP_CODES.get(exc.status_code, "http_error"), message),
                        exc.status_code, headers=getattr(exc, "headers", None))


async def _db_busy(_r: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return JSONResponse(error_body("database_unavailable", "Database busy; retry."), 503,
                        headers={"Retry-After": "1"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated spec, plus the bearer scheme on every operation but /health."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        unauthorized = {"description": "Missing or wrong bearer token", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        for path, ops in schema.get("paths", {}).items():
            if path == "/health":
                continue
            for op in ops.values():
                op["security"] = [{"bearer": []}]
                op.setdefault("responses", {}).setdefault("401", unauthorized)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings | None = None, *, init: bool = True) -> FastAPI:
    """Build the app; `settings` default to the environment (refuses to start without a token)."""
    settings = settings or Settings.from_env()
    store = Store(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if init:
            init_db(store.engine)
            # table `agents` = SHOP_AGENTS / AGENT_TOKEN (each worker: an unchanged one is a no-op)
            await to_thread.run_sync(sync_agents, store.engine, settings.agents)
        # the routes' database work runs in anyio's default thread pool (shop/deps.py)
        to_thread.current_default_thread_limiter().total_tokens = settings.db_threads
        yield
        store.engine.dispose()

    app = FastAPI(
        title="Shop backend",
        version="1.0.0",
        description="Orders, customers, catalog, returns, logistics and handoff tickets of the "
        "online store; enforces docs/retail-rules.md. "
        "Errors: {\"error\": {\"code\", \"message\"}}.",
        lifespan=lifespan,
    )
    app.state.store = store
    app.add_exception_handler(ShopError, _shop_error)
    app.add_exception_handler(Replayed, replay)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OperationalError, _db_busy)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(risk_routes.router)  # risk control's report and reviews (docs/risk.md)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(Guard, token=settings.api_token, max_body=settings.max_body_bytes)
    return app
