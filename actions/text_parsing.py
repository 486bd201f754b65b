"""Reading shoppers' text: order ids, emails, zips, word tokens. No Rasa, no HTTP.

One home for every pattern the actions match in free text, so that an order id or an email is
recognised the same way by identification, the change form, the handoff summary and the
LLM's PII mask. The shop normalises ids on its side too (shop/schemas.py); this module decides
what the assistant sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Optional

_ORDER_ID_RE = re.compile(r"^#?\s*W\s*(\d(?:\s*\d){6})$", re.IGNORECASE)
_ORDER_ID_IN_TEXT_RE = re.compile(r"\b[wW]\s?(\d{7})\b")
_BARE_ORDER_ID_RE = re.compile(r"(?<![\w.\-])(\d{7})(?![\w.\-])")

# Bounded repeats (RFC 5321: local part <= 64, labels <= 63): linear time on a long run of
# word characters, where unbounded ones were quadratic; a longer local part is no email at all
# (the lookbehind), rather than its last 64 characters.
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}"
    r"@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)
# Anything that looks like an address, valid or not, for masking before text reaches the LLM:
# of a local part over 64 characters the last 64 go (bounded repeats again).
EMAIL_LIKE_RE = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
ZIP_RE = re.compile(r"(?<![\w\d])(\d{5})(?:-\d{4})?(?!\d)")

# English function words: no content of their own for ranking or for checking an answer.
_STOP_TEXT = """
a an the and or but if then so of to in on at by for with from as is are was were be
been being it its this that these those i you we they he she my your our their me us them do does
did can could will would should may might must have has had not no yes there here what which who
when where how why any all some each every one also only just than about into out up down over
under again more most such own same too very s t please tell know get got want like make let
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())



def normalize_order_id(raw: Optional[str]) -> Optional[str]:
    """Canonical ``#W1234567`` for ``w 1234567``, ``#w1234567``, ``W1234567``...; else None.

    Returns None for anything that is not an order id, so callers can say "not found"
    without sending junk to the shop.
    """
    if raw is None:
        return None
    text = str(raw).strip().strip(".,;:!?\"'()[]")
    match = _ORDER_ID_RE.match(text)
    if not match:
        # a bare 7-digit number is what people type when they drop the "W"
        digits = re.sub(r"\s+", "", text.lstrip("#"))
        if re.fullmatch(r"\d{7}", digits):
            return f"#W{digits}"
        return None
    return "#W" + re.sub(r"\s+", "", match.group(1))


def find_order_id(text: Optional[str], bare: bool = False) -> Optional[str]:
    """First order id written anywhere in free text (``... order w 1234567 ...``).

    With ``bare``, a lone 7-digit number counts too ("no, I meant 7017301"): only where the
    conversation is already about orders.
    """
    if not text:
        return None
    match = _ORDER_ID_IN_TEXT_RE.search(text) or (bare and _BARE_ORDER_ID_RE.search(text))
    return f"#W{match.group(1)}" if match else None


def find_order_ids(text: Optional[str], bare: bool = False) -> list:
    """Every order id in free text, canonical, first mention first ("cancel W1… and W2…")."""
    found = []
    for regex in (_ORDER_ID_IN_TEXT_RE,) + ((_BARE_ORDER_ID_RE,) if bare else ()):
        for match in regex.finditer(text or ""):
            found.append((match.start(), f"#W{match.group(1)}"))
    ids: list = []
    for _, order_id in sorted(found):
        if order_id not in ids:
            ids.append(order_id)
    return ids


def without_order_ids(text: str) -> str:
    """The text with its order ids taken out (for one order of a request naming several)."""
    text = re.sub(r"#?\s?" + _ORDER_ID_IN_TEXT_RE.pattern, " ", text)
    return " ".join(_BARE_ORDER_ID_RE.sub(" ", text).split())


# "my last order", "the most recent one", "my latest purchase"
_LATEST_ORDER_RE = re.compile(
    r"\b(?:last|latest|most recent|newest|recent)\s+(?:order|purchase|one)\b|"
    r"\border i (?:just|recently) (?:placed|made)\b|\bi just ordered\b", re.IGNORECASE)


def refers_to_latest_order(text: Optional[str]) -> bool:
    """Whether the shopper means their most recent order ("my last order")."""
    return bool(_LATEST_ORDER_RE.search(text or ""))


# "change the address of W1 to …, and then cancel W2": one request per clause
_CLAUSE_BREAK_RE = re.compile(
    r"(?:[.;!?]\s+|,?\s*\b(?:and then|then|after that|afterwards|and also|also|plus|"
    r"as well as that|oh and|and finally|finally)\b|,?\s*\band\b(?=\s+(?:please\s+|pls\s+|"
    r"can you\s+|could you\s+|i want to\s+|id like to\s+|i'd like to\s+)?(?:cancel|cancle|"
    r"return|exchange|swap|change|modify|update|switch|replace|ship|send|pay|refund)\b))",
    re.IGNORECASE)
