"""Checks of an LLM answer against the evidence it was given, and the masking of what the LLM
must never see. Pure functions (MiniLM only for `semantic_reason`); each returns why an answer
is not to be shown, or None. Used by `actions.grounding`.
"""

from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np

from actions.knowledge import Hit, Retriever
from actions.text_parsing import EMAIL_LIKE_RE, STOP_WORDS

# ---------------------------------------------------------------- masking
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
    text = EMAIL_LIKE_RE.sub("[email]", text)

    def card(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group())
        separated = any(c in m.group() for c in " -")
        return "[card number]" if separated or _luhn(digits) else m.group()

    text = _CARD.sub(card, text)
    return _PHONE.sub("[phone]", text)


# ---------------------------------------------------------------- checks
_STOP = STOP_WORDS

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
    for sent in sentences(text):
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


def sentences(text: str) -> list[str]:
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


SUPPORT_SIM = float(os.environ.get("LLM_SUPPORT_SIM", "0.65"))
CATALOG_SUPPORT_SIM = float(os.environ.get("LLM_CATALOG_SUPPORT_SIM", "0.45"))
CATALOG_SOURCE = "catalog.md"
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none|nothing|nor)\b|n't\b", re.IGNORECASE)


ECHO_SIM = float(os.environ.get("LLM_ECHO_SIM", "0.9"))
POLARITY_WINDOW = 0.08


def semantic_reason(answer_sentences: list[str], retriever: Retriever, hits: list[Hit],
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
        fact_sents = list(dict.fromkeys(sentences(facts) + _clauses(facts)))
        ev_texts = ev_texts + fact_sents
        ev_sources = ev_sources + ["facts"] * len(fact_sents)
        fact_vecs = retriever.embed(fact_sents)
        ev_vecs = np.vstack([ev_vecs, fact_vecs]) if len(ev_vecs) else fact_vecs
    if not len(ev_vecs):
        return "no evidence sentences"
    vecs = retriever.embed(answer_sentences)
    q_vec = retriever.query_vector(question) if question else None
    for sent, v in zip(answer_sentences, vecs, strict=True):
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
    first = sentences(rest)[0] if sentences(rest) else rest
    negated = bool(_NEGATION.search(first))
    if m.group(1).lower() == "no" and not (_NEGATION.search(rest) or _RESTRICTION.search(rest)):
        return "a leading No before a positive statement"
    if m.group(1).lower() == "yes" and negated and not _RESTRICTION.search(first):
        # ("Yes, shirts can only become another shirt, not a different product" is fine)
        return "a leading Yes before a negated statement"
    return None


DONT_KNOW = re.compile(r"^\W*(?:i\s+(?:do\s+not|don't)\s+know|i'm not sure|i am not sure)\b",
                       re.IGNORECASE)
