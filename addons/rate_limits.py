"""Per-client abuse limits of the shopper channels: turns and new conversations (issue 22).

One script on one address must not be able to run thousands of turns a minute through the NLU,
the action server and the shop, nor open a fresh conversation (a fresh sender id) for every
identification attempt, while the shoppers of a real store, many of whom share one public
address (an office, a hotel or a carrier-grade NAT), never notice the limits.

Limits (environment, ``limits``' string syntax; several may be joined with ``;``, e.g.
``60/minute;600/hour``; ``off`` turns that one limit off):

* ``RATE_LIMIT_TURNS_PER_CONVERSATION``, default ``20/minute``: one conversation (sender id),
  from any address;
* ``RATE_LIMIT_TURNS_PER_CLIENT``, default ``60/minute``: all conversations of one client address;
* ``RATE_LIMIT_NEW_CONVERSATIONS_PER_CLIENT``, default ``20/10minute``: conversations that one
  address starts.

Why these numbers:

* 20 turns a minute in one conversation is a message every 3 s for a whole minute. A person
  reads the answer and types the next message; even one who clicks buttons quickly sends 3-4
  messages in 10 s and then reads. A script sends as fast as Rasa answers, several a second.
  A fast shopper's burst fits, a script is stopped within seconds.
* 60 turns a minute per address is three shoppers at that fastest pace at once, or 12-15 at an
  ordinary 4-5 messages a minute (less while they read), behind one NAT. A script
  that spreads its turns over many sender ids meets this one.
* 20 new conversations per address in 10 minutes: one shopper opens one or two (a reload of
  the page keeps its session; a new tab or a cleared browser opens another). Twenty different
  shoppers starting a chat from one office address within 10 minutes is more than a store of
  this size should expect, while a script that takes a fresh sender for each identification attempt
  (to leave a per-conversation lock behind) gets 2 a minute, 2,880 a day, and the shop's own
  per-client identification lock (actions -> shop, ``metadata["client_address"]``) sees them.

Behind a reverse proxy set ``TRUSTED_PROXY_HOPS`` (the number of proxies that append to
``X-Forwarded-For``): otherwise every shopper has the proxy's address and they share one budget.
An IPv6 client is counted by its /64 network (one subscriber gets a whole /64 and can pick any
address in it); IPv4 by its address.

What counts: the limits are checked before Rasa sees the message, so a refused message is not
stored and costs no NLU, action or shop call (``RestInput`` answers 429 with ``Retry-After``).
Checks are test-then-hit: a refused message consumes none of the budgets (the window of a
hammering script still ends on time, so a NAT neighbour is not locked out longer than it).
A refused first message does not make its sender "seen".

Windows are fixed (``limits``' ``FixedWindowRateLimiter``): a window starts at the first hit of a
key and its counter is dropped when it ends. That is O(1) per check and memory per key, and on
Redis one INCR + EXPIRE; its only inexactness is that a client may spend two windows' budgets
around a window's end (40 turns in a few seconds for 20/minute, then nothing), which is still far
from a script's rate. The moving window of ``limits`` 3.x keeps a timestamp per hit and, in
memory, never drops the list of a key once made: one per sender id ever seen.

A "new conversation" is a sender this limiter has not seen in the last hour (Rasa's
``session_expiration_time`` is 60 minutes: a shopper back after that starts a new session
anyway). With ``memory://`` the record is an LRU of at most 100,000 senders (24 MiB of the web
page's 76-character session ids, bench/security_overhead.py), each forgotten an hour after its
last message; with a full record the oldest is dropped first (its next message counts as new
once). With another storage the record is a key per sender in that
storage, expiring an hour after its last message, shared by every replica.

Storage: ``RATE_LIMIT_STORAGE`` (default ``memory://``: per process; ``redis://host:6379/2``
shares the counts and the record between Rasa replicas; the Rasa venv has ``redis``). After a
restart with ``memory://`` the counts and the record are empty: every ongoing conversation's next
message counts once as a new one against its address's budget, and a limited client gets a fresh
window. With Redis they survive restarts (until their windows end). When the storage fails
(Redis down) messages are let through and the error is logged (once a minute): the limits
protect the service, and an outage of their storage must not take the shop's chat down with it.

``RATE_LIMITS``: ``on`` (the default when unset) or ``off`` (load tests and benchmarks on
loopback, where every simulated shopper has the same address).

Other channels (the web page's socket.io channel) use the same object::

    limiter = RateLimits.from_env()
    retry_after = limiter.check(client_key_source_address, sender_id)  # None: go on
    if retry_after is not None:
        reply(rate_limited_text(retry_after))  # RATE_LIMITED_TEXT, worded for the wait

``await limiter.acheck(...)`` does the same without blocking the event loop on a remote storage.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Tuple

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

logger = logging.getLogger(__name__)

ENABLED_ENV = "RATE_LIMITS"
STORAGE_ENV = "RATE_LIMIT_STORAGE"
TRUSTED_PROXY_HOPS_ENV = "TRUSTED_PROXY_HOPS"
TURNS_PER_CONVERSATION_ENV = "RATE_LIMIT_TURNS_PER_CONVERSATION"
TURNS_PER_CLIENT_ENV = "RATE_LIMIT_TURNS_PER_CLIENT"
NEW_CONVERSATIONS_PER_CLIENT_ENV = "RATE_LIMIT_NEW_CONVERSATIONS_PER_CLIENT"

DEFAULT_STORAGE = "memory://"
DEFAULT_TURNS_PER_CONVERSATION = "20/minute"
DEFAULT_TURNS_PER_CLIENT = "60/minute"
DEFAULT_NEW_CONVERSATIONS_PER_CLIENT = "20/10minute"
SEEN_TTL_SECONDS = 3600  # Rasa's session_expiration_time (domain.yml): 60 minutes
MAX_SEEN = 100_000
NAMESPACE = "shopchat"
IPV6_CLIENT_PREFIX = 64
ERROR_LOG_INTERVAL = 60.0

# The shopper's text when a message is refused ({wait}: "12 seconds", "4 minutes").
RATE_LIMITED_TEXT = (
    "You're sending messages faster than I can answer. Please wait {wait} and try again."
)
RATE_LIMITED_ERROR = "rate_limited"  # the ``error`` of the REST channel's 429 body

ON_VALUES = {"on", "true", "1", "yes"}
OFF_VALUES = {"off", "false", "0", "no"}


def rate_limited_text(retry_after: int) -> str:
    """:data:`RATE_LIMITED_TEXT` for a wait of ``retry_after`` seconds, in whole units."""
    seconds = max(1, int(retry_after))
    if seconds == 1:
        wait = "1 second"
    elif seconds < 120:
        wait = f"{seconds} seconds"
    else:
        wait = f"{math.ceil(seconds / 60)} minutes"
    return RATE_LIMITED_TEXT.format(wait=wait)


# ---------------------------------------------------------------- the client's address
def trusted_proxy_hops(env: Optional[Mapping[str, str]] = None) -> int:
    """``TRUSTED_PROXY_HOPS``: how many reverse proxies in front of Rasa append to
    ``X-Forwarded-For`` (0, the default: the TCP peer is the client)."""
    env = os.environ if env is None else env
    raw = (env.get(TRUSTED_PROXY_HOPS_ENV) or "0").strip()
    try:
        hops = int(raw)
    except ValueError:
        raise ValueError(f"{TRUSTED_PROXY_HOPS_ENV} must be a whole number, not {raw!r}") from None
    if hops < 0:
        raise ValueError(f"{TRUSTED_PROXY_HOPS_ENV} must be 0 or more, not {hops}")
    return hops


def normalize_address(value: str) -> Optional[str]:
    """An IP address in its canonical text ("[::1]:80" -> "::1", "::ffff:1.2.3.4" -> "1.2.3.4"),
    or None for anything that is not one."""
    text = (value or "").strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # no zone index
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def client_address(peer: str, forwarded_for: Optional[str] = None, hops: int = 0) -> str:
    """The client of a request as this server sees it (never what the client claims).

    ``peer`` is the TCP peer (Sanic's ``request.remote_addr or request.ip``). With ``hops`` >= 1
    trusted proxies, each appending the address it saw to ``X-Forwarded-For``, the client is the
    ``hops``-th entry from the right: entries further left were written by the client itself and
    prove nothing. With fewer entries than hops the leftmost is taken (a proxy that replaces the
    header writes a single entry, which is then both the first and the last). A missing or
    malformed entry gives the peer. The same rule as web/rasa_channel.py's ``client_address``.
    """
    fallback = normalize_address(peer) or (peer or "unknown")
    if hops < 1 or not forwarded_for:
        return fallback
    entries = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    if not entries:
        return fallback
    chosen = normalize_address(entries[-min(hops, len(entries))])
    if chosen is None:
        logger.warning("X-Forwarded-For entry is not an address: using the peer %s", fallback)
        return fallback
    return chosen


def client_key(address: str) -> str:
    """What one client is counted by: an IPv4 address, or the /64 network of an IPv6 one."""
    normalized = normalize_address(address)
    if normalized is None:
        return (address or "unknown")[:64]
    ip = ipaddress.ip_address(normalized)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))
    return normalized


# ---------------------------------------------------------------- conversations seen
class SeenSenders:
    """A bounded, expiring record of the senders seen (LRU; for ``memory://``)."""

    def __init__(self, ttl: float = SEEN_TTL_SECONDS, max_entries: int = MAX_SEEN) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._last: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._last)

    def seen(self, sender: str, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._expire(now)
            last = self._last.get(sender)
            return last is not None and now - last < self.ttl

    def remember(self, sender: str, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._last[sender] = now
            self._last.move_to_end(sender)
            while len(self._last) > self.max_entries:
                self._last.popitem(last=False)

    def _expire(self, now: float) -> None:
        # oldest first: stop at the first one still fresh
        while self._last:
            sender, last = next(iter(self._last.items()))
            if now - last < self.ttl:
                return
            del self._last[sender]


# ---------------------------------------------------------------- the limiter
@dataclass(frozen=True)
class LimitSettings:
    """The three limits (each a list: every item must allow the message)."""

    turns_per_conversation: Tuple[RateLimitItem, ...]
    turns_per_client: Tuple[RateLimitItem, ...]
    new_conversations_per_client: Tuple[RateLimitItem, ...]

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> LimitSettings:
        env = os.environ if env is None else env
        return cls(
            _parse(env, TURNS_PER_CONVERSATION_ENV, DEFAULT_TURNS_PER_CONVERSATION),
            _parse(env, TURNS_PER_CLIENT_ENV, DEFAULT_TURNS_PER_CLIENT),
            _parse(env, NEW_CONVERSATIONS_PER_CLIENT_ENV, DEFAULT_NEW_CONVERSATIONS_PER_CLIENT),
        )


def _parse(env: Mapping[str, str], name: str, default: str) -> Tuple[RateLimitItem, ...]:
    raw = (env.get(name) or "").strip() or default
    if raw.lower() in OFF_VALUES | {"none"}:
        return ()
    try:
        items = parse_many(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a rate limit like {default!r}: {exc}") from None
    if any(item.amount < 1 for item in items):
        raise ValueError(f"{name}={raw!r}: every limit must allow at least one")
    return tuple(items)


def enabled_from(env: Optional[Mapping[str, str]] = None) -> bool:
    env = os.environ if env is None else env
    raw = (env.get(ENABLED_ENV) or "on").strip().lower()
    if raw in ON_VALUES:
        return True
    if raw in OFF_VALUES:
        return False
    raise ValueError(f"{ENABLED_ENV} must be 'on' or 'off', not {raw!r}")


@dataclass
class RateLimits:
    """Per-client limits on turns and new conversations (module doc). ``check`` says whether a
    message may go on: None, or the seconds the client should wait."""

    settings: LimitSettings
    storage_uri: str = DEFAULT_STORAGE
    enabled: bool = True
    seen_ttl: float = SEEN_TTL_SECONDS
    max_seen: int = MAX_SEEN
    storage: Storage = field(init=False, repr=False)
    _limiter: FixedWindowRateLimiter = field(init=False, repr=False)
    _seen: Optional[SeenSenders] = field(init=False, repr=False)
    _last_error_log: float = field(init=False, repr=False, default=-math.inf)

    def __post_init__(self) -> None:
        self.storage = storage_from_string(self.storage_uri, wrap_exceptions=True)
        self._limiter = FixedWindowRateLimiter(self.storage)
        # in memory: an LRU (the storage's own expiry would scan every key every 10 ms)
        self._seen = (SeenSenders(self.seen_ttl, self.max_seen)
                      if isinstance(self.storage, MemoryStorage) else None)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> RateLimits:
        """The limiter the environment asks for (module doc); raises ValueError on a bad value."""
        env = os.environ if env is None else env
        enabled = enabled_from(env)
        settings = LimitSettings.from_env(env)
        uri = (env.get(STORAGE_ENV) or "").strip() or DEFAULT_STORAGE
        limiter = cls(settings, uri, enabled)
        logger.info("rate limits %s: %s per conversation, %s per client, %s new conversations "
                    "per client (storage %s)", "on" if enabled else "off",
                    _describe(settings.turns_per_conversation),
                    _describe(settings.turns_per_client),
                    _describe(settings.new_conversations_per_client), uri.split("@")[-1])
        return limiter

    @property
    def is_remote(self) -> bool:
        return not isinstance(self.storage, MemoryStorage)

    def check(self, client: str, sender: str) -> Optional[int]:
        """None if a message of ``sender`` from the address ``client`` may go on (and it is
        counted), else the whole seconds to wait (>= 1; nothing is counted)."""
        if not self.enabled:
            return None
        try:
            return self._check(client_key(client), sender)
        except Exception as exc:  # noqa: BLE001 - a broken storage must not stop the chat
            now = time.monotonic()
            if now - self._last_error_log >= ERROR_LOG_INTERVAL:
                self._last_error_log = now
                logger.error("rate limit storage failed, messages are let through: %s", exc)
            return None

    async def acheck(self, client: str, sender: str) -> Optional[int]:
        """:meth:`check` off the event loop when the storage is remote (Redis)."""
        if self.enabled and self.is_remote:
            return await asyncio.to_thread(self.check, client, sender)
        return self.check(client, sender)

    def _check(self, client: str, sender: str) -> Optional[int]:
        new = not self._is_seen(sender)
        applicable: list[Tuple[RateLimitItem, Sequence[str]]] = []
        applicable += [(item, ("turns-conversation", sender))
                       for item in self.settings.turns_per_conversation]
        applicable += [(item, ("turns-client", client)) for item in self.settings.turns_per_client]
        if new:
            applicable += [(item, ("new-conversations", client))
                           for item in self.settings.new_conversations_per_client]
        refused = [(item, keys) for item, keys in applicable
                   if not self._limiter.test(item, NAMESPACE, *keys)]
        if not refused:
            # a concurrent request (another replica) may have taken the last one meanwhile
            refused = [(item, keys) for item, keys in applicable
                       if not self._limiter.hit(item, NAMESPACE, *keys)]
        if refused:
            retry_after = max(self._retry_after(item, keys) for item, keys in refused)
            logger.info("rate limited: client %s, conversation %s (%s), retry after %d s",
                        client, sender[:8] + "…", ", ".join(f"{k[0]} {i}" for i, k in refused),
                        retry_after)
            return retry_after
        self._remember(sender)
        return None

    def _retry_after(self, item: RateLimitItem, keys: Sequence[str]) -> int:
        reset_time, _ = self._limiter.get_window_stats(item, NAMESPACE, *keys)
        # the storages give whole seconds, rounded down: +1 so the window has surely ended
        return max(1, min(item.get_expiry(), math.ceil(reset_time + 1 - time.time())))

    def _seen_key(self, sender: str) -> str:
        return f"{NAMESPACE}/seen/{sender}"

    def _is_seen(self, sender: str) -> bool:
        if self._seen is not None:
            return self._seen.seen(sender)
        return self.storage.get(self._seen_key(sender)) > 0

    def _remember(self, sender: str) -> None:
        if self._seen is not None:
            self._seen.remember(sender)
        else:  # one INCR + EXPIRE: the record's hour starts again with every message
            self.storage.incr(self._seen_key(sender), int(self.seen_ttl), elastic_expiry=True)


def _describe(items: Tuple[RateLimitItem, ...]) -> str:
    return " + ".join(str(item) for item in items) or "no limit"
