"""Agent sessions for the desk: log in (rate-limited), who am I, log out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from shop import agents
from shop.deps import AgentCredentialsDep, AgentDep, NoShopper, StoreDep
from shop.idempotency import idempotent_write
from shop.schemas import AgentOut, ErrorOut, LoginIn, LoginOut, NoBody

router = APIRouter(prefix="/agents", tags=["agent desk"])

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Bearer token, or agent login / session, refused"},
    403: {"model": ErrorOut, "description": "A shopper's request (X-Customer-Id)"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}
LOGIN_ERRORS = {**_ERR, 429: {"model": ErrorOut, "description": "Too many failed logins"}}


@router.post("/login", responses=LOGIN_ERRORS)
async def login(body: LoginIn, store: StoreDep,
                _shopper: Annotated[None, NoShopper]) -> LoginOut:
    """A desk session for an agent of SHOP_AGENTS / AGENT_TOKEN.

    401 `agent_login_failed` for an unknown agent or a wrong password (the same answer);
    429 `agent_login_locked` with Retry-After after SHOP_AGENT_LOGIN_MAX_FAILURES failures in
    SHOP_AGENT_LOGIN_WINDOW_SECONDS. No Idempotency-Key: a session token is never stored.
    """
    return await run_in_threadpool(agents.login, store, body.agent_id, body.password)


@router.get("/me", responses=_ERR)
async def me(agent: AgentDep) -> AgentOut:
    """The agent of this session, and when it expires."""
    return agent


@router.post("/logout", responses=_ERR)
async def logout(credentials: AgentCredentialsDep, store: StoreDep) -> AgentOut:
    """End this session (its token is refused from now on)."""
    return await idempotent_write(
        store, "agent-logout", f"agent:{credentials.agent.agent_id}", NoBody(), None,
        lambda s: agents.logout(s, credentials.agent, credentials.token, store.clock()))
