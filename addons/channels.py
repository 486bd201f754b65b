"""The shopper-facing channels answer every message, politely, and bound its length.

``guard_messages`` wraps the ``on_new_message`` handler Rasa gives a channel's blueprint:

* a message longer than ``max_message_chars`` (2,000 by default; ``credentials.yml``) never
  reaches the NLU: the shopper is asked for a shorter one. A 100 KB message without spaces used
  to stall the whole server (docs/reliability.md);
* a message without content (empty, only whitespace, control or format characters), which
  Rasa would skip silently, gets "I didn't get any text";
* a turn in which an action failed (the action server down or crashing: Rasa logs the failure
  and carries on) or Rasa itself raised, and that sent the shopper nothing, gets a polite "sorry,
  try again or type 'human'" — never an internal detail.

The first two leave the conversation untouched (no event is stored). A turn that legitimately
says nothing (no failure) stays silent.

``RestInput`` also refuses, before Rasa sees the message (nothing stored):

* a request without its own ``sender`` (400 ``sender_required``) or with more than 4 KB of
  ``metadata`` (413 ``metadata_too_large``);
* a client over its rate limits (``addons.rate_limits``: turns per conversation and per client
  address, new conversations per address): 429 ``rate_limited`` with ``Retry-After`` and a polite
  "please wait N seconds" (``RATE_LIMITS=off`` for load tests).

and writes the client's address as this server sees it (the TCP peer; with
``TRUSTED_PROXY_HOPS`` >= 1 the address the nearest trusted proxy put in ``X-Forwarded-For``)
into the message's metadata as ``client_address``, over anything the client sent there: the
action server passes it to the shop, which counts failed identification attempts per client.

Used by ``RestInput`` below (``POST /webhooks/rest/webhook``, same URL and name as Rasa's
``rest``) and by the web page's socket.io channel ``web.rasa_channel.SocketIOInput``::

    addons.channels.RestInput:
      max_message_chars: 2000
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import unicodedata
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from addons.rate_limits import (
    RATE_LIMITED_ERROR,
    RateLimits,
    client_address,
    rate_limited_text,
    trusted_proxy_hops,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_CHARS = 2000
MAX_SENDER_CHARS = 128
SENDER_RE = re.compile(rf"[A-Za-z0-9_.:@\-]{{1,{MAX_SENDER_CHARS}}}")
MAX_METADATA_BYTES = 4096
# Request bodies the Rasa server reads at all (Sanic's own default is 100 MB): a shopper's
# message is at most 2,000 characters and its metadata 4 KB, so 1 MiB leaves room for anything
# legitimate (``RASA_MAX_BODY_BYTES`` changes it, e.g. for model uploads over the HTTP API).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# The shape of the web page's session ids (issued and signed by web/rasa_channel.py): 32
# random URL-safe characters, ".", a 43-character signature. The REST channel refuses them as
# senders, so a web conversation whose id leaked can't be written to from outside the page.
WEB_SESSION_ID_RE = re.compile(r"([A-Za-z0-9_-]{32})\.([A-Za-z0-9_-]{43})")
CLIENT_ADDRESS_KEY = "client_address"  # metadata of every REST message: set here, not by clients
TOO_LONG_TEXT = (
    "That message is too long for me (over {limit:,} characters). Please send a shorter "
    "message, or ask for a human agent."
)
NO_TEXT = "I didn't get any text. Please type your question."
SOMETHING_WENT_WRONG = (
    "Sorry, something went wrong on my side. Please try again in a minute, or type 'human' "
    "to reach an agent."
)
# Rasa's processor logs (and swallows) an exception of an action at ERROR on this logger.
PROCESSOR_LOGGER = "rasa.core.processor"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class _Turn:
    """What happened while Rasa handled one message."""

    failed: bool = False


_TURN: contextvars.ContextVar[Optional[_Turn]] = contextvars.ContextVar(
    "shop_channel_turn", default=None
)


class _FailureWatcher(logging.Handler):
    """Marks the turn being handled (in this task) as failed on an error of Rasa's processor."""

    def emit(self, record: logging.LogRecord) -> None:
        turn = _TURN.get()
        if turn is not None:
            turn.failed = True


