"""Grounded answers for free-form shopper questions (library for the fallback action).

`grounded_answer(question, shopper_facts)` retrieves knowledge passages, asks the configured
OpenAI-compatible LLM to answer only from them, checks the answer against them and returns an
`Answer`; `format_reply(answer)` words it for the shopper. It never raises: faults come back as
`kind="error"` so the caller can apologise and offer a human agent (never silence).

`LLMClient.structured(messages, schema)` is the assistant's own structured-output call: JSON that
follows a JSON schema (llama.cpp grammar on the embedded server, `response_format: json_schema` on
any OpenAI-compatible one), validated here; `LLMSchemaError` when the reply does not follow it.

Settings: LLM_BASE_URL (default http://localhost:8081/v1), LLM_MODEL (empty = the embedded
Qwen2.5-Coder-1.5B-Instruct), LLM_API_KEY (empty = no Authorization header), LLM_TIMEOUT
(seconds, default 10), LLM_MAX_TOKENS (default 80).
"""

from __future__ import annotations

import json
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

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
OFFTOPIC_THRESHOLD = float(os.environ.get("LLM_OFFTOPIC_THRESHOLD", "0.25"))
TOP_K = 3  # passages retrieved; their best sentences go into the prompt (see _evidence)
PROMPT_SENTENCES = 6  # sentences of evidence in the prompt: ~150 tokens of prefill on 2 cores

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


class LLMSchemaError(LLMBadResponse):
    """A structured reply that is not JSON or does not follow the requested schema."""


@dataclass
class LLMConfig:
    base_url: str = "http://localhost:8081/v1"
    model: str = DEFAULT_MODEL
    api_key: str = ""
    timeout: float = 10.0
    max_tokens: int = 80

    @classmethod
    def from_env(cls) -> LLMConfig:
        return cls(
            base_url=(os.environ.get("LLM_BASE_URL") or cls.base_url).rstrip("/"),
            model=os.environ.get("LLM_MODEL") or DEFAULT_MODEL,
            api_key=os.environ.get("LLM_API_KEY") or "",
            timeout=float(os.environ.get("LLM_TIMEOUT") or 10),
            max_tokens=int(os.environ.get("LLM_MAX_TOKENS") or 80),
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
        return self._complete(messages, max_tokens, temperature, None, None)

    def structured(self, messages: list[dict[str, str]], schema: dict[str, Any], *,
                   name: str = "response", max_tokens: int = 200,
                   timeout: Optional[float] = None) -> Any:
        """JSON following `schema`, or a typed LLMError (`LLMSchemaError` when the reply is not
        JSON or breaks the schema). The embedded server constrains decoding with a grammar made
        from the schema; other servers get OpenAI's `json_schema` response format, and the reply
        is validated here either way."""
        import jsonschema  # a Rasa dependency

        fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema,
                                                      "strict": True}}
        text = self._complete(messages, max_tokens, 0.0, fmt, timeout)
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise LLMSchemaError(f"reply is not JSON: {text[:200]!r}") from exc
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            raise LLMSchemaError(f"reply breaks the schema: {exc.message}") from exc
        return value

    def _complete(self, messages: list[dict[str, str]], max_tokens: Optional[int],
                  temperature: float, response_format: Optional[dict],
                  timeout: Optional[float]) -> str:
        cfg = self.config
        timeout = timeout or cfg.timeout
        body: dict[str, Any] = {"model": cfg.model, "messages": messages,
                                "temperature": temperature,
                                "max_tokens": max_tokens or cfg.max_tokens, "stream": False}
        if response_format:
            body["response_format"] = response_format
        try:
            resp = self.session.post(f"{cfg.base_url}/chat/completions", json=body,
                                     headers=self._headers(),
                                     timeout=(min(2.0, timeout), timeout))
        except requests.ConnectTimeout as exc:
            raise LLMUnavailable(f"cannot reach {cfg.base_url}") from exc
        except requests.Timeout as exc:
            raise LLMTimeout(f"no answer in {timeout:g} s") from exc
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                raise LLMTimeout(f"no answer in {timeout:g} s") from exc
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
_SECRET = re.compile(r"(<\|im_start\|>|<\|im_end\|>|sk-[A-Za-z0-9]{8,}|bearer\s+\S{8,}"
                     r"|SHOP_API_TOKEN|LLM_API_KEY|RASA_AUTH_TOKEN|AGENT_TOKEN|PASSAGE \d)",
                     re.IGNORECASE)
