"""Grounded answers for free-form shopper questions (library for the fallback action).

`grounded_answer(question, shopper_facts)` retrieves knowledge passages, asks the configured
OpenAI-compatible LLM to answer only from them, checks the answer against them and returns an
`Answer`; `format_reply(answer)` words it for the shopper. It never raises: faults come back as
`kind="error"` so the caller can apologise and offer a human agent (never silence).

Settings: LLM_BASE_URL (default http://localhost:8081/v1), LLM_MODEL (empty = the embedded
SmolLM2), LLM_API_KEY (empty = no Authorization header), LLM_TIMEOUT (seconds, default 8),
LLM_MAX_TOKENS (default 40).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from actions.knowledge import Hit, Retriever, default_retriever

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
OFFTOPIC_THRESHOLD = float(os.environ.get("LLM_OFFTOPIC_THRESHOLD", "0.25"))
TOP_K = 2  # passages in the prompt: each costs ~100 tokens of prefill on a small CPU model

Kind = Literal["answered", "passage", "offtopic", "error"]


# ---------------------------------------------------------------- errors and client
class LLMError(Exception):
    """The LLM gave no usable answer."""


class LLMUnavailable(LLMError):
    """Connection refused / DNS / reset: the server is not there."""


class LLMTimeout(LLMError):
    """No answer within LLM_TIMEOUT seconds."""


class LLMBadResponse(LLMError):
    """HTTP error status, or a body that is not an OpenAI chat completion."""


@dataclass
class LLMConfig:
    base_url: str = "http://localhost:8081/v1"
    model: str = DEFAULT_MODEL
    api_key: str = ""
    timeout: float = 8.0
    max_tokens: int = 40

    @classmethod
    def from_env(cls) -> LLMConfig:
        return cls(
            base_url=(os.environ.get("LLM_BASE_URL") or cls.base_url).rstrip("/"),
            model=os.environ.get("LLM_MODEL") or DEFAULT_MODEL,
            api_key=os.environ.get("LLM_API_KEY") or "",
            timeout=float(os.environ.get("LLM_TIMEOUT") or 8),
            max_tokens=int(os.environ.get("LLM_MAX_TOKENS") or 40),
        )


class LLMClient:
    """Minimal OpenAI chat-completions client over requests.

    Retries only what is safe and cheap: connection failures (nothing reached the server) and
    502/503/504 (proxy or not-ready answers). A read timeout is not retried: the whole turn must
    stay inside LLM_TIMEOUT. Chat completions change nothing, so a retried POST is harmless.
    """

    def __init__(self, config: Optional[LLMConfig] = None) -> None:
        self.config = config or LLMConfig.from_env()
        retry = Retry(total=2, connect=2, read=False, status=1, backoff_factor=0.2,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"POST", "GET"}),
                      raise_on_status=False, respect_retry_after_header=False)
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def chat(self, messages: list[dict[str, str]], max_tokens: Optional[int] = None,
             temperature: float = 0.0) -> str:
        """Return the assistant text of one completion, or raise a typed LLMError."""
        cfg = self.config
        body = {"model": cfg.model, "messages": messages, "temperature": temperature,
                "max_tokens": max_tokens or cfg.max_tokens, "stream": False}
        try:
            resp = self.session.post(f"{cfg.base_url}/chat/completions", json=body,
                                     headers=self._headers(),
                                     timeout=(min(2.0, cfg.timeout), cfg.timeout))
        except requests.ConnectTimeout as exc:
            raise LLMUnavailable(f"cannot reach {cfg.base_url}") from exc
        except requests.Timeout as exc:
            raise LLMTimeout(f"no answer in {cfg.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                raise LLMTimeout(f"no answer in {cfg.timeout:g} s") from exc
            raise LLMUnavailable(f"cannot reach {cfg.base_url}") from exc
        except requests.RequestException as exc:
            raise LLMUnavailable(str(exc)) from exc
        if resp.status_code >= 400:
            raise LLMBadResponse(f"HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMBadResponse(f"not a chat completion: {resp.text[:200]!r}") from exc
        if not isinstance(content, str):
            raise LLMBadResponse("message content is not text")
        return content


# ---------------------------------------------------------------- masking
# Bounded repeats (RFC 5321 lengths): linear on a long run of word characters, where unbounded
# ones were quadratic. Of a local part over 64 characters (no valid address) the last 64 go.
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_CARD = re.compile(r"(?<![\w#])(?:\d[ -]?){12,18}\d(?!\w)")
_PHONE = re.compile(
    r"(?<![\w#])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?!\w)"
    r"|(?<![\w#])\+\d{8,15}(?!\w)"
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_pii(text: str) -> str:
    """Replace emails, card numbers and phone numbers; keep order ids (#W...) and item ids."""
    text = _EMAIL.sub("[email]", text)

    def card(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group())
        separated = any(c in m.group() for c in " -")
        return "[card number]" if separated or _luhn(digits) else m.group()

    text = _CARD.sub(card, text)
    return _PHONE.sub("[phone]", text)


# ---------------------------------------------------------------- checks
_STOP_WORDS = """
a an the and or but if then so of to in on at by for with from as is are was were be
been being it its this that these those i you we they he she my your our their me us them do does
did can could will would should may might must have has had not no yes there here what which who
when where how why any all some each every one also only just than about into out up down over
under again more most such own same too very s t please tell know get got want like make let"""
_STOP = set(_STOP_WORDS.split())

_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
                 "fourteen": "14", "thirty": "30", "twenty": "20", "fifteen": "15",
                 "once": "1", "twice": "2", "thrice": "3"}