def watch_action_failures() -> None:
    """Install the watcher on Rasa's processor logger (once per process)."""
    processor = logging.getLogger(PROCESSOR_LOGGER)
    if not any(isinstance(h, _FailureWatcher) for h in processor.handlers):
        processor.addHandler(_FailureWatcher(level=logging.ERROR))


class _CountingOutput:
    """The turn's output channel, counting the bot messages sent through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.sent = 0

    def name(self) -> str:
        return self._inner.name()

    async def send_response(self, recipient_id: str, message: Dict[str, Any]) -> None:
        self.sent += 1
        await self._inner.send_response(recipient_id, message)

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr.startswith("send_") and callable(value):

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.sent += 1
                return await value(*args, **kwargs)

            return counted
        return value


def has_content(text: Optional[str]) -> bool:
    """Whether ``text`` has a character other than whitespace, control or format characters."""
    return any(not unicodedata.category(c).startswith(("C", "Z")) for c in text or "")


async def _say(message: UserMessage, text: str) -> None:
    await message.output_channel.send_text_message(message.sender_id, text)


def guard_messages(
    on_new_message: OnNewMessage, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
) -> OnNewMessage:
    """``on_new_message`` with the length limit and a reply to every message (module doc)."""
    watch_action_failures()

    async def guarded(message: UserMessage) -> None:
        text = message.text if isinstance(message.text, str) else ""
        if len(text) > max_message_chars:
            logger.info("message of %d characters from %s not processed (limit %d)",
                        len(text), message.sender_id, max_message_chars)
            await _say(message, TOO_LONG_TEXT.format(limit=max_message_chars))
            return
        if not has_content(text):
            await _say(message, NO_TEXT)
            return
        output = _CountingOutput(message.output_channel)
        message.output_channel = output  # type: ignore[assignment]
        turn = _Turn()
        token = _TURN.set(turn)
        try:
            await on_new_message(message)
        except Exception:  # noqa: BLE001 - the shopper gets a polite reply, the log the details
            logger.exception("handling a message of %s failed", message.sender_id)
            turn.failed = True
        finally:
            _TURN.reset(token)
            message.output_channel = output._inner
        if turn.failed and not output.sent:
            await _say(message, SOMETHING_WENT_WRONG)

    return guarded


def max_chars_from(credentials: Optional[Dict[str, Any]]) -> int:
    """``max_message_chars`` of a channel's credentials (a positive int), else the default."""
    value = (credentials or {}).get("max_message_chars")
    if value is None:
        return DEFAULT_MAX_MESSAGE_CHARS
    limit = int(value)
    if limit < 1:
        raise ValueError(f"max_message_chars must be positive, not {value!r}")
    return limit


def max_body_bytes() -> int:
    """``RASA_MAX_BODY_BYTES`` (a positive int), else :data:`DEFAULT_MAX_BODY_BYTES`."""
    value = os.environ.get("RASA_MAX_BODY_BYTES", "").strip()
    if not value:
        return DEFAULT_MAX_BODY_BYTES
    limit = int(value)
    if limit < 1:
        raise ValueError(f"RASA_MAX_BODY_BYTES must be positive, not {value!r}")
    return limit