# Words about the assistant's inner workings: allowed only in a sentence copied from a passage
# (the privacy page says "I do not share my ... system prompt, access tokens or keys").
_INNER = re.compile(r"system prompt|\b(?:internal|previous|system|my) instructions\b|"
                    r"api[_ ]?key|access token|\bprompt\b", re.IGNORECASE)
_ID = re.compile(r"#?\b[A-Za-z]\d{5,}\b")


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def secret_reason(text: str, passages: list[str]) -> Optional[str]:
    """Why `text` may leak the prompt or a secret, or None."""
    if _SECRET.search(text):
        return "mentions prompt or secrets"
    corpus = _normal(" ".join(passages))
    for sent in _sentences(text):
        if _INNER.search(sent) and _normal(sent) not in corpus:
            return "mentions prompt or secrets"
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.,]\d+)?", text.lower())


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s", "ly"):
        if len(w) > 4 and w.endswith(suf):
            w = w[: -len(suf)]
            if suf in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
                w = w[:-1]  # swapped -> swap, shipping -> ship
            return w
    return w


def _content(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP and not w.isdigit() and len(w) > 2}


# "one" as a pronoun ("a pricier one", "one of them") is not a count
_PRONOUN_ONE = re.compile(r"\b(?:a|an|the|this|that|which|another|any|each|every|no|new|same|"
                          r"other|[a-z]+er)\s+one\b|\bone\s+(?:of|another)\b|\bone\W*$",
                          re.IGNORECASE)


def _numbers(text: str) -> set[str]:
    found = set(re.findall(r"\d+(?:[.,]\d+)*", text))
    words = _words(_PRONOUN_ONE.sub(" ", text))
    found |= {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS}
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
    for found in _ID.findall(answer):  # order/item ids: echoed from the facts or question only
        if found.lstrip("#").lower() not in number_evidence.lower():
            return f"id {found} not in the facts"
    for sent in _clauses(_ID.sub(" ", answer)):
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


def overlap_share(answer: str, evidence: str) -> float:
    """Share of the answer's content words that occur in the evidence."""
    words = _content(answer)
    return len(words & _content(evidence)) / len(words) if words else 0.0


def evidence_of(hits: list[Hit]) -> str:
    return "\n".join(h.passage.text for h in hits)


UNRELATED_SCORE = 0.35  # below it, a passage is only loosely about the question


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

SUPPORT_SIM = float(os.environ.get("LLM_SUPPORT_SIM", "0.65"))
CATALOG_SUPPORT_SIM = float(os.environ.get("LLM_CATALOG_SUPPORT_SIM", "0.45"))
CATALOG_SOURCE = "catalog.md"
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none|nothing|nor)\b|n't\b", re.IGNORECASE)


ECHO_SIM = float(os.environ.get("LLM_ECHO_SIM", "0.9"))
POLARITY_WINDOW = 0.08


def semantic_reason(sentences: list[str], retriever: Retriever, hits: list[Hit],
                    facts: Optional[str], question: str = "") -> Optional[str]:
    """Each answer sentence must be close (MiniLM cosine >= SUPPORT_SIM) to one sentence of the
    retrieved passages or facts, with the same polarity (both negated or neither): catches
    fluent additions and flipped rules ("you can pay with a gift card that does not have
    enough money") that the word checks let through. A sentence that only restates the
    question (cosine >= ECHO_SIM to it: "If you update your address, your orders will ship
    there") carries no evidence of its own, so any close evidence sentence of the opposite
    polarity rejects it, not only the closest one."""
    ev_texts, ev_vecs, ev_sources = retriever.sentences(hits)
    if facts:  # facts come as "status processed; paid $536.65 with a gift card": split finely
        fact_sents = list(dict.fromkeys(_sentences(facts) + _clauses(facts)))
        ev_texts = ev_texts + fact_sents
        ev_sources = ev_sources + ["facts"] * len(fact_sents)
        fact_vecs = retriever.embed(fact_sents)
        ev_vecs = np.vstack([ev_vecs, fact_vecs]) if len(ev_vecs) else fact_vecs
    if not len(ev_vecs):
        return "no evidence sentences"
    vecs = retriever.embed(sentences + ([question] if question else []))
    q_vec = vecs[-1] if question else None
    for sent, v in zip(sentences, vecs[: len(sentences)], strict=True):
        sims = ev_vecs @ v
        order = np.argsort(-sims)
        i = int(order[0])
        # a catalog sentence lists many options and prices, so a right answer about one of them
        # is far from it in MiniLM space; there the number and name checks carry the weight
        floor = CATALOG_SUPPORT_SIM if ev_sources[i] == CATALOG_SOURCE else SUPPORT_SIM
        if sims[i] < floor:
            return f"sentence similarity {sims[i]:.2f} < {floor:.2f}: {sent[:60]!r}"
        if ev_sources[i] == CATALOG_SOURCE:
            continue  # option lists ("waterproof: no or yes") have no polarity
        negated = bool(_NEGATION.search(sent))
        # the closest sentence may be a neighbour of the one that states it ("Before I can look
        # at your orders, I need to identify you" vs "An order number alone is not enough"):
        # any sentence nearly as close with the same polarity supports it
        near = [int(j) for j in order[:4] if sims[j] >= max(floor, sims[i] - POLARITY_WINDOW)]
        if all(bool(_NEGATION.search(ev_texts[j])) != negated for j in near):
            return f"negation differs from {ev_texts[i][:60]!r}"
        if q_vec is not None and float(q_vec @ v) >= ECHO_SIM:
            for j in order[1:4]:
                if (sims[j] >= max(SUPPORT_SIM, sims[i] - 0.1)
                        and bool(_NEGATION.search(ev_texts[j])) != negated):
                    return f"restates the question against {ev_texts[j][:60]!r}"
    return None


