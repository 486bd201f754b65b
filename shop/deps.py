"""Typed dependencies of the routes: the database, the caller, and ids cleaned on the way in.

The id and header types validate with `ShopError.as_validation`, so a malformed id is still a
404 (or a 422 with our code) but never hides a malformed body, as when routes checked them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shop import agents
from shop.config import Settings
from shop.db import make_engine, utcnow, write_engine
from shop.errors import ShopError
from shop.schemas import (
    AgentOut,
    clean_client_id,
    clean_customer_header,
    clean_idempotency_key,
    clean_order_id,
    clean_path_id,
)

T = TypeVar("T")


class Store:
    """The database handles of one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url)
        self.writer: Engine = write_engine(self.engine)
        # "now" of the identification and agent-login locks, sessions and the desk; tests move it
        self.clock: Callable[[], datetime] = utcnow

    def read(self) -> Session:
        """A session for one read (open and closed in the same worker thread)."""
        return Session(self.engine, expire_on_commit=False)

    async def query(self, read: Callable[..., T], *args: Any) -> T:
        """``read(session, *args)`` in one trip to the thread pool, session open to close.

        Routes are ``async`` and await this: the database never blocks the event loop, and
        FastAPI then checks the answer against its model on the loop, where a ``def`` route
        would cost a second trip to the pool for that.
        """

        def work() -> T:
            with self.read() as session:
                return read(session, *args)

        return await run_in_threadpool(work)


async def get_store(request: Request) -> Store:
    """Async: an attribute read needs no trip to the thread pool."""
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]



def refusing(clean: Callable[[T], T]) -> AfterValidator:
    """Run `clean` as a validator; its ShopError becomes a validation error of our own type."""

    def validate(value: T) -> T:
        try:
            return clean(value)
        except ShopError as exc:
            raise exc.as_validation() from None

    return AfterValidator(validate)


def path_id(what: str) -> AfterValidator:
    return refusing(partial(clean_path_id, what=what))


async def get_caller(
    x_customer_id: Annotated[
        str,
        Header(alias="X-Customer-Id", min_length=1, max_length=64,
               description="user_id of the identified customer; other customers' data is a 404"),
        refusing(clean_customer_header),
    ],
) -> str:
    """The identified customer every customer and order call is scoped to."""
    return x_customer_id


async def get_optional_caller(
    x_customer_id: Annotated[
        str | None,
        Header(alias="X-Customer-Id", min_length=1, max_length=64,
               description="user_id of the identified customer, if any; a body naming a "
               "customer must name this one"),
        refusing(clean_customer_header),
    ] = None,
) -> str | None:
    """The identified customer of a write that may also be anonymous (handoffs, ratings)."""
    return x_customer_id


Caller = Annotated[str, Depends(get_caller)]
OptionalCaller = Annotated[str | None, Depends(get_optional_caller)]
ClientId = Annotated[
    str | None,
    Header(alias="X-Client-Id", max_length=128,
           description="Opaque id of the shopper's client (the action server passes its "
           "address); failed identifications count per client too"),
    refusing(clean_client_id),
]
IdemKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255,
           description="A repeated key returns the first result and changes nothing again"),
    refusing(clean_idempotency_key),
]
OrderId = Annotated[str, Path(), refusing(clean_order_id)]
CustomerId = Annotated[str, Path(), path_id("Customer")]
ProductId = Annotated[str, Path(), path_id("Product")]
TrackingId = Annotated[str, Path(), path_id("Shipment")]
HandoffId = Annotated[str, Path(), path_id("Handoff")]


# ---------------------------------------------------------------- the agent desk


async def refuse_shopper(
    x_customer_id: Annotated[
        str | None,
        Header(alias="X-Customer-Id",
               description="Must be absent: desk endpoints serve agents, never a shopper"),
    ] = None,
) -> None:
    """403 for a request on a shopper's behalf (the action server sends X-Customer-Id)."""
    if x_customer_id is not None:
        raise ShopError(403, "shopper_not_allowed",
                        "Desk endpoints serve agents only; a request with X-Customer-Id (a "
                        "shopper's) is refused.")


NoShopper = Depends(refuse_shopper)


class AgentCredentials:
    """The agent of a desk request and the session token it came with (for logout)."""

    def __init__(self, agent: AgentOut, token: str) -> None:
        self.agent = agent
        self.token = token


async def get_agent_credentials(
    store: StoreDep,
    _shopper: Annotated[None, NoShopper],
    x_agent_id: Annotated[
        str | None, Header(alias="X-Agent-Id", description="The agent's id")] = None,
    x_agent_token: Annotated[
        str | None,
        Header(alias="X-Agent-Token", description="Session token of POST /agents/login")] = None,
) -> AgentCredentials:
    """The logged-in agent, or 403 with X-Customer-Id / 401 without a live matching session.

    The headers are taken as they come (no validation error): anything that is not a live
    session of that agent is the same 401, checked before the body is looked at.
    """
    refused = ShopError(401, agents.UNAUTHORIZED,
                        "Missing, wrong or expired agent credentials (X-Agent-Id and "
                        "X-Agent-Token from POST /agents/login).")
    agent_id, token = (x_agent_id or "").strip(), (x_agent_token or "").strip()
    if not agent_id or not token or len(agent_id) > 64 or len(token) > 256:
        raise refused
    agent = await store.query(lambda s: agents.authenticate(s, agent_id, token, store.clock()))
    if agent is None:
        raise refused
    return AgentCredentials(agent, token)


async def get_agent(credentials: Annotated[AgentCredentials, Depends(get_agent_credentials)]
                    ) -> AgentOut:
    return credentials.agent


AgentDep = Annotated[AgentOut, Depends(get_agent)]
AgentCredentialsDep = Annotated[AgentCredentials, Depends(get_agent_credentials)]
