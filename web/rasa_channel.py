"""Rasa's socket.io channel for the web page: server-issued sessions, bound to their socket.

Rasa 3.6's ``SocketIOInput`` has three problems this subclass fixes:

* it calls ``sio.enter_room(...)`` without ``await``. Since python-socketio 5.10 that method of
  ``AsyncServer`` is a coroutine, so the socket never joins the room named after the session id
  and, with ``session_persistence: true``, every bot reply is emitted to an empty room (Rasa logs
  "coroutine 'AsyncServer.enter_room' was never awaited"; RasaHQ/rasa issue 13027);
* ``session_request`` confirms whatever session id the client names, so a new socket could join
  (and read the replies of) any conversation whose id it knows, an identified one included;
* ``user_uttered`` takes the conversation from the message's own ``session_id`` field, so any
  socket could write into any conversation (security issue 22).

Here the server issues the session ids and signs them (``WEB_SESSION_SECRET``, HMAC-SHA256):

* ``session_request`` keeps an id the page presents back (reload, reconnect) only if its
  signature verifies; otherwise (none, unsigned, forged, another secret) it issues a fresh one.
  The confirmed id is bound to the socket (python-socketio's per-socket session, gone on
  disconnect) and the socket joins its room, leaving the one of an earlier session;
* ``user_uttered`` always talks to the session bound to the socket. A message naming another
  ``session_id``, or sent before a session was confirmed, is not processed (logged; nothing is
  sent back). Metadata (``metadata_key``, ``customData`` in credentials.yml) reaches Rasa as
  sent, except ``client_address``: always the server's view of the client (the TCP peer, or
  with ``TRUSTED_PROXY_HOPS`` >= 1 the ``X-Forwarded-For`` entry the outermost trusted proxy
  wrote; the REST channel's rule), which the shop uses to count failed identification
  attempts per client;
* a socket from a page of another origin than ``WEB_ORIGIN`` is refused at ``connect``;
* the REST channel's per-client rate limits (``addons/rate_limits.py``: turns per session and
  per address, new sessions per address) hold here too: a message over them is not processed
  and the page gets "You're sending messages faster than I can answer. Please wait N seconds".

Every message is answered the way the REST channel does (``addons/channels.py``): a message
over ``max_message_chars`` (2,000 by default) is not processed and the shopper is asked for a
shorter one, a message without text gets "I didn't get any text", and a turn that failed
(the action server down) without a reply gets a polite "sorry, try again or type 'human'".
Everything else (paths, event names, JWT, the output channel and its name ``socketio``) is
Rasa's own.

Rasa refuses to start (``MissingSessionSecret``) without ``WEB_SESSION_SECRET``, with the
public example value of .env.example (``change-me-…``), or with one shorter than 16 characters.

Use it in ``credentials.yml`` instead of ``socketio:``::

    web.rasa_channel.SocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      metadata_key: customData
      max_message_chars: 2000
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import logging
import os
import secrets
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint

from addons.channels import (
    DEFAULT_MAX_MESSAGE_CHARS,
    MAX_METADATA_BYTES,
    WEB_SESSION_ID_RE,
    guard_messages,
    max_chars_from,
)
from addons.rate_limits import RateLimits, rate_limited_text, trusted_proxy_hops
from addons.rate_limits import client_address as shared_client_address
from web.desk import Desk

logger = logging.getLogger(__name__)
DEFAULT_WEB_ORIGIN = "http://localhost:8080"  # as in the Makefile and .env.example
LOOPBACK_NAMES = ("localhost", "127.0.0.1")

SECRET_ENV = "WEB_SESSION_SECRET"
PLACEHOLDER_PREFIX = "change-me"  # .env.example: change-me-web-session-secret
MIN_SECRET_CHARS = 16
CLIENT_ADDRESS_KEY = "client_address"
# A session id: 32 random URL-safe characters (24 bytes), ".", the 43-character URL-safe
# base64 of HMAC-SHA256(secret, "web-session:v1:" + random). 76 characters of [A-Za-z0-9_.-]:
# a valid Rasa sender id (addons/channels.py SENDER_RE, at most 128).
SESSION_RANDOM_BYTES = 24
SESSION_ID_RE = WEB_SESSION_ID_RE  # the REST channel refuses this shape as a sender
SIGNATURE_CONTEXT = b"web-session:v1:"
# What the per-socket session (python-socketio's, dropped on disconnect) holds.
BOUND_SESSION = "session_id"
BOUND_ADDRESS = "client_address"


class MissingSessionSecret(SystemExit):
    """Rasa must not serve the web page without the secret that signs its session ids."""


def session_secret(env: Optional[Mapping[str, str]] = None) -> bytes:
    """``WEB_SESSION_SECRET``; missing, left at .env.example's ``change-me-…`` value, or too
    short, it stops the server."""
    env = os.environ if env is None else env
    secret = (env.get(SECRET_ENV) or "").strip()
    if secret and not secret.startswith(PLACEHOLDER_PREFIX) and len(secret) >= MIN_SECRET_CHARS:
        return secret.encode()
    raise MissingSessionSecret(
        f"{SECRET_ENV} is not set, is still .env.example's public change-me value, or is "
        f"shorter than {MIN_SECRET_CHARS} characters: the web chat's socket.io channel "
        "(web.rasa_channel.SocketIOInput) refuses to start without the secret that signs the "
        "session ids it issues. Set it in .env or the shell (`make` generates a random one "
        "per run when it is empty; a fixed one keeps shoppers' conversations across restarts)."
    )


def _signature(secret: bytes, random_part: str) -> str:
    digest = hmac.new(secret, SIGNATURE_CONTEXT + random_part.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_session_id(secret: bytes) -> str:
    """A fresh, unguessable session id signed with ``secret``."""
    random_part = secrets.token_urlsafe(SESSION_RANDOM_BYTES)
    return f"{random_part}.{_signature(secret, random_part)}"


def verify_session_id(secret: bytes, session_id: Any) -> bool:
    """Whether ``session_id`` is one this server issued (signature compared in constant time)."""
    if not isinstance(session_id, str):
        return False
    match = SESSION_ID_RE.fullmatch(session_id)
    if match is None:
        return False
    random_part, signature = match.groups()
    return hmac.compare_digest(signature.encode(), _signature(secret, random_part).encode())


def peer_address(environ: Mapping[str, Any]) -> str:
    """The address of the TCP peer of the socket's first request.

    python-engineio's Sanic driver puts a fixed ``REMOTE_ADDR`` of ``127.0.0.1`` in the environ,
    so the peer comes from the Sanic request it also hands over (``remote_addr`` is empty unless
    Sanic's own proxy settings are configured); ``REMOTE_ADDR`` otherwise.
    """
    request = environ.get("sanic.request")
    if request is not None:  # as the REST channel reads it: Sanic's remote_addr, else the peer
        for name in ("remote_addr", "ip"):
            value = getattr(request, name, None)
            if isinstance(value, str) and value:
                return value
    return str(environ.get("REMOTE_ADDR") or "unknown")


def client_address(environ: Mapping[str, Any], hops: int = 0) -> str:
    """The client of a socket as this server sees it (never what the client claims): the rule
    of the REST channel (``addons.rate_limits.client_address``). With ``hops`` >= 1 trusted
    proxies, each appending the address it saw to ``X-Forwarded-For``, the ``hops``-th entry
    from the right; entries further left were written by the client itself and prove nothing.
    """
    return shared_client_address(peer_address(environ), environ.get("HTTP_X_FORWARDED_FOR"),
                                 hops)


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


def fingerprint(session_id: Any) -> str:
    """Enough of an id to follow it in the log without writing a usable one there."""
    return f"{session_id[:8]}…" if isinstance(session_id, str) else type(session_id).__name__


def message_metadata(data: Mapping[str, Any], key: Optional[str]) -> Optional[Dict[str, Any]]:
    """The client's metadata of a message (a dict, JSON text accepted as Rasa does); None when
    it is malformed or larger than the REST channel allows."""
    metadata = data.get(key or "metadata")
    if metadata is None:
        return {}
    if isinstance(metadata, str):
        if len(metadata) > MAX_METADATA_BYTES:
            return None
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if not isinstance(metadata, dict):
        return None
    try:
        if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            return None
    except (TypeError, ValueError):
        return None
    return dict(metadata)


class SocketIOInput(RasaSocketIOInput):
    """``socketio`` channel with signed, socket-bound sessions; messages guarded."""

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
        """Rasa's blueprint, with ``connect``, ``session_request`` and the user message
        handler replaced (module doc)."""
        secret = session_secret()  # before anything is served: no secret, no start
        hops = trusted_proxy_hops()
        # the REST channel's limits, per session and per client address (addons/rate_limits.py)
        limiter = RateLimits.from_env()
        socketio_webhook = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None  # set by the parent's blueprint()
        namespace = self.namespace or "/"
        allowed = page_origins()
        rasa_connect = sio.handlers[namespace]["connect"]
        # the agent desk's namespace; a conversation an agent holds is stored, not answered
        desk = Desk(sio, namespace, self.bot_message_evt, allowed,
                    lambda environ: client_address(environ, hops))
        guarded = guard_messages(desk.answer_unless_taken_over(on_new_message),
                                 self.max_message_chars)

        @socketio_webhook.listener("before_server_start")
        async def keep_app(app: Any, _loop: Any) -> None:
            desk.app = app

        async def bound(sid: str) -> Dict[str, Any]:
            try:
                return dict(await sio.get_session(sid, namespace=namespace))
            except KeyError:  # disconnected meanwhile
                return {}

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: str, environ: Dict[str, Any], auth: Optional[Dict] = None) -> bool:
            """Only the shop's own page may open a socket: a page elsewhere that a shopper
            visits could otherwise talk to the assistant in the shopper's name (cross-site
            WebSocket hijacking). Clients that send no Origin (not browsers) are not affected."""
            origin = environ.get("HTTP_ORIGIN")
            if origin and origin.rstrip("/") not in allowed:
                logger.warning("socket.io connection refused: origin %s is not WEB_ORIGIN", origin)
                return False
            accepted = await rasa_connect(sid, environ, auth)
            if accepted is not False:
                address = client_address(environ, hops)
                await sio.save_session(sid, {BOUND_ADDRESS: address}, namespace=namespace)
            return accepted

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any) -> None:
            """Keep the presented id if this server signed it, else issue a new one; bind it."""
            presented = data.get("session_id") if isinstance(data, dict) else None
            if verify_session_id(secret, presented):
                session_id = presented
            else:
                if presented:
                    logger.info("socket %s presented session id %s without a valid signature: "
                                "a new session is issued", sid, fingerprint(presented))
                session_id = issue_session_id(secret)
            try:
                async with sio.session(sid, namespace=namespace) as session:
                    previous = session.get(BOUND_SESSION)
                    session[BOUND_SESSION] = session_id
            except KeyError:
                return  # the socket is gone
            if self.session_persistence:
                if previous and previous != session_id:
                    left = sio.leave_room(sid, previous, namespace=namespace)
                    if inspect.isawaitable(left):
                        await left
                entered = sio.enter_room(sid, session_id, namespace=namespace)
                if inspect.isawaitable(entered):  # python-socketio >= 5.10
                    await entered
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            logger.debug("socket %s bound to session %s", sid, fingerprint(session_id))
            if session_id == presented:  # a page back: the agent's messages it may have missed
                await desk.backlog(sid, session_id)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any) -> None:
            """Rasa's handler, for the conversation bound to this socket only."""
            session = await bound(sid)
            session_id = session.get(BOUND_SESSION)
            if not session_id:
                logger.warning("socket %s sent a message before any session was confirmed: "
                               "not processed", sid)
                return
            if not isinstance(data, dict):
                logger.warning("socket %s sent a message that is not an object: not processed",
                               sid)
                return
            named = data.get("session_id")
            if named is not None and named != session_id:
                logger.warning("socket %s (session %s) sent a message naming session %s: "
                               "not processed", sid, fingerprint(session_id), fingerprint(named))
                return
            metadata = message_metadata(data, self.metadata_key)
            if metadata is None:
                logger.warning("socket %s sent malformed or oversized metadata: not processed",
                               sid)
                return
            address = session.get(BOUND_ADDRESS) or "unknown"
            metadata[CLIENT_ADDRESS_KEY] = address
            retry_after = await limiter.acheck(address, session_id)
            if retry_after is not None:  # not processed, not stored: "please slow down"
                await sio.emit(self.bot_message_evt, {"text": rate_limited_text(retry_after)},
                               room=sid, namespace=namespace)
                return
            text = data.get("message", "")
            message = UserMessage(
                text if isinstance(text, str) else "",
                desk.output(),  # Rasa's socket.io output, mirrored to agents watching
                session_id if self.session_persistence else sid,
                input_channel=self.name(),
                metadata=metadata,
            )
            await guarded(message)

        return socketio_webhook