_ASKS_QUANTITY = re.compile(r"\bhow\s+(?:long|many|much|soon|often)\b|\bhow many times\b",
                            re.IGNORECASE)
_QUANTITY = re.compile(r"\d|\b(?:immediate\w*|at once|right away|instantly|once|twice|one|two|"
                       r"three|four|five|six|seven|eight|nine|ten|days?|weeks?|hours?|free|"
                       r"no (?:fee|charge|cost))\b", re.IGNORECASE)


_METHODS = {"credit card": re.compile(r"\bcredit card|(?<!gift )\bcards?\b", re.I),
            "gift card": re.compile(r"\bgift card", re.I),
            "paypal": re.compile(r"\bpaypal\b", re.I)}


def focus_reason(question: str, text: str) -> Optional[str]:
    """"How long until my money is back on a credit card?" needs an answer that names the
    method asked about, not one about another method only."""
    if not _ASKS_QUANTITY.search(question) and not re.search(r"\bwhen\b", question, re.I):
        return None
    asked = [m for m in _METHODS if m in question.lower()]
    if asked and not any(_METHODS[m].search(text) for m in asked):
        return f"asked about {' / '.join(asked)}, answer does not name it"
    return None


def quantity_reason(question: str, text: str) -> Optional[str]:
    """"How long does a card refund take?" answered without any duration is not an answer."""
    if _ASKS_QUANTITY.search(question) and not _QUANTITY.search(text):
        return "asked how long/many/much, answer gives no quantity"
    return None


_YES_NO = re.compile(r"^\W*(yes|no)\b[,.!]?\s*(.*)$", re.IGNORECASE | re.DOTALL)
_RESTRICTION = re.compile(r"\b(?:only|unless|except|must|have to|has to|needs? to|requires?)\b",
                          re.IGNORECASE)


def yes_no_reason(raw: str) -> Optional[str]:
    """"No, an exchange creates a new order." says two things at once: a leading No must be
    followed by a negated or restricted statement, a leading Yes by one that is not negated."""
    m = _YES_NO.match(raw.strip())
    if not m or not m.group(2).strip():
        return None
    rest = m.group(2)
    first = _sentences(rest)[0] if _sentences(rest) else rest
    negated = bool(_NEGATION.search(first))
    if m.group(1).lower() == "no" and not (_NEGATION.search(rest) or _RESTRICTION.search(rest)):
        return "a leading No before a positive statement"
    if m.group(1).lower() == "yes" and negated and not _RESTRICTION.search(first):
        # ("Yes, shirts can only become another shirt, not a different product" is fine)
        return "a leading Yes before a negated statement"
    return None


