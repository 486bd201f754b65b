"""Rasa's socket.io channel with session persistence that actually delivers replies.

Rasa 3.6's ``SocketIOInput`` calls ``sio.enter_room(...)`` without ``await``. Since
python-socketio 5.10 that method of ``AsyncServer`` is a coroutine, so the socket never
joins the room named after the session id and, with ``session_persistence: true``, every
bot reply is emitted to an empty room: the page never hears back (Rasa logs
"coroutine 'AsyncServer.enter_room' was never awaited"; RasaHQ/rasa issue 13027).
This subclass re-registers the ``session_request`` handler with the ``await``; everything
else (events, paths, JWT, metadata, the output channel and its name) is Rasa's own.

A socket from a page of another origin than ``WEB_ORIGIN`` is refused at ``connect``.

It also answers every message the way the REST channel does (``addons/channels.py``): a message
over ``max_message_chars`` (2,000 by default) is not processed and the shopper is asked for a
shorter one, a message without text gets "I didn't get any text", and a turn that failed
(the action server down) without a reply gets a polite "sorry, try again or type 'human'".

Use it in ``credentials.yml`` instead of ``socketio:``::

    web.rasa_channel.SocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      max_message_chars: 2000
"""

from __future__ import annotations

import inspect
import logging
import os
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint

from addons.channels import DEFAULT_MAX_MESSAGE_CHARS, guard_messages, max_chars_from

logger = logging.getLogger(__name__)
DEFAULT_WEB_ORIGIN = "http://localhost:8080"  # as in the Makefile and .env.example
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


def page_origins() -> set[str]:
    """The origins of the chat page (``WEB_ORIGIN``, comma-separated); on loopback both names
    of this machine, since a shopper may type either."""
    origins = set()
    for origin in (os.environ.get("WEB_ORIGIN") or DEFAULT_WEB_ORIGIN).split(","):
        origin = origin.strip().rstrip("/")
        if not origin:
            continue
        origins.add(origin)
        for name in LOOPBACK_NAMES:
            if f"//{name}:" in origin or origin.endswith(f"//{name}"):
                origins.update(origin.replace(name, other) for other in LOOPBACK_NAMES)
    return origins


class SocketIOInput(RasaSocketIOInput):
    """``socketio`` channel whose ``session_request`` awaits ``enter_room``; messages guarded."""

    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        """Rasa's settings, plus ``max_message_chars``."""
        credentials = dict(credentials or {})
        limit = max_chars_from(credentials)
        credentials.pop("max_message_chars", None)
        channel = super().from_credentials(credentials)
        channel.max_message_chars = limit  # type: ignore[attr-defined]
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's blueprint, with the ``session_request`` handler replaced."""
        socketio_webhook = super().blueprint(
            guard_messages(on_new_message, self.max_message_chars)
        )
        sio = self.sio
        assert sio is not None  # set by the parent's blueprint()
        allowed = page_origins()
        rasa_connect = sio.handlers[self.namespace or "/"]["connect"]

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: str, environ: Dict[str, Any], auth: Optional[Dict] = None) -> bool:
            """Only the shop's own page may open a socket: a page elsewhere that a shopper
            visits could otherwise talk to the assistant in the shopper's name (cross-site
            WebSocket hijacking). Clients that send no Origin (not browsers) are not affected."""
            origin = environ.get("HTTP_ORIGIN")
            if origin and origin.rstrip("/") not in allowed:
                logger.warning("socket.io connection refused: origin %s is not WEB_ORIGIN", origin)
                return False
            return await rasa_connect(sid, environ, auth)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Optional[dict[str, Any]]) -> None:
            if not isinstance(data, dict):
                data = {}
            session_id = data.get("session_id")
            if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
                session_id = uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id, namespace=self.namespace)
                if inspect.isawaitable(entered):  # python-socketio >= 5.10
                    await entered
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
            logger.debug("Socket %s joined session %s.", sid, session_id)

        return socketio_webhook