_KEY_TERMS = ("gift card", "credit card", "paypal", "pending", "processed", "delivered",
              "cancelled", "return", "exchange", "immediate", "at once", "business day")
_CLAIM = re.compile(
    r"\b(?:i|we)(?:\s+have|'ve|\s+just|\s+already)*\s+(?:successfully\s+)?"
    r"(cancel+ed|refunded|changed|updated|modified|returned|exchanged|processed|issued|"
    r"initiated|submitted|placed|requested|credited|moved|swapped|replaced)\b"
    r"|\b(?:your|the)\s+(?:order|item|items|address|payment|refund|return|exchange)"
    r"[\w\s#-]{0,30}?\b(?:has|have)\s+been\s+(cancel+ed|refunded|changed|updated|modified|"
    r"returned|exchanged|processed|issued|initiated|submitted|placed|credited|replaced)\b",
    re.IGNORECASE,
)
_FLOW_OF = {"cancel": "cancel", "refund": "cancel", "return": "return", "exchang": "exchange",
            "address": "address", "payment": "payment", "item": "items", "modif": "items",
            "chang": "items", "updat": "address", "swap": "exchange", "replac": "exchange"}
_SECRET = re.compile(r"(system prompt|<\|im_start\|>|<\|im_end\|>|sk-[A-Za-z0-9]{8,}"
                     r"|bearer\s+\S{8,}|api[_ ]?key|SHOP_API_TOKEN|LLM_API_KEY|RASA_AUTH_TOKEN"
                     r"|PASSAGE \d)",
                     re.IGNORECASE)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.,]\d+)?", text.lower())


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s", "ly"):
        if len(w) > 4 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def _content(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP and not w.isdigit() and len(w) > 2}


def _numbers(text: str) -> set[str]:
    found = set(re.findall(r"\d+(?:[.,]\d+)*", text))
    found |= {_NUMBER_WORDS[w] for w in _words(text) if w in _NUMBER_WORDS}
    return {n.replace(",", "") for n in found}


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _clauses(text: str) -> list[str]:
    """Evidence split finely, so "gift card: immediate; card: 5 to 7 days" stays apart."""
    return [c for c in re.split(r"[.;:!?]\s+|,\s+|\n", text) if c.strip()]