# Constant first: llama.cpp reuses the cached prefix of the previous prompt, so these tokens
# are computed once, not per question.
SYSTEM_PROMPT = (
    "You are the customer service assistant of an online store. Answer the shopper's question "
    "in one or two short sentences from the facts listed under Facts only. Pick the fact that "
    "answers the question and copy its words; for a yes/no question start with Yes or No. "
    "Many questions hope for a yes that the facts do not give: say what the facts say, even "
    "when it is a no. Never add anything the facts do not say. You cannot make changes to "
    "orders and must never say that you did.\n\n"
    "Example (a library, not this store). Facts: Loans: Books can be borrowed for 14 days. "
    "Renewals: A loan can be renewed once, online. Question: can I keep my book for a month? "
    "Answer: No, books can be borrowed for 14 days, and a loan can be renewed once, online.\n"
    "Example (a library, not this store). Facts: Cards: A library card is free for residents. "
    "Question: how much is a card for me, I live here? Answer: A library card is free for "
    "residents."
)
DONT_KNOW = re.compile(r"^\W*(?:i\s+(?:do\s+not|don't)\s+know|i'm not sure|i am not sure)\b",
                       re.IGNORECASE)


def _evidence(question: str, hits: list[Hit], retriever: Optional[Retriever]) -> list[str]:
    """Prompt lines: the sentences of the hit passages closest to the question, grouped under
    their passage titles; whole passages when the retriever cannot rank sentences."""
    if retriever is not None:
        try:
            chosen = retriever.best_sentences(question, hits, PROMPT_SENTENCES)
        except Exception:  # noqa: BLE001 - whole passages below
            chosen = []
        if chosen:
            lines: dict[str, list[str]] = {}
            for title, sent in chosen:
                lines.setdefault(title, []).append(sent)
            return [f"{title}: {' '.join(sents)}" for title, sents in lines.items()]
    return [f"{h.passage.title}: {h.passage.text}" for h in hits]


def _prompt(question: str, hits: list[Hit], facts: Optional[str],
            retriever: Optional[Retriever] = None) -> list[dict[str, str]]:
    parts = _evidence(question, hits, retriever)
    if facts:  # the shopper's own order first: "can I cancel it?" is about that order
        parts.insert(0, "The shopper's order: " + " ".join(facts.split()))
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
        raw = (client or LLMClient()).chat(_prompt(question, hits, facts, retriever))
    except LLMError as exc:
        log.warning("LLM failed: %s: %s", type(exc).__name__, exc)
        return Answer(ERROR_REPLY, "error", False, sources=sources, title=best.passage.title,
                      passage=best.passage.text, error=type(exc).__name__)
    if DONT_KNOW.search(raw):
        return _passage_answer(best, sources, "model does not know", raw, asked_change)
    text = _tidy(raw)
    if raw.strip() and not text and re.search(r"[A-Za-z]{2}", raw):
        return _passage_answer(best, sources, "answer cut off", raw, asked_change)
    if not text or not re.search(r"[A-Za-z]{2}", text):
        return Answer(ERROR_REPLY, "error", False, sources=sources, title=best.passage.title,
                      passage=best.passage.text, error="LLMBadResponse", llm_text=raw)
    claimed = change_claim(text)
    contradiction = yes_no_reason(raw)
    if contradiction and not claimed:
        return _passage_answer(best, sources, contradiction, raw, asked_change)
    if claimed:
        return _passage_answer(best, sources, f"claimed a change ({claimed})", raw, claimed)
    leak = secret_reason(text, [h.passage.text for h in hits])
    if leak:
        return _passage_answer(best, sources, leak, raw, asked_change)
    unanswered = quantity_reason(question, text) or focus_reason(question, text)
    if unanswered:
        return _passage_answer(best, sources, unanswered, raw, asked_change)
    evidence = "\n".join([h.passage.text for h in hits] + [facts or "", question])
    ids = " ".join(re.findall(r"#?[A-Za-z]?\d{4,}", question))  # order/item ids may be echoed
    number_evidence = "\n".join([h.passage.text for h in hits] + [facts or "", ids])
    reason = unsupported_reason(text, evidence, number_evidence)
    if not reason:
        try:
            reason = semantic_reason(_sentences(text), retriever, hits, facts, question)
        except Exception as exc:  # the check must not break the turn: be conservative
            log.warning("semantic check failed: %s", exc)
            reason = "semantic check failed"
    if reason and best.score < UNRELATED_SCORE and overlap_share(text, evidence_of(hits)) < 0.2:
        # "tell me a joke about cats" found the pet bed at 0.25 and the model told a joke: no
        # passage is about the question, so the honest reply is the off-topic one
        return Answer(OFFTOPIC_REPLY, "offtopic", True, sources=sources, reason=reason,
                      llm_text=raw)
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
