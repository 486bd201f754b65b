"""Grounded answers for free-form shopper questions (library for the fallback action).

`grounded_answer(question, shopper_facts)` retrieves knowledge passages, asks the configured
OpenAI-compatible LLM (`actions.llm_client`) to answer only from them, checks the answer
(`actions.answer_checks`) and returns an `Answer`; `format_reply(answer)` words it for the
shopper. It never raises: faults come back as `kind="error"` so the caller can apologise and
offer a human agent (never silence).

Settings: LLM_OFFTOPIC_THRESHOLD (0.25) here; the client's and the checks' in their modules.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from actions.answer_checks import (
    DONT_KNOW,
    UNRELATED_SCORE,
    change_claim,
    focus_reason,
    mask_pii,
    overlap_share,
    quantity_reason,
    secret_reason,
    semantic_reason,
    sentences,
    unsupported_reason,
    yes_no_reason,
)
from actions.knowledge import Hit, Retriever, default_retriever
from actions.llm_client import LLMClient, LLMError

log = logging.getLogger(__name__)

OFFTOPIC_THRESHOLD = float(os.environ.get("LLM_OFFTOPIC_THRESHOLD", "0.25"))
TOP_K = 3  # passages retrieved; their best sentences go into the prompt (see _evidence)
PROMPT_SENTENCES = 6  # sentences of evidence in the prompt: ~150 tokens of prefill on 2 cores

Kind = Literal["answered", "passage", "offtopic", "error"]


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
    sents = sentences(text)
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
    passages = [h.passage.text for h in hits]
    leak = secret_reason(text, passages)
    if leak:
        return _passage_answer(best, sources, leak, raw, asked_change)
    unanswered = quantity_reason(question, text) or focus_reason(question, text)
    if unanswered:
        return _passage_answer(best, sources, unanswered, raw, asked_change)
    evidence = "\n".join(passages + [facts or "", question])
    ids = " ".join(re.findall(r"#?[A-Za-z]?\d{4,}", question))  # order/item ids may be echoed
    number_evidence = "\n".join(passages + [facts or "", ids])
    reason = unsupported_reason(text, evidence, number_evidence)
    if not reason:
        try:
            reason = semantic_reason(sentences(text), retriever, hits, facts, question)
        except Exception as exc:  # the check must not break the turn: be conservative
            log.warning("semantic check failed: %s", exc)
            reason = "semantic check failed"
    if reason and best.score < UNRELATED_SCORE and overlap_share(text, "\n".join(passages)) < 0.2:
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
