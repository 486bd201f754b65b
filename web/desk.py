"""Live takeover of a shopper's chat by a human agent, inside the Rasa process (issue 19).

The desk page (``/agent`` on the web server, ``web/static/agent.js``) opens a socket on the
``/desk`` namespace of the same socket.io server the shopper's page uses. This module owns
that namespace and the three things a takeover needs from Rasa:

* **pause / resume**: claiming a ticket appends ``ConversationPaused`` to the conversation's
  tracker (and a "Alex (agent) joined the chat" message); handing it back or closing it
  appends ``ConversationResumed``, the agent's note and ``action_listen``. While a
  conversation is paused, the shopper's messages are stored in the tracker (``log_message``:
  parsed, never answered) under the conversation's lock, so the bot cannot answer and nothing
  is lost; a ``/restart`` typed by the shopper is stored too, it does not end the takeover
  (Rasa's own check would run it).
* **agent → shopper**: an agent's message is a ``BotUttered`` with ``metadata.agent_id`` /
  ``agent_name`` in the same tracker as the bot's (reports and transcripts stay whole), sent to
  the shopper's room at once. A page that was closed gets the agent's messages it missed when
  its session is confirmed again (``backlog``).
* **shopper → agent**: every shopper message and bot reply of a conversation is mirrored to
  the desk sockets watching it (room ``conversation:<id>``).

The shop decides who may do what: login and sessions (``/agents/*``), the ticket's holder and
state (``/desk/*``); an agent can watch, write to, pause or resume only a conversation whose
ticket the shop shows, and write only to one the shop says they hold. The page never sees a
conversation id (it would let anyone continue the shopper's chat) nor the shop's token.
Agent logins are limited per client address as well (``DESK_LOGIN_LIMIT``, 10/minute), on
top of the shop's lock per agent id.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import asdict
from typing import Any, Awaitable, Callable, Dict, List, Optional

from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOOutput
from rasa.shared.core.constants import EXTERNAL_MESSAGE_PREFIX
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Event,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from addons.channels import has_content
from addons.rate_limits import enabled_from
from web.desk_client import (
    AgentRefused,
    AgentSession,
    DeskClient,
    DeskTicket,
    ShopError,
    ShopUnavailable,
)

logger = logging.getLogger(__name__)

DESK_NAMESPACE = "/desk"
MAX_AGENT_TEXT = 2000
TRANSCRIPT_ENTRIES = 300
DEFAULT_LOGIN_LIMIT = "10/minute"
OUTCOMES = ("resolved", "unresolved", "no_reply")
AGENT_KEY = "agent"
WATCHING_KEY = "watching"
ADDRESS_KEY = "client_address"

JOINED_TEXT = "{name} (agent) joined the chat."
HANDED_BACK_TEXT = ("{name} (agent) handed the chat back to the assistant. "
                    "I'm here again if you need anything else.")
CLOSED_TEXT = ("{name} (agent) closed this request. "
               "I'm here again if you need anything else.")

ERRORS = {
    "not_logged_in": "Please log in first.",
    "login_failed": "That agent id and token don't match. Check them and try again.",
    "login_locked": "Too many failed logins. Try again in {retry_after} seconds.",
    "session_ended": "Your desk session has ended. Please log in again.",
    "shop_unavailable": "The shop backend is not answering. Try again in a moment.",
    "not_found": "That ticket does not exist (any more).",
    "no_conversation": "This ticket has no chat to join (it was opened outside the chat).",
    "already_claimed": "{holder} has already taken this ticket.",
    "not_yours": "You don't hold this ticket; take it over first.",
    "handoff_closed": "This ticket is closed.",
    "bad_request": "That request is not valid: {detail}",
    "conversation_unavailable": "The chat could not be updated. Try again in a moment.",
}


def conversation_room(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def failure(code: str, **details: Any) -> Dict[str, Any]:
    """A desk answer that did not go through: a code for the page, a sentence for the agent."""
    text = ERRORS[code].format(**{"retry_after": "a few", "holder": "Another agent",
                                  "detail": "", **details})
    return {"ok": False, "error": code, "message": text, **details}


def refusal(exc: ShopError) -> Dict[str, Any]:
    """The shop's refusal as the desk page's answer."""
    if isinstance(exc, AgentRefused):
        if exc.code == "agent_login_locked":
            return failure("login_locked", retry_after=exc.retry_after)
        if exc.code == "agent_login_failed":
            return failure("login_failed")
        return failure("session_ended")
    if isinstance(exc, ShopUnavailable):
        return failure("shop_unavailable")
    if exc.status == 404:
        return failure("not_found")
    if exc.code == "already_claimed":
        return failure("already_claimed")
    if exc.code in ("claimed_by_other", "not_claimed"):
        return failure("not_yours")
    if exc.code == "handoff_closed":
        return failure("handoff_closed")
    return failure("bad_request", detail=exc.message)


def transcript(tracker: DialogueStateTracker, limit: int = TRANSCRIPT_ENTRIES) -> List[Dict]:
    """The conversation as the desk shows it: shopper, bot and agent messages, oldest first."""
    entries: List[Dict[str, Any]] = []
    for event in tracker.events:
        if isinstance(event, UserUttered) and event.text and not (
                event.text.startswith(EXTERNAL_MESSAGE_PREFIX)):  # a reminder, not the shopper
            entries.append({"who": "shopper", "text": event.text, "ts": event.timestamp})
        elif isinstance(event, BotUttered) and event.text:
            meta = event.metadata or {}
            who = "agent" if meta.get("agent_id") else "bot"
            entries.append({"who": who, "text": event.text, "ts": event.timestamp,
                            "name": meta.get("agent_name")})
    return entries[-limit:]


def agent_messages(tracker: DialogueStateTracker) -> List[Dict[str, Any]]:
    """The agent's messages of a conversation, as sent to the shopper's page."""
    out = []
    for event in tracker.events:
        meta = (event.metadata or {}) if isinstance(event, BotUttered) else {}
        if meta.get("agent_id") and meta.get("desk_id") and event.text:
            out.append({"text": event.text, "agent": meta.get("agent_name"),
                        "desk_id": meta["desk_id"], "desk_event": meta.get("desk_event")})
    return out


def agent_utterance(text: str, agent: AgentSession, kind: str = "message") -> BotUttered:
    metadata = {"agent_id": agent.agent_id, "agent_name": agent.display_name,
                "desk_event": kind, "desk_id": uuid.uuid4().hex}
    return BotUttered(text, metadata=metadata)


def clean_text(value: Any, limit: int = MAX_AGENT_TEXT) -> Optional[str]:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text[:limit] if has_content(text) else None


class MirroredOutput(SocketIOOutput):
    """Rasa's socket.io output that also shows the bot's replies to agents watching."""

    def __init__(self, sio: Any, bot_message_evt: str, desk: Desk) -> None:
        super().__init__(sio, bot_message_evt)
        self.desk = desk

    async def _send_message(self, socket_id: str, response: Any) -> None:
        await super()._send_message(socket_id, response)
        text = response.get("text") if isinstance(response, dict) else None
        if text:
            await self.desk.mirror(socket_id, {"who": "bot", "text": text, "ts": time.time()})


class Desk:
    """The ``/desk`` namespace and the takeover's tracker writes (module doc)."""

    def __init__(self, sio: Any, shopper_namespace: str, bot_message_evt: str,
                 allowed_origins: set[str], address_of: Callable[[Dict[str, Any]], str],
                 client: Optional[DeskClient] = None) -> None:
        self.sio = sio
        self.shopper_namespace = shopper_namespace
        self.bot_message_evt = bot_message_evt
        self.allowed_origins = allowed_origins
        self.address_of = address_of
        self.client = client or DeskClient()
        self.app: Any = None  # Rasa's Sanic app, set before the server starts
        self.login_limits = parse_many(os.environ.get("DESK_LOGIN_LIMIT") or DEFAULT_LOGIN_LIMIT)
        self.limiter = FixedWindowRateLimiter(MemoryStorage()) if enabled_from() else None
        self._register()

    # ------------------------------------------------------------------ Rasa's side
    @property
    def agent(self) -> Any:
        """Rasa's agent (model, processor, lock store) of the running server."""
        if self.app is None:
            from sanic import Sanic

            self.app = Sanic.get_app()
        return self.app.ctx.agent

    async def append(self, conversation_id: str, events: List[Event]) -> DialogueStateTracker:
        """Add events to a conversation under its lock (what Rasa's HTTP API does)."""
        agent = self.agent
        async with agent.lock_store.lock(conversation_id):
            tracker = await agent.processor.get_tracker(conversation_id)
            for event in events:
                tracker.update(event)
            await agent.processor.save_tracker(tracker)
        return tracker

    async def tracker(self, conversation_id: str) -> DialogueStateTracker:
        return await self.agent.processor.get_tracker(conversation_id)

    def rasa_agent(self) -> Any:
        """Rasa's agent of the running server; None outside one (unit tests)."""
        try:
            agent = self.agent
        except Exception:  # noqa: BLE001 - no Sanic app registered: not inside a Rasa server
            return None
        return agent if agent is not None and agent.is_ready() else None

    def answer_unless_taken_over(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Callable[[UserMessage], Awaitable[None]]:
        """``on_new_message`` (Rasa's ``Agent.handle_message``), except that a message to a
        conversation an agent holds (paused) is only stored, under the conversation's lock.

        A takeover landing between this check and Rasa's turn is still safe: Rasa re-reads
        the tracker under the lock and predicts nothing for a paused conversation.
        """

        async def handle(message: UserMessage) -> None:
            await self.mirror(message.sender_id,
                              {"who": "shopper", "text": message.text, "ts": time.time()})
            agent = self.rasa_agent()
            if agent is not None:
                async with agent.lock_store.lock(message.sender_id):
                    tracker = await agent.processor.get_tracker(message.sender_id)
                    if tracker.is_paused():
                        await agent.processor.log_message(message)  # stored, never answered
                        return
            await on_new_message(message)

        return handle

    def output(self) -> MirroredOutput:
        return MirroredOutput(self.sio, self.bot_message_evt, self)

    async def mirror(self, conversation_id: str, entry: Dict[str, Any]) -> None:
        """Show a transcript entry to the agents watching this conversation."""
        await self.sio.emit("transcript_entry", entry, room=conversation_room(conversation_id),
                            namespace=DESK_NAMESPACE)

    async def to_shopper(self, conversation_id: str, event: BotUttered) -> None:
        meta = event.metadata or {}
        await self.sio.emit(self.bot_message_evt,
                            {"text": event.text, "agent": meta.get("agent_name"),
                             "desk_id": meta.get("desk_id"),
                             "desk_event": meta.get("desk_event")},
                            room=conversation_id, namespace=self.shopper_namespace)
        await self.mirror(conversation_id, {"who": "agent", "text": event.text,
                                            "name": meta.get("agent_name"),
                                            "ts": event.timestamp})

    async def backlog(self, sid: str, conversation_id: str) -> None:
        """Send a (re)connected shopper page the agent's messages of its conversation; the page
        shows those it has not shown yet (by ``desk_id``)."""
        try:
            messages = agent_messages(await self.tracker(conversation_id))
        except Exception:  # noqa: BLE001 - the tracker store is down: the chat still works
            logger.exception("could not read the agent messages of a conversation")
            return
        if messages:
            await self.sio.emit("agent_backlog", messages, room=sid,
                                namespace=self.shopper_namespace)

    # ------------------------------------------------------------------ the desk's socket
    async def _session(self, sid: str) -> Dict[str, Any]:
        try:
            return dict(await self.sio.get_session(sid, namespace=DESK_NAMESPACE))
        except KeyError:
            return {}

    async def _save(self, sid: str, **values: Any) -> None:
        try:
            async with self.sio.session(sid, namespace=DESK_NAMESPACE) as session:
                session.update(values)
        except KeyError:
            pass  # disconnected meanwhile

    async def _agent(self, sid: str) -> Optional[AgentSession]:
        data = (await self._session(sid)).get(AGENT_KEY)
        return AgentSession(**data) if data else None

    async def _login_allowed(self, sid: str) -> Optional[int]:
        """None if this client may try a login now, else the seconds to wait."""
        if self.limiter is None:
            return None
        address = (await self._session(sid)).get(ADDRESS_KEY) or "unknown"
        for item in self.login_limits:
            if not await self.limiter.hit(item, "desk-login", address):
                reset, _ = await self.limiter.get_window_stats(item, "desk-login", address)
                return max(1, int(reset - time.time()))
        return None

    async def _watch(self, sid: str, ticket: DeskTicket) -> Dict[str, Any]:
        """Join the ticket's conversation room (leaving the one watched before); the ticket
        and its transcript for the page."""
        previous = (await self._session(sid)).get(WATCHING_KEY)
        if previous and previous.get("conversation_id") != ticket.conversation_id:
            await self.sio.leave_room(sid, conversation_room(previous["conversation_id"]),
                                      namespace=DESK_NAMESPACE)
        entries: List[Dict[str, Any]] = []
        if ticket.conversation_id:
            await self.sio.enter_room(sid, conversation_room(ticket.conversation_id),
                                      namespace=DESK_NAMESPACE)
            entries = transcript(await self.tracker(ticket.conversation_id))
        await self._save(sid, **{WATCHING_KEY: {"handoff_id": ticket.id,
                                                "conversation_id": ticket.conversation_id}})
        return {"ok": True, "ticket": ticket.public(), "transcript": entries}

    def _register(self) -> None:
        sio = self.sio
        on = sio.on

        @on("connect", namespace=DESK_NAMESPACE)
        async def connect(sid: str, environ: Dict[str, Any], auth: Any = None) -> bool:
            origin = environ.get("HTTP_ORIGIN")
            if origin and origin.rstrip("/") not in self.allowed_origins:
                logger.warning("desk socket refused: origin %s is not WEB_ORIGIN", origin)
                return False
            await sio.save_session(sid, {ADDRESS_KEY: self.address_of(environ)},
                                   namespace=DESK_NAMESPACE)
            return True

        def handler(name: str, needs_agent: bool = True) -> Callable:
            """Register a desk event; its answer is the socket.io acknowledgement. Errors
            become a polite answer, never a dropped request."""

            def wrap(fn: Callable[..., Awaitable[Dict[str, Any]]]) -> Callable:
                async def run(sid: str, data: Any = None) -> Dict[str, Any]:
                    data = data if isinstance(data, dict) else {}
                    try:
                        if not needs_agent:
                            return await fn(sid, data)
                        agent = await self._agent(sid)
                        if agent is None:
                            return failure("not_logged_in")
                        return await fn(sid, data, agent)
                    except ShopError as exc:
                        if isinstance(exc, AgentRefused) and needs_agent:
                            await self._save(sid, **{AGENT_KEY: None})
                        return refusal(exc)
                    except Exception:  # noqa: BLE001 - the agent gets an answer, the log details
                        logger.exception("desk event %s failed", name)
                        return failure("conversation_unavailable")

                sio.on(name, run, namespace=DESK_NAMESPACE)
                return fn

            return wrap

        async def held(agent: AgentSession, data: Dict[str, Any]) -> DeskTicket | Dict:
            """The ticket the request names, if the shop says this agent holds it."""
            handoff_id = clean_text(data.get("handoff_id"), 64)
            if not handoff_id:
                return failure("bad_request", detail="handoff_id is missing.")
            ticket = await self.client.ticket(agent, handoff_id)
            if not ticket.held_by(agent):
                return failure("handoff_closed" if ticket.status == "closed" else "not_yours")
            if not ticket.conversation_id:
                return failure("no_conversation")
            return ticket

        @handler("agent_login", needs_agent=False)
        async def login(sid: str, data: Dict[str, Any]) -> Dict[str, Any]:
            agent_id = clean_text(data.get("agent_id"), 64)
            password = data.get("token")
            if not agent_id or not isinstance(password, str) or not password:
                return failure("bad_request", detail="agent id and token are required.")
            wait = await self._login_allowed(sid)
            if wait is not None:
                return failure("login_locked", retry_after=wait)
            agent = await self.client.login(agent_id, password)
            await self._save(sid, **{AGENT_KEY: asdict(agent)})
            logger.info("desk: agent %s logged in", agent.agent_id)
            return {"ok": True, "agent": self._public(agent), "session": agent.token}

        @handler("agent_resume", needs_agent=False)
        async def resume_session(sid: str, data: Dict[str, Any]) -> Dict[str, Any]:
            agent_id = clean_text(data.get("agent_id"), 64)
            token = data.get("session")
            if not agent_id or not isinstance(token, str) or not token:
                return failure("session_ended")
            agent = await self.client.me(agent_id, token)
            await self._save(sid, **{AGENT_KEY: asdict(agent)})
            return {"ok": True, "agent": self._public(agent), "session": agent.token}

        @handler("agent_logout")
        async def logout(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            await self._save(sid, **{AGENT_KEY: None})
            await self.client.logout(agent)
            return {"ok": True}

        @handler("queue")
        async def queue(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            tickets = await self.client.queue(agent)
            return {"ok": True, "handoffs": [t.public() for t in tickets]}

        @handler("open_ticket")
        async def open_ticket(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            handoff_id = clean_text(data.get("handoff_id"), 64)
            if not handoff_id:
                return failure("bad_request", detail="handoff_id is missing.")
            return await self._watch(sid, await self.client.ticket(agent, handoff_id))

        @handler("take_over")
        async def take_over(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            handoff_id = clean_text(data.get("handoff_id"), 64)
            if not handoff_id:
                return failure("bad_request", detail="handoff_id is missing.")
            before = await self.client.ticket(agent, handoff_id)
            if not before.conversation_id:
                return failure("no_conversation")
            if before.status == "claimed" and before.claimed_by != agent.agent_id:
                return failure("already_claimed", holder=before.claimed_by_name or "Another agent")
            try:
                ticket = await self.client.claim(agent, handoff_id)
            except ShopError as exc:
                if exc.code == "already_claimed":
                    holder = (await self.client.ticket(agent, handoff_id)).claimed_by_name
                    return failure("already_claimed", holder=holder or "Another agent")
                raise
            conversation_id = str(ticket.conversation_id)
            if not (await self.tracker(conversation_id)).is_paused():
                joined = agent_utterance(JOINED_TEXT.format(name=agent.display_name), agent,
                                         "joined")
                await self.append(conversation_id, [ConversationPaused(), joined])
                await self.to_shopper(conversation_id, joined)
            logger.info("desk: agent %s took over ticket %s", agent.agent_id, ticket.id)
            return await self._watch(sid, ticket)

        @handler("agent_message")
        async def agent_message(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            text = clean_text(data.get("text"))
            if text is None:
                return failure("bad_request", detail="the message is empty.")
            ticket = await held(agent, data)
            if isinstance(ticket, dict):
                return ticket
            said = agent_utterance(text, agent)
            await self.append(str(ticket.conversation_id), [said])
            await self.to_shopper(str(ticket.conversation_id), said)
            if ticket.first_agent_reply_at is None:
                await self.client.reply_recorded(agent, ticket.id)
            return {"ok": True}

        async def give_back(agent: AgentSession, ticket: DeskTicket, text: str) -> None:
            conversation_id = str(ticket.conversation_id)
            note = agent_utterance(text, agent, "handed_back")
            events: List[Event] = [note, ActionExecuted("action_listen")]
            if (await self.tracker(conversation_id)).is_paused():
                events.insert(0, ConversationResumed())
            await self.append(conversation_id, events)
            await self.to_shopper(conversation_id, note)

        @handler("hand_back")
        async def hand_back(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            ticket = await held(agent, data)
            if isinstance(ticket, dict):
                return ticket
            note = clean_text(data.get("note"))
            released = await self.client.release(agent, ticket.id, note)
            await give_back(agent, ticket, HANDED_BACK_TEXT.format(name=agent.display_name))
            logger.info("desk: agent %s handed ticket %s back", agent.agent_id, ticket.id)
            return {"ok": True, "ticket": released.public()}

        @handler("close_ticket")
        async def close_ticket(sid: str, data: Dict[str, Any], agent: AgentSession) -> Dict:
            outcome = data.get("outcome")
            if outcome not in OUTCOMES:
                return failure("bad_request", detail=f"outcome must be one of {OUTCOMES}.")
            handoff_id = clean_text(data.get("handoff_id"), 64)
            if not handoff_id:
                return failure("bad_request", detail="handoff_id is missing.")
            before = await self.client.ticket(agent, handoff_id)
            closed = await self.client.close(agent, handoff_id, outcome,
                                             clean_text(data.get("note")))
            if before.held_by(agent) and before.conversation_id:
                await give_back(agent, before, CLOSED_TEXT.format(name=agent.display_name))
            logger.info("desk: agent %s closed ticket %s (%s)", agent.agent_id, handoff_id,
                        outcome)
            return {"ok": True, "ticket": closed.public()}

    @staticmethod
    def _public(agent: AgentSession) -> Dict[str, Any]:
        return {"agent_id": agent.agent_id, "display_name": agent.display_name,
                "expires_at": agent.expires_at}