def unsupported_reason(answer: str, evidence: str,
                       number_evidence: Optional[str] = None) -> Optional[str]:
    """Why `answer` is not backed by `evidence` (passages + facts + question), or None.

    Cheap, conservative checks: every number (digits or once/twice/five...) must occur in
    `number_evidence` (default `evidence`; the caller leaves the question's small numbers out, so
    "can I change items twice?" -> "yes, twice" is caught), in a clause that also names the same
    payment method / status terms; and most content words must occur in the evidence.
    """
    if len(_words(answer)) < 3:
        return "too short"
    number_evidence = evidence if number_evidence is None else number_evidence
    ev_sents = _clauses(number_evidence)
    ev_numbers = _numbers(number_evidence)
    for sent in _clauses(answer):
        nums = _numbers(sent)
        if not nums:
            continue
        if not nums <= ev_numbers:
            return f"numbers not in passages: {sorted(nums - ev_numbers)}"
        terms = [t for t in _KEY_TERMS if t in sent.lower()]
        if not any(nums <= _numbers(e) and all(t in e.lower() for t in terms) for e in ev_sents):
            return f"numbers {sorted(nums)} not stated with {terms} in passages"
    words = _content(answer)
    if not words:
        return "no content"
    overlap = len(words & _content(evidence)) / len(words)
    if overlap < 0.7:
        return f"content overlap {overlap:.2f} < 0.70"
    return None


def change_claim(text: str) -> Optional[str]:
    """The flow a text claims to have done ("I have cancelled ..."), or None."""
    m = _CLAIM.search(text)
    if not m:
        return None
    verb = (m.group(1) or m.group(2) or "").lower()
    context = (m.group(0) + " " + text).lower()
    for key, flow in _FLOW_OF.items():
        if key in verb or key in context:
            return flow
    return "change"


# ---------------------------------------------------------------- answer
@dataclass
class Answer:
    """What the fallback action needs to reply.

    kind: "answered" (LLM text, checked against the passages), "passage" (best passage quoted,
    with `title`), "offtopic" (polite redirect), "error" (apologise, offer a human agent; the
    best passage, when retrieval worked, is in `title`/`passage` and may be quoted).
    """

    text: str
    kind: Kind
    supported: bool
    sources: list[str] = field(default_factory=list)
    title: Optional[str] = None  # title of the best passage
    passage: Optional[str] = None  # text of the best passage (also set on errors, to quote)
    offer_flow: Optional[str] = None  # e.g. "cancel": offer to start that confirmed flow
    error: Optional[str] = None  # error class name for logs/metrics, never shown to shoppers
    reason: Optional[str] = None  # why an LLM answer was replaced by the passage (for logs/eval)
    llm_text: Optional[str] = None  # the raw LLM text (for logs/eval), never shown
    seconds: float = 0.0


OFFTOPIC_REPLY = ("Sorry, I can only help with this store: orders, shipping, returns, refunds, "
                  "payments and your account. What can I do for you there?")
ERROR_REPLY = ("Sorry, I can't answer that right now. Would you like me to connect you with a "
               "human agent?")
FLOW_OFFER = {
    "cancel": "I can't make changes from here, but I can start a cancellation with you: just say "
              "\"cancel my order\".",
    "return": "I can't make changes from here, but I can start a return with you: just say "
              "\"I want to return an item\".",
    "exchange": "I can't make changes from here, but I can start an exchange with you: just say "
                "\"I want to exchange an item\".",
    "address": "I can't make changes from here, but I can help you change an address: just say "
               "\"change my address\".",
    "payment": "I can't make changes from here, but I can help you change the payment method: "
               "just say \"change my payment method\".",
    "items": "I can't make changes from here, but I can help you change items of a pending order: "
             "just say \"change an item in my order\".",
    "change": "I can't make changes from here, but I can start that with you step by step: just "
              "tell me what you want to change.",
}

SUPPORT_SIM = float(os.environ.get("LLM_SUPPORT_SIM", "0.7"))
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none|nothing|nor)\b|n't\b", re.IGNORECASE)