class RestInput(RasaRestInput):
    """Rasa's ``rest`` channel (same URL) with the guard; a malformed request gets a JSON list.

    A body that is not a JSON object, or a ``message`` that is not text, is treated as a
    message without text (answered "I didn't get any text"), not as a server error.
    """

    def __init__(self, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
                 rate_limits: Optional[RateLimits] = None,
                 proxy_hops: Optional[int] = None) -> None:
        self.max_message_chars = max_message_chars
        # read at start: a bad RATE_LIMIT_* or TRUSTED_PROXY_HOPS stops Rasa with the reason
        self.rate_limits = rate_limits if rate_limits is not None else RateLimits.from_env()
        self.proxy_hops = trusted_proxy_hops() if proxy_hops is None else proxy_hops

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        return cls(max_chars_from(credentials))

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        blueprint = super().blueprint(guard_messages(on_new_message, self.max_message_chars))

        @blueprint.middleware("request")
        async def refuse_unaddressed(request: Request) -> Optional[HTTPResponse]:
            return self.refusal(request) or await self.rate_refusal(request)

        @blueprint.listener("before_server_start")
        async def cap_request_bodies(app: Any, _loop: Any) -> None:
            """Sanic answers 413 to a body over the cap before anything parses it."""
            app.config.REQUEST_MAX_SIZE = min(app.config.REQUEST_MAX_SIZE, max_body_bytes())

        return blueprint

    def refusal(self, request: Request) -> Optional[HTTPResponse]:
        """A 4xx for a message nobody could answer safely; None for one that may go on.

        Without a ``sender`` Rasa serves its fixed ``default`` conversation, which every such
        client would share (an identified shopper's orders shown to another); an oversized
        ``metadata`` would be stored and re-sent to the action server on every turn.
        """
        if request.method != "POST":
            return None
        body = self._body(request)
        if not body:
            return None  # not a JSON object: answered "I didn't get any text" (no sender used)
        sender = body.get("sender")
        if not isinstance(sender, str) or not SENDER_RE.fullmatch(sender):
            return response.json({"error": "sender_required", "message": (
                "Each request needs a \"sender\": the id of its own conversation (1 to "
                f"{MAX_SENDER_CHARS} letters, digits, '-', '_', '.', ':' or '@').")}, status=400)
        if WEB_SESSION_ID_RE.fullmatch(sender):
            return response.json({"error": "web_session", "message": (
                "That conversation belongs to the web chat page and can only be continued "
                "there; use a \"sender\" of your own.")}, status=403)
        metadata = body.get("metadata")
        if metadata is not None and len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            return response.json({"error": "metadata_too_large", "message": (
                f"\"metadata\" is limited to {MAX_METADATA_BYTES:,} bytes of JSON.")}, status=413)
        return None

    async def rate_refusal(self, request: Request) -> Optional[HTTPResponse]:
        """429 for a client over its rate limits (module doc of ``addons.rate_limits``); None
        for a message that may go on, which is then counted. Called after :meth:`refusal`, so
        the sender is valid."""
        if request.method != "POST":
            return None
        sender = self._body(request).get("sender")
        if not isinstance(sender, str):
            return None  # not a JSON object: answered "I didn't get any text", no conversation
        retry_after = await self.rate_limits.acheck(self.client_address(request), sender)
        if retry_after is None:
            return None
        return response.json({"error": RATE_LIMITED_ERROR,
                              "message": rate_limited_text(retry_after)},
                             status=429, headers={"Retry-After": str(retry_after)})

    def client_address(self, request: Request) -> str:
        """The client's address as this server sees it (``addons.rate_limits.client_address``)."""
        peer = getattr(request, "remote_addr", "") or getattr(request, "ip", "") or ""
        headers = getattr(request, "headers", None) or {}
        return client_address(peer, headers.get("x-forwarded-for"), self.proxy_hops)

    @staticmethod
    def _body(request: Request) -> Dict[str, Any]:
        try:
            body = request.json
        except Exception:  # noqa: BLE001 - Sanic raises InvalidUsage on invalid JSON
            return {}
        return body if isinstance(body, dict) else {}

    async def _extract_sender(self, req: Request) -> Optional[str]:
        sender = self._body(req).get("sender")
        return None if sender is None else str(sender)

    def _extract_message(self, req: Request) -> Optional[str]:
        message = self._body(req).get("message")
        return message if isinstance(message, str) else ""

    def _extract_input_channel(self, req: Request) -> str:
        channel = self._body(req).get("input_channel")
        return channel if isinstance(channel, str) and channel else self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[str, Any]]:
        """The client's ``metadata`` (a JSON object, else nothing) with ``client_address`` set by
        this server: what the client put under that key is replaced."""
        metadata = self._body(request).get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata[CLIENT_ADDRESS_KEY] = self.client_address(request)
        return metadata
