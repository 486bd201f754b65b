"""The agent desk's calls to the shop (``/agents/*``, ``/desk/*``), for the Rasa process.

The transport is the action server's shop client (``actions/shop_client.py``: timeouts, read
retries, typed errors, ``Idempotency-Key`` on writes); this module adds the agent's session
headers, runs the blocking calls off the event loop, and parses the answers once into typed
records. The shop decides who may do what (a ticket's holder, the state machine); the channel
only relays.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, TypeVar
from urllib.parse import quote

from actions.shop_client import ShopClient
from actions.shop_errors import AgentRefused, ShopError, ShopUnavailable

T = TypeVar("T")
__all__ = ["AgentRefused", "AgentSession", "DeskClient", "DeskTicket", "ShopError",
           "ShopUnavailable"]


@dataclass(frozen=True)
class AgentSession:
    """A logged-in agent: who, and the session token the shop gave (sent as X-Agent-Token)."""

    agent_id: str
    display_name: str
    token: str
    expires_at: str

    @classmethod
    def parse(cls, data: Dict[str, Any], token: Optional[str] = None) -> AgentSession:
        return cls(str(data["agent_id"]), str(data.get("display_name") or data["agent_id"]),
                   str(token or data["token"]), str(data.get("expires_at") or ""))

    @property
    def headers(self) -> Dict[str, str]:
        return {"X-Agent-Id": self.agent_id, "X-Agent-Token": self.token}


@dataclass(frozen=True)
class DeskTicket:
    """A handoff ticket as the desk sees it (shop/schemas.py ``DeskHandoffOut``)."""

    id: str
    status: str
    created_at: str
    waiting_seconds: Optional[int]
    summary: str
    reason: Optional[str]
    user_id: Optional[str]
    customer_name: Optional[str]
    conversation_id: Optional[str]
    claimed_by: Optional[str]
    claimed_by_name: Optional[str]
    first_agent_reply_at: Optional[str]
    outcome: Optional[str]

    @classmethod
    def parse(cls, data: Dict[str, Any]) -> DeskTicket:
        def opt(name: str) -> Optional[str]:
            value = data.get(name)
            return None if value is None else str(value)

        waiting = data.get("waiting_seconds")
        return cls(
            id=str(data["id"]), status=str(data["status"]), created_at=str(data["created_at"]),
            waiting_seconds=int(waiting) if isinstance(waiting, (int, float)) else None,
            summary=str(data.get("summary") or ""), reason=opt("reason"),
            user_id=opt("user_id"), customer_name=opt("customer_name"),
            conversation_id=opt("conversation_id"), claimed_by=opt("claimed_by"),
            claimed_by_name=opt("claimed_by_name"),
            first_agent_reply_at=opt("first_agent_reply_at"), outcome=opt("outcome"),
        )

    def held_by(self, agent: AgentSession) -> bool:
        return self.status == "claimed" and self.claimed_by == agent.agent_id

    def public(self) -> Dict[str, Any]:
        """What the desk page shows."""
        return {
            "id": self.id, "status": self.status, "created_at": self.created_at,
            "waiting_seconds": self.waiting_seconds, "summary": self.summary,
            "reason": self.reason, "user_id": self.user_id,
            "customer_name": self.customer_name, "claimed_by": self.claimed_by,
            "claimed_by_name": self.claimed_by_name, "outcome": self.outcome,
            "has_conversation": bool(self.conversation_id),
        }


def _ticket_path(handoff_id: str, suffix: str = "") -> str:
    return f"/desk/handoffs/{quote(str(handoff_id), safe='')}{suffix}"


class DeskClient:
    """Async desk calls; every one but ``login`` on behalf of a logged-in agent."""

    def __init__(self, shop: Optional[ShopClient] = None) -> None:
        self.shop = shop or ShopClient()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def login(self, agent_id: str, password: str) -> AgentSession:
        """``AgentRefused`` (401 wrong id or password, 429 locked with ``retry_after``)."""
        data = await self._call(self.shop._request, "POST", "/agents/login",
                                body={"agent_id": agent_id, "password": password})
        return AgentSession.parse(data)

    async def me(self, agent_id: str, token: str) -> AgentSession:
        """The session of a token the page kept (reload); ``AgentRefused`` once it ended."""
        headers = {"X-Agent-Id": agent_id, "X-Agent-Token": token}
        data = await self._call(self.shop._request, "GET", "/agents/me", headers=headers)
        return AgentSession.parse(data, token)

    async def logout(self, agent: AgentSession) -> None:
        await self._call(self.shop._request, "POST", "/agents/logout", headers=agent.headers)

    async def queue(self, agent: AgentSession, limit: int = 100) -> List[DeskTicket]:
        """Open and claimed tickets, newest first."""
        data = await self._call(self.shop._request, "GET", "/desk/handoffs",
                                params={"limit": limit}, headers=agent.headers)
        tickets = [DeskTicket.parse(item) for item in (data or {}).get("handoffs") or []]
        return [t for t in tickets if t.status != "closed"]

    async def ticket(self, agent: AgentSession, handoff_id: str) -> DeskTicket:
        data = await self._call(self.shop._request, "GET", _ticket_path(handoff_id),
                                headers=agent.headers)
        return DeskTicket.parse(data)

    async def _write(self, agent: AgentSession, handoff_id: str, action: str,
                     body: Optional[Dict[str, Any]] = None) -> DeskTicket:
        data = await self._call(self.shop._request, "POST", _ticket_path(handoff_id, action),
                                body=body, headers=agent.headers)
        return DeskTicket.parse(data)

    async def claim(self, agent: AgentSession, handoff_id: str) -> DeskTicket:
        """``Conflict`` ``already_claimed`` when another agent holds it."""
        return await self._write(agent, handoff_id, "/claim")

    async def reply_recorded(self, agent: AgentSession, handoff_id: str) -> DeskTicket:
        return await self._write(agent, handoff_id, "/reply-recorded")

    async def release(self, agent: AgentSession, handoff_id: str,
                      note: Optional[str]) -> DeskTicket:
        return await self._write(agent, handoff_id, "/release", {"note": note} if note else None)

    async def close(self, agent: AgentSession, handoff_id: str, outcome: str,
                    note: Optional[str]) -> DeskTicket:
        body: Dict[str, Any] = {"outcome": outcome}
        if note:
            body["note"] = note
        return await self._write(agent, handoff_id, "/close", body)