def semantic_reason(sentences: list[str], retriever: Retriever, hits: list[Hit],
                    facts: Optional[str]) -> Optional[str]:
    """Each answer sentence must be close (MiniLM cosine >= SUPPORT_SIM) to one sentence of the
    retrieved passages or facts, with the same polarity (both negated or neither): catches
    fluent additions and flipped rules ("you can pay with a gift card that does not have
    enough money") that the word checks let through."""
    ev_texts, ev_vecs = retriever.sentences(hits)
    if facts:
        fact_sents = _sentences(facts)
        ev_texts = ev_texts + fact_sents
        fact_vecs = retriever.embed(fact_sents)
        ev_vecs = np.vstack([ev_vecs, fact_vecs]) if len(ev_vecs) else fact_vecs
    if not len(ev_vecs):
        return "no evidence sentences"
    vecs = retriever.embed(sentences)
    for sent, v in zip(sentences, vecs, strict=True):
        sims = ev_vecs @ v
        i = int(np.argmax(sims))
        if sims[i] < SUPPORT_SIM:
            return f"sentence similarity {sims[i]:.2f} < {SUPPORT_SIM:.2f}: {sent[:60]!r}"
        if bool(_NEGATION.search(sent)) != bool(_NEGATION.search(ev_texts[i])):
            return f"negation differs from {ev_texts[i][:60]!r}"
    return None


SYSTEM_PROMPT = (
    "You are the customer service assistant of an online store. Answer the shopper's question "
    "in one or two short sentences, using only the facts below. Copy numbers exactly. If the "
    "facts do not answer the question, say you do not know. You cannot make changes to orders."
)


def _prompt(question: str, hits: list[Hit], facts: Optional[str]) -> list[dict[str, str]]:
    parts = [f"{h.passage.title}: {h.passage.text}" for h in hits]
    if facts:
        parts.append(f"The shopper's own orders: {facts}")
    system = SYSTEM_PROMPT + "\n\nFacts:\n" + "\n".join(f"- {p}" for p in parts)
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def _tidy(text: str) -> str:
    """Keep whole sentences, at most three: max_tokens or the server's time budget may cut the
    last one, and a cut-off single sentence ("Refunds take 5 to") becomes "" (passage shown)."""
    text = " ".join(text.replace("\u200b", "").split())
    # a bare yes/no cannot be checked against the passages; the statement after it can
    text = re.sub(r"^(?:yes|no)\b[,.!]?\s+(?=\w)", "", text, flags=re.IGNORECASE)
    text = text[:1].upper() + text[1:]
    sents = _sentences(text)
    if sents and not re.search(r"[.!?][\"')]?$", sents[-1]):
        sents = sents[:-1]
    return " ".join(sents[:3])


def _passage_answer(best: Hit, sources: list[str], reason: str, llm_text: Optional[str],
                    offer: Optional[str] = None) -> Answer:
    return Answer(text=best.passage.text, kind="passage", supported=True, sources=sources,
                  title=best.passage.title, passage=best.passage.text, offer_flow=offer,
                  reason=reason, llm_text=llm_text)


def grounded_answer(question: str, shopper_facts: Optional[str] = None, *,
                    retriever: Optional[Retriever] = None,
                    client: Optional[LLMClient] = None) -> Answer:
    """Answer a free-form shopper question from the store's knowledge; never raises."""
    t0 = time.perf_counter()
    answer = _grounded_answer(question, shopper_facts, retriever, client)
    answer.seconds = time.perf_counter() - t0
    return answer