_CLAUSE_INTENTS = (  # first match wins: the most specific wording first
    ("change_address", r"\baddress|\bship (?:it )?to\b|\bdeliver (?:it )?to\b|\bsend it to\b"),
    ("change_payment", r"\bpayment|\bpay (?:for it )?with\b|\bcharge (?:it )?to\b|\bpaypal\b|"
                       r"\bgift ?card\b|\bcredit card\b"),
    ("cancel_order", r"\bcancel+\w*|\bcancle\w*|\bdont need\b|\bdon't need\b"),
    ("return_order", r"\bretu?rn\w*|\bretrun\w*|\bsend (?:it |them )?back\b|\brefund"),
    ("exchange_order", r"\bexchang\w*|\bexhange\w*|\bswap\w*|\btrade\b"),
    ("modify_order", r"\bchange\w*|\bmodify\w*|\bswitch\w*|\bupgrade\w*"),
)


@lru_cache(maxsize=256)
def request_clauses(text: Optional[str]) -> tuple:
    """(change intent or None, clause) for each clause that names an order — "change the
    address of W1…, then cancel W2" is two requests, each with its own kind and order.
    Cached: the order, the words and the queue of one turn all read it."""
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK_RE.split(text or "") if p and p.strip(" ,")]
    clauses: list = []
    for part in parts:
        intent = next((name for name, pattern in _CLAUSE_INTENTS
                       if re.search(pattern, part, re.IGNORECASE)), None)
        if find_order_ids(part) or not clauses:
            clauses.append((intent, part))
        else:  # no order of its own: it details the clause before ("..., it was a gift")
            prev_intent, prev = clauses[-1]
            clauses[-1] = (prev_intent or intent, f"{prev}, {part}")
    return tuple(clauses)


_IT_RE = re.compile(r"\b(?:it|this one|that one|this order|that order|the same order|"
                    r"this|that)\b", re.IGNORECASE)


def refers_to_it(text: Optional[str]) -> bool:
    """Whether the shopper points at the order in focus ("can I cancel it?")."""
    return bool(_IT_RE.search(text or ""))


# "yes, that one is fine": taking the one variant offered
_ACCEPT_RE = re.compile(r"\s*(yes|yeah|yep|yup|sure|ok|okay|fine|that one|take it|go for it|"
                        r"sounds good|perfect|great)\b", re.IGNORECASE)


def accepts(text: str) -> bool:
    """Whether the shopper takes what was just offered ("yes, that one is fine")."""
    return bool(_ACCEPT_RE.match(text))


EXTERNAL_PREFIX = "EXTERNAL: "  # Rasa's text of a reminder / external event (not typed)


def is_payload(text: str) -> bool:
    """Whether a message is a button payload (``/intent{...}``) or an event Rasa triggered
    itself (a reminder: ``EXTERNAL: <intent>``), not words the shopper typed."""
    return text.startswith("/") or text.startswith(EXTERNAL_PREFIX)


def words_of(text: str) -> str:
    """The shopper's own words: empty for a button payload."""
    return "" if is_payload(text) else text


@dataclass(frozen=True)
class Turn:
    """One user message, parsed once: what was typed, the intent, the entities (Rasa's
    ``parse_data`` shape; no Rasa needed, so what reads it is tested on plain values)."""

    text: str = ""
    intent: Optional[str] = None
    entities: Mapping[str, str] = field(default_factory=dict)  # the last value of each
    entity_names: frozenset = frozenset()  # also those the NLU found without a value

    @classmethod
    def parse(cls, message: Mapping[str, Any]) -> Turn:
        entities = {}
        names = set()
        for entity in message.get("entities") or []:
            names.add(str(entity.get("entity")))
            if entity.get("value") not in (None, ""):
                entities[str(entity.get("entity"))] = str(entity.get("value"))
        text = message.get("text") or ""
        if text.startswith(EXTERNAL_PREFIX):  # a reminder Rasa triggered: nothing was typed
            text = ""
        return cls(text=text,
                   intent=(message.get("intent") or {}).get("name"),
                   entities=entities, entity_names=frozenset(names))

    @property
    def words(self) -> str:
        """What the shopper typed; empty for a button payload (``/inform{...}``)."""
        return words_of(self.text)

    @property
    def is_payload(self) -> bool:
        return is_payload(self.text)

    def entity(self, name: str) -> Optional[str]:
        return self.entities.get(name)

    def order_id(self) -> Optional[str]:
        """The canonical order id this message names (entity or text), or None."""
        return normalize_order_id(self.entity("order_id") or "") or find_order_id(
            self.text, bare=not self.is_payload
        )


# "anything like my boots but cheaper", "something similar to my X", "what would you
# recommend": a request for suggestions, whichever intent the NLU gave it (issue 21)
SUGGESTION_REQUEST_RE = re.compile(
    r"\b(?:recommend\w*|recomend\w*|suggest\w*|(?:any|some)thing (?:like|similar to)|"
    r"similar to (?:my|the|what)|alternative to|cheaper (?:version|option|alternative) of)\b",
    re.IGNORECASE,
)


def asks_for_suggestions(text: str) -> bool:
    """Whether the shopper's words ask for suggestions rather than about one product."""
    return bool(SUGGESTION_REQUEST_RE.search(words_of(text or "")))