def _grounded_answer(question: str, shopper_facts: Optional[str],
                     retriever: Optional[Retriever], client: Optional[LLMClient]) -> Answer:
    question = mask_pii((question or "").strip())[:1000]
    facts = mask_pii(shopper_facts.strip())[:1500] if shopper_facts else None
    if not question:
        return Answer(OFFTOPIC_REPLY, "offtopic", True)
    retriever = retriever or default_retriever()
    try:
        hits = retriever.search(question, k=TOP_K)
    except Exception as exc:  # missing weights/index: still reply
        log.exception("retrieval failed")
        return Answer(ERROR_REPLY, "error", False, error=type(exc).__name__)
    if not hits or hits[0].score < OFFTOPIC_THRESHOLD:
        return Answer(OFFTOPIC_REPLY, "offtopic", True)
    best, sources = hits[0], [h.passage.title for h in hits]
    asked_change = change_claim("I have " + question) if _wants_change(question) else None
    try:
        raw = (client or LLMClient()).chat(_prompt(question, hits, facts))
    except LLMError as exc:
        log.warning("LLM failed: %s: %s", type(exc).__name__, exc)
        return Answer(ERROR_REPLY, "error", False, sources=sources, title=best.passage.title,
                      passage=best.passage.text, error=type(exc).__name__)
    text = _tidy(raw)
    if raw.strip() and not text and re.search(r"[A-Za-z]{2}", raw):
        return _passage_answer(best, sources, "answer cut off", raw, asked_change)
    if not text or not re.search(r"[A-Za-z]{2}", text):
        return Answer(ERROR_REPLY, "error", False, sources=sources, title=best.passage.title,
                      passage=best.passage.text, error="LLMBadResponse", llm_text=raw)
    claimed = change_claim(text)
    if claimed:
        return _passage_answer(best, sources, f"claimed a change ({claimed})", raw, claimed)
    if _SECRET.search(text):
        return _passage_answer(best, sources, "mentions prompt or secrets", raw, asked_change)
    evidence = "\n".join([h.passage.text for h in hits] + [facts or "", question])
    ids = " ".join(re.findall(r"#?[A-Za-z]?\d{4,}", question))  # order/item ids may be echoed
    number_evidence = "\n".join([h.passage.text for h in hits] + [facts or "", ids])
    reason = unsupported_reason(text, evidence, number_evidence)
    if not reason:
        try:
            reason = semantic_reason(_sentences(text), retriever, hits, facts)
        except Exception as exc:  # the check must not break the turn: be conservative
            log.warning("semantic check failed: %s", exc)
            reason = "semantic check failed"
    if reason:
        return _passage_answer(best, sources, reason, raw, asked_change)
    return Answer(text, "answered", True, sources=sources, title=best.passage.title,
                  passage=best.passage.text, offer_flow=asked_change, llm_text=raw)


def _wants_change(question: str) -> bool:
    return bool(re.search(r"\b(cancel|return|exchange|refund|change|modify|update|swap)\b",
                          question, re.IGNORECASE)) and bool(
        re.search(r"\b(i want|i'd like|i would like|please|can you|could you|do it|now)\b|^"
                  r"(cancel|return|exchange|refund|change|modify|update)\b",
                  question.strip(), re.IGNORECASE))


def format_reply(answer: Answer) -> str:
    """Shopper-facing wording of an Answer (the fallback action may use or adapt it)."""
    if answer.kind == "answered":
        reply = answer.text
    elif answer.kind == "passage":
        reply = f"Here is what our help pages say ({answer.title}): {answer.text}"
    elif answer.kind == "error" and answer.passage:
        reply = (f"Sorry, I can't answer that fully right now. Our help page ({answer.title}) "
                 f"says: {answer.passage} Would you like me to connect you with a human agent?")
    else:
        reply = answer.text  # OFFTOPIC_REPLY or ERROR_REPLY
    if answer.offer_flow and answer.kind in ("answered", "passage"):
        reply += " " + FLOW_OFFER.get(answer.offer_flow, FLOW_OFFER["change"])
    return reply


def describe_answer(answer: Answer) -> dict[str, Any]:
    """Loggable summary (no shopper text)."""
    return {"kind": answer.kind, "supported": answer.supported, "sources": answer.sources,
            "offer_flow": answer.offer_flow, "error": answer.error, "reason": answer.reason,
            "seconds": round(answer.seconds, 3)}
