"""What the shopper types -> the exact values the shop API needs (no Rasa code here).

Pure functions over the shop's records (actions/shop_records.py): order items, product
variants, payment methods. Money is in dollars (floats). Fuzzy matching uses rapidfuzz;
addresses are parsed in actions/address_parsing.py (usaddress).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rapidfuzz import fuzz, process

from actions.address_parsing import AddressParse, parse_address  # noqa: F401 (re-export)
from actions.product_names import ALIASES, name_table, surface_forms
from actions.shop_records import Item, PaymentMethod, Product, Variant
from actions.text_parsing import is_payload

# ----------------------------------------------------------------------------- text helpers
_UNITS = {
    "inches": "inch", "in": "inch", "feet": "ft", "foot": "ft", "liters": "l", "liter": "l",
    "litre": "l", "litres": "l", "ltr": "l", "hours": "hour", "hrs": "hour", "hr": "hour",
    "pieces": "piece", "pcs": "piece", "pc": "piece", "cups": "cup", "lbs": "lb", "pounds": "lb",
    "pound": "lb", "degrees": "degree", "deg": "degree", "percent": "%", "gigs": "gb",
    "gig": "gb", "gigabytes": "gb", "gigabyte": "gb", "terabyte": "tb", "terabytes": "tb",
    "milliliters": "ml", "millilitres": "ml", "megapixels": "mp", "watts": "w", "watt": "w",
    "bars": "bar",
}
_UNIT_WORDS = set(_UNITS.values()) | {"ml", "gb", "tb", "mm", "k", "p", "mah", "x", "mp", "w"}
_WORD_SYNONYMS = {"gray": "grey", "colour": "color", "colors": "color", "colours": "color"}
# Words that name no item, option or payment method ("i want to return the ...").
_STOP_TEXT = (
    "a an the i id im ive my me we want wanna would like to return exchange swap change modify "
    "cancel replace please pls it its one ones that this these those them they of for and or "
    "just only also item items thing things product products order from in on with is are was "
    "were be do dont can could you yes yeah ok okay sure no not need get send back both all "
    "everything every each too as well plus then but so same other another which bought got "
    "received ordered purchased new pair some let lets go instead rather than prefer"
)
_STOP = set(_STOP_TEXT.split())
_NEGATIONS = {"not", "non", "no", "without", "isnt", "wasnt", "dont", "doesnt", "never"}
_ID_RE = re.compile(r"(?<!\d)\d{10}(?!\d)")


def _tokens(text: Optional[str]) -> List[str]:
    """Lower-case word/number tokens; units after a number canonical (``1000ml`` = ``1000 ml``)."""
    raw = re.findall(r"\d+(?:\.\d+)?|[a-z]+|%", re.sub(r"['’`]", "", (text or "").lower()))
    out: List[str] = []
    for tok in raw:
        if out and out[-1][0].isdigit() and tok in _UNITS:
            tok = _UNITS[tok]
        out.append(_WORD_SYNONYMS.get(tok, tok))
    return out


def _match(phrase: Sequence[str], toks: Sequence[str], fuzzy: bool = True
           ) -> Optional[Tuple[float, int, int]]:
    """Best (score, start, end) where ``phrase`` occurs in ``toks``; spaces/hyphens ignored,
    typos tolerated on words of 4+ letters (same first letter), numbers exact."""
    target = "".join(phrase)
    if not target:
        return None
    best: Optional[Tuple[float, int, int]] = None
    for width in sorted({max(1, len(phrase) - 1), len(phrase), len(phrase) + 1}):
        for i in range(len(toks) - width + 1):
            window = toks[i:i + width]
            cand = "".join(window)
            if cand == target:
                score = 1.0
            elif (fuzzy and len(target) >= 4 and len(cand) >= 3 and cand[0] == target[0]
                  and not any(c.isdigit() for c in cand + target)
                  and not any(t in _STOP for t in window)):
                score = fuzz.ratio(cand, target) / 100
                if score < 0.8:
                    continue
            else:
                continue
            if best is None or (score, i - width) > (best[0], best[1] - (best[2] - best[1])):
                best = (score, i, i + width)
    # "1000" for "1000ml": the number alone, when the rest of the value is units
    if best is None and phrase[0][0].isdigit() and all(t in _UNIT_WORDS for t in phrase[1:]):
        for i, tok in enumerate(toks):
            if tok == phrase[0] and not (i + 1 < len(toks) and toks[i + 1] in _UNIT_WORDS):
                return (0.85, i, i + 1)
    return best


def _negated(toks: Sequence[str], start: int) -> bool:
    return any(t in _NEGATIONS for t in toks[max(0, start - 2):start])


def _value_forms(value: str) -> List[List[str]]:
    """Token forms of an option value, with the everyday words for letter sizes."""
    sizes = {"xs": ["extra small", "x small"], "s": ["small"], "m": ["medium", "med"],
             "l": ["large"], "xl": ["extra large", "x large"],
             "xxl": ["2xl", "extra extra large", "xx large", "double xl"]}
    forms = [value.lower()] + sizes.get(value.lower(), [])
    return [_tokens(f) for f in forms]


def _option_hits(options: Mapping[str, Any], toks: Sequence[str]
                 ) -> Dict[str, Tuple[float, int, int]]:
    """Option keys whose value the text names -> (score, start, end) of the mention."""
    hits: Dict[str, Tuple[float, int, int]] = {}
    for key, value in options.items():
        val = str(value).lower()
        if val in ("yes", "no", "none"):  # named by the key: "waterproof", "no backlight"
            found = _match(_tokens(key), toks)
            if found and (_negated(toks, found[1]) == (val in ("no", "none"))):
                hits[key] = found
            continue
        for form in _value_forms(val):
            if len(form) == 1 and len(form[0]) == 1 and form[0] not in toks:
                continue  # single letters ("m", "l") only as whole tokens
            found = _match(form, toks)
            if found and found[0] > hits.get(key, (0.0, 0, 0))[0]:
                hits[key] = found
    return hits


# ----------------------------------------------------------------------------- reasons
RETURN_REASONS: Tuple[str, ...] = (
    "damaged", "wrong size", "not as described", "changed mind", "wrong item", "arrived late",
    "no longer needed",
)
CANCEL_REASONS: Tuple[str, ...] = ("no longer needed", "ordered by mistake")

_NOT_NEEDED = (r"\bno longer (need|needed|require|use|want)|\b(dont|do not|doesnt|wont|didnt|"
               r"will not|not) (really )?(need|needed|want)\b( it| this| that| them)? ?"
               r"(any ?more|now)?|\bnot needed\b|\bno need\b|\bno use for\b|\bunnecessary\b|"
               r"\bno longer necessary\b")
_RETURN_PATTERNS: List[Tuple[str, str]] = [
    ("wrong size", r"\btoo (small|big|large|tight|loose|short|long|narrow|wide)\b|\b(doesnt|does "
                   r"not|didnt|did not|wont|dont|not) fit|\bwrong size\b|\bruns (small|large|big)"
                   r"|\bsize (is|was) (off|wrong)|\bbigger size|\bsmaller size"),
    ("damaged", r"\b(damaged|broken|broke|defective|cracked|faulty|scratched|shattered|dented|"
                r"torn|ripped|smashed|malfunction\w*|leak\w*|dead on arrival)\b|\b(doesnt|does "
                r"not|isnt|not|stopped|wont) (work|working|turn on|charge)"),
    ("wrong item", r"\bwrong (item|thing|product|one|model|color|colour|order|package)|\bnot what"
                   r" i (ordered|bought)|\bsent me (the )?(a )?(wrong|different)|\bdifferent "
                   r"(item|product) than|\b(color|colour|model) (is|was) wrong"),
    ("not as described", r"\bnot as (described|advertised|pictured|shown)|\bdifferent (from|than|"
                         r"to) (the )?(picture|photo|description|image|website|listing|ad)|\b(does"
                         r"nt|does not|didnt) (look|match)|\bnot like (the )?(picture|photo|"
                         r"description)|\bmisleading\b|\bpoor quality\b|\blow quality\b|\bcheap"
                         r"ly made\b|\bnot what (was|it was) (described|advertised)"),
    ("arrived late", r"\b(arrived|came|delivered|got here|showed up) (too )?late|\btoo late\b|"
                     r"\btook (too|so) long|\bdelayed\b|\blate (delivery|arrival)|\bafter i "
                     r"needed"),
    ("no longer needed", _NOT_NEEDED),
    ("changed mind", r"\bchanged? (my|our) mind|\bdont (like|love|want)|\bdo not (like|want)|\b"
                     r"not happy|\bregret|\bsecond thoughts|\bnot for me\b|\bdislike|\bhate it"),
]
_CANCEL_PATTERNS: List[Tuple[str, str]] = [
    ("ordered by mistake", r"\bmistake|\bmistakenly|\baccident|\bby error\b|\bin error\b|\b"
                           r"(didnt|did not) mean to|\bmeant to (order|buy|get)|\bordered (it |"
                           r"this )?twice|\bduplicate|\bdouble ordered|\bordered the wrong|\b"
                           r"wrong (item|size|color|colour|one|thing|product)|\bmisclick|\boops"),
    ("no longer needed", _NOT_NEEDED + r"|\bdont want (it|this|them) any ?more"),
]
_VOCAB = sorted({w for _, p in _RETURN_PATTERNS + _CANCEL_PATTERNS for w in re.findall(
    r"[a-z]{5,}", p)} | {"described", "mistake", "defective", "original", "method", "payment"})


def _spellfix(text: str) -> str:
    words = []
    for word in re.sub(r"['’`]", "", (text or "").lower()).replace("-", " ").split():
        word = re.sub(r"[^a-z0-9]", "", word)
        if len(word) >= 5 and word not in _VOCAB:
            hit = process.extractOne(word, _VOCAB, scorer=fuzz.ratio, score_cutoff=80)
            if hit and hit[0][0] == word[0]:
                word = hit[0]
        words.append(word)
    return " ".join(words)


def _reason(text: Optional[str], canon: Sequence[str], patterns: List[Tuple[str, str]]
            ) -> Optional[str]:
    clean = re.sub(r"\b(not|isnt|wasnt|arent|never) (\w+ )?(broken|damaged|defective|late)\b", "",
                   _spellfix(text or ""))
    for reason in canon:
        if clean == reason:
            return reason
    for reason, pattern in patterns:
        if re.search(pattern, clean):
            return reason
    return None


def canonical_return_reason(text: Optional[str]) -> Optional[str]:
    """One of RETURN_REASONS for what the shopper said, or None when it fits none."""
    return _reason(text, RETURN_REASONS, _RETURN_PATTERNS)


def canonical_cancel_reason(text: Optional[str]) -> Optional[str]:
    """One of CANCEL_REASONS, or None for any other reason (the shop refuses those)."""
    return _reason(text, CANCEL_REASONS, _CANCEL_PATTERNS)


_NOT_A_REASON = {"yes", "yeah", "yep", "no", "nope", "ok", "okay", "idk", "none", "nothing",
                 "dunno", "sure", "why", "because"}


def free_reason(text: Optional[str]) -> Optional[str]:
    """The shopper's own words as a return reason ("they don't fit in my office"), when they
    say something; RETAIL_RULES only asks that the shopper says why."""
    clean = " ".join((text or "").split()).strip(" .!,")
    words = re.findall(r"[a-zA-Z']+", clean)
    if not words or is_payload(clean) or all(w.lower() in _NOT_A_REASON for w in words):
        return None
    if len(words) == 1 and len(words[0]) < 4:
        return None
    return clean[:200]


_REASON_CLAUSE_RE = re.compile(
    r"\b(?:because|since|cause|cuz|coz|bc|as)\s+(?P<a>[^.;!?]+)|[,.;!]\s*(?P<b>(?:it|they|its|"
    r"theyre|the (?:\w+ ){0,2}(?:is|are|was|were|has|have|came|arrived))\b[^.;!?]*)")
_NOT_REASON_RE = re.compile(r"\b(refund|gift ?card|paypal|credit card|card|pay|charge|"
                            r"difference|original|method|account)\b")


def reason_clause(text: Optional[str]) -> Optional[str]:
    """The part of a request that says why ("…, it's missing about 20 pieces", "because …"),
    not the part that says where the money goes."""
    for match in _REASON_CLAUSE_RE.finditer((text or "").lower().replace("’", "'")):
        clause = (match.group("a") or match.group("b") or "").strip()
        if clause and not _NOT_REASON_RE.search(clause):
            return clause
    return None


# a method named, not just "a card": PayPal, a gift card, a brand, the last four digits
_NAMED_METHOD_RE = re.compile(
    r"pay ?pal|gift ?card|store credit|credit card|debit card|visa|master ?card|amex|american "
    r"express|discover|\b\d{4}\b|original|same (?:card|method|way)|way i paid", re.IGNORECASE)


def names_a_method(text: str) -> bool:
    """Whether the text names a payment method, not just "a card" (then it is asked)."""
    return bool(_NAMED_METHOD_RE.search(text))


_REPLACED_RE = re.compile(r"\b(?:instead of|rather than|than|not|from|and not)\s+(?:my |the |"
                          r"a |your )?(?:\w+ ){0,2}?(?:card|paypal|pay pal|visa|mastercard|amex|"
                          r"gift ?card|credit card|debit card)\b")


def without_replaced(text: str) -> str:
    """The text without the method being replaced ("my visa *instead of paypal*")."""
    return _REPLACED_RE.sub(" ", text.lower())


_CHANGE_VERB_RE = re.compile(r"\b(exchange|exhange|swap|switch|change|replace|trade|modify|"
                             r"upgrade|downgrade|turn)\w*")
_INTO_RE = re.compile(r"\b(?:for|to|into|with|instead of it)\b(?!\s*(?:order\s*)?#?\s*w?\s*\d{7})")


def wanted_part(text: Optional[str]) -> str:
    """What comes after "exchange X *for* ..." / "change X *to* ...": the wished options."""
    low = (text or "").lower()
    verb = _CHANGE_VERB_RE.search(low)
    if not verb:
        return ""
    into = _INTO_RE.search(low, verb.end())
    return low[into.end():].strip() if into else ""


# ----------------------------------------------------------------------------- items
@dataclass
class ItemChoice:
    """``item_ids``: chosen (one entry per unit, so an id may repeat); ``ambiguous``: distinct
    candidate items to ask about; ``unmatched``: words naming nothing in the order."""

    item_ids: List[str] = field(default_factory=list)
    ambiguous: List[Item] = field(default_factory=list)
    unmatched: List[str] = field(default_factory=list)


_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3,
             "4th": 3, "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "last": -1}
_ALL_WORDS = {"all", "both", "everything", "every", "each", "two", "three", "four", "entire",
              "whole"}


def _ordinal(seg: str, toks: Sequence[str]) -> Optional[int]:
    m = re.search(r"\b(\d)(st|nd|rd|th)\b|\b(?:item|number|no|#) ?(\d)\b", seg)
    if m:
        return int(m.group(1) or m.group(3)) - 1
    return next((_ORDINALS[t] for t in toks if t in _ORDINALS), None)


def _name_forms(names: Iterable[str]) -> Dict[Tuple[str, str], List[str]]:
    """(surface form, catalog name) -> tokens: catalog forms and aliases, plus the head noun
    ("kettle" for Tea Kettle) when no other of these products shares it."""
    names = {n for n in names if n}
    table = dict(name_table(names))
    heads: Dict[str, List[str]] = {}
    for name in names:
        if " " in name:
            heads.setdefault(name.lower().rsplit(" ", 1)[1], []).append(name)
    for head, owners in heads.items():
        if len(owners) == 1 and head not in _STOP:
            for form in surface_forms(head):
                table.setdefault(form, owners[0])
    return {(form, name): _tokens(form) for form, name in table.items()}


_CATALOG_FORMS = _name_forms(ALIASES)


# "everything except the boots", "all but the mug", "keep the lamp, return the rest": what
# follows the marker is excluded from what precedes it (or from all items)
_EXCEPT_RE = re.compile(
    r"\b(?:except(?: for)?|excepting|excluding|other than|apart from|aside from|minus|"
    r"save for|but not(?= (?:the|my|a|an|one|those|these|this|that|any|either)\b)|"
    r"not including|with the exception of|(?<=all )but|(?<=everything )but|"
    r"but keep(?:ing)?|and keep(?:ing)?|while keeping|keeping|"
    r"(?<=all of them )but|(?<=all of it )but)\b")
_KEEP_RE = re.compile(r"\b(?:i(?:ll| will| want to| wanna| would like to|d like to)? )?keep(?:ing)?"
                      r"\b(?P<kept>[^.;]*?)(?:,|\band\b|\bbut\b)(?P<rest>.*\b(?:rest|others?|"
                      r"remaining)\b.*)")
_EVERYTHING_RE = re.compile(r"\b(?:all|everything|every ?thing|the rest|whole|entire|each)\b")


def _split_exception(text: str) -> Optional[Tuple[str, str]]:
    """(what is asked for, what is excepted) when the text excepts something, else None."""
    lowered = re.sub(r"['’`]", "", text.lower())
    keep = _KEEP_RE.search(lowered)
    if keep:
        return "all", keep.group("kept")
    match = _EXCEPT_RE.search(lowered)
    if not match:
        return None
    return lowered[:match.start()], lowered[match.end():]


def resolve_items(text: Optional[str], items: Sequence[Item]) -> ItemChoice:
    """Which of an order's ``items`` the shopper means (names, options, ordinals, ids, "all",
    "all but the X")."""
    split = _split_exception(text or "")
    if split is None:
        return _resolve_named_items(text, items)
    wanted_text, excepted_text = split
    excepted = _resolve_named_items(excepted_text, items)
    if excepted.ambiguous or not excepted.item_ids:
        # unsure what is excepted: never guess, ask which items (all of them are candidates)
        return ItemChoice(ambiguous=list({i.item_id: i for i in items}.values()),
                          unmatched=excepted.unmatched)
    asked = _resolve_named_items(wanted_text, items)
    if _EVERYTHING_RE.search(wanted_text) or not (asked.item_ids or asked.ambiguous):
        pool = [i.item_id for i in items]
    else:
        pool = list(asked.item_ids) + [i.item_id for i in asked.ambiguous]
    gone = set(excepted.item_ids)
    return ItemChoice(item_ids=[i for i in pool if i not in gone])


def names_any_product(text: Optional[str]) -> bool:
    """Whether the text names any catalog product (cheap: decides whether orders are read)."""
    toks = _tokens(text)
    return any(m and m[0] >= 0.82 for ft in _CATALOG_FORMS.values() if (m := _match(ft, toks)))


def names_products(text: Optional[str], items: Sequence[Item]) -> bool:
    """Whether the text names one of these items' products ("the order with the boots")."""
    toks = _tokens(text)
    return any(m and m[0] >= 0.82 for ft in _name_forms({i.name for i in items}).values()
               if (m := _match(ft, toks)))


def _resolve_named_items(text: Optional[str], items: Sequence[Item]) -> ItemChoice:
    """Which items the text names (no exception clause)."""
    result = ItemChoice()
    order_names = {i.name for i in items}
    forms = _name_forms(order_names)
    foreign = {f: t for f, t in _CATALOG_FORMS.items() if f[1] not in order_names}
    chosen: List[int] = []
    lowered = re.sub(r"['’`]", "", (text or "").lower())
    if re.search(r"\b(dont|do not|no longer|never|neither|nor)\b|,[^,]+\bor\b", lowered):
        # "i dont need the lamp, the mug or the rug": a list, not a choice
        lowered = re.sub(r"\b(or|nor)\b", " and ", lowered)
    segments: List[str] = []
    for part in re.split(r"&|\band\b|\bplus\b|\balso\b|\bas well as\b", lowered):
        for piece in re.split(r"[,;]", part):
            toks = _tokens(piece)
            if segments and segments[-1] and not (
                    _ID_RE.search(piece) or any(_match(ft, toks) for ft in forms.values())):
                segments[-1] += " " + piece  # "the shirt, blue, size M": one item
            else:
                segments.append(piece)
        segments.append("")
    segments = [seg for seg in segments if seg.strip()]

    def take(indices: Iterable[int], every: bool) -> None:
        for idx in indices:
            copies = [j for j, it in enumerate(items) if it.item_id == items[idx].item_id]
            free = [j for j in copies if j not in chosen]
            if not every and len(free) < len(copies):
                continue  # named again ("the shirt, the black one"): still one copy
            chosen.extend(free if every else free[:1])

    for seg in segments:
        toks = _tokens(seg)
        every = bool(_ALL_WORDS & set(toks)) and not ("both" in toks and len(segments) > 1)
        ids = [i for i, it in enumerate(items) if it.item_id in _ID_RE.findall(seg)]
        if ids:
            take({items[i].item_id: i for i in reversed(ids)}.values(), every)
            continue
        found: Dict[str, Tuple[float, int, bool]] = {}  # name -> score, span, singular form?
        for (form, name), ft in forms.items():
            m = _match(ft, toks)
            singular = not form.endswith("s") or name.lower().endswith("s")
            if m and m[0] >= 0.82 and (m[0], m[2] - m[1], singular) > found.get(name, (0, 0, 0)):
                found[name] = (m[0], m[2] - m[1], singular)
        named = set(found)
        # "the jackets" means every copy ("Hiking Boots" is plural by name, not by intent)
        every = every or not all(singular for _, _, singular in found.values())
        every = every and not re.search(r"\b(one of|just one|only one|single)\b", seg)
        pool = [i for i, it in enumerate(items) if not named or it.name in named]
        if not named and any(_match(ft, toks, fuzzy=False) for ft in foreign.values()):
            pool = []  # "the laptop" when the order has none: not the laptop backpack
        hits = {i: len(_option_hits(items[i].options, toks)) for i in pool}
        if max(hits.values(), default=0) > 0:
            pool = [i for i in pool if hits[i] == max(hits.values())]
        signal = bool(named) or max(hits.values(), default=0) > 0
        ordinal = _ordinal(seg, toks)
        distinct = list({items[i].item_id: i for i in reversed(pool)}.values())[::-1]
        if ordinal is not None and (signal or not any(
                t not in _STOP and t not in _ORDINALS and not t.isdigit()
                and t not in ("st", "nd", "rd", "th", "number") for t in toks)):
            if -len(pool) <= ordinal < len(pool):
                take([pool[ordinal]], False)
            else:
                result.unmatched.append(seg.strip())
        elif not signal and "both" in toks and len(items) != 2:
            result.ambiguous.extend(it for it in items if it not in result.ambiguous)
        elif pool and (signal or (every and len(segments) == 1)):
            if every or len(distinct) == 1:
                take(pool if every else distinct[:1], every)
            else:
                result.ambiguous.extend(items[i] for i in distinct
                                        if items[i] not in result.ambiguous)
        else:
            result.unmatched.extend(t for t in toks if t not in _STOP and t not in _ORDINALS)
    result.item_ids = [items[i].item_id for i in sorted(chosen)]
    return result


# ----------------------------------------------------------------------------- variants
@dataclass
class VariantChoice:
    """``variant``: the one available variant meant; ``candidates``: available variants to
    choose from (ask); ``unavailable``: variants that fit but are sold out; ``mentioned``:
    option values recognised in the text. All empty/None: nothing matched."""

    variant: Optional[Variant] = None
    candidates: List[Variant] = field(default_factory=list)
    unavailable: List[Variant] = field(default_factory=list)
    mentioned: Dict[str, str] = field(default_factory=dict)


# ---- relative choices: "the biggest one", "a size up", "the cheapest available",
# "same price or lower", "the closest in price but not more expensive"
_SIZE_ORDER = {"xs": 0, "portable": 0, "s": 1, "small": 1, "m": 2, "medium": 2, "l": 3,
               "large": 3, "xl": 4, "xxl": 5, "basic": 0, "professional": 1}
# keys a bare "biggest"/"longest" means, in order of preference
_SIZE_KEYS = ("size", "capacity", "piece count", "pieces", "storage", "screen size",
              "frame size", "room size", "length", "height", "diameter", "weight range",
              "thickness", "kit size")
_UP = r"(?:biggest|largest|longest|highest|tallest|most|maximum|max|greatest|strongest)"
_DOWN = r"(?:smallest|shortest|lowest|least|minimum|min|tiniest|lightest|thinnest)"
_MORE = r"(?:bigger|larger|longer|higher|taller|more|greater|a size up|one size up|size up)"
_LESS = r"(?:smaller|shorter|lower|less|a size down|one size down|size down)"
_CHEAPEST = re.compile(r"\b(cheapest|least expensive|lowest price(?:d)?|most affordable|"
                       r"lowest cost|least costly)\b")
_PRICIEST = re.compile(r"\b(most expensive|priciest|highest price(?:d)?|top of the line)\b")
_NOT_MORE = re.compile(
    r"\b(same price or (?:less|lower|cheaper)|not (?:any )?more expensive|no more expensive|"
    r"nothing more expensive|nothing pricier|no pricier|not pricier|nothing that costs more|"
    r"(?:more expensive|pricier) than (?:what i paid|mine|my current|the one i have) is not|"
    r"(?:doesnt|does not|wont|will not|dont|not) cost (?:any )?more|without paying (?:any )?more|"
    r"no extra (?:cost|charge)|(?:cheaper|less expensive|lower price(?:d)?)|not pay (?:any )?more|"
    r"(?:at|for) most the same price|under the same price|up to the same price|"
    r"not over the (?:same|current) price|same price or below)\b")
_CLOSEST = re.compile(r"\b(closest|nearest|similar|about the same|close) (?:in )?(?:to (?:the )?)?"
                      r"(?:price|cost)|\bsame price\b")


@dataclass(frozen=True)
class RelativeWish:
    """What a relative choice asks: ``key``/``direction`` for an option (+1 up, -1 down;
    ``step`` for "bigger" = the next one, not the biggest), ``price`` for money
    ("min", "max", "not_more", "closest", or "closest_not_more")."""

    key: Optional[str] = None
    direction: int = 0
    step: bool = False
    price: Optional[str] = None
    other: Optional[str] = None  # "another colour": that option must differ from now


def _rank(value: str) -> Optional[float]:
    """An orderable number for an option value: 1000ml, 1TB SSD, 30-50 lbs, L, medium."""
    low = value.lower().strip()
    if low in _SIZE_ORDER:
        return float(_SIZE_ORDER[low])
    m = re.match(r"(\d+(?:\.\d+)?)\s*(tb)?", low)
    if m:
        return float(m.group(1)) * (1000 if m.group(2) else 1)
    return None


def relative_wish(text: Optional[str], keys: Sequence[str]) -> RelativeWish:
    """The relative choice the text makes among a product's option ``keys`` (or none)."""
    low = re.sub(r"['’`]", "", (text or "").lower())
    price: Optional[str] = None
    if _CHEAPEST.search(low):
        price = "min"
    elif _PRICIEST.search(low):
        price = "max"
    elif _CLOSEST.search(low) and _NOT_MORE.search(_CLOSEST.sub("", low)):
        price = "closest_not_more"
    elif _CLOSEST.search(low):
        price = "closest"
    elif _NOT_MORE.search(low):
        price = "not_more"
    other_m = re.search(r"\b(?:another|different|other|new)\s+(\w+)", low)
    other = next((k for k in keys if other_m and k.lower().split()[-1] in (
        other_m.group(1), other_m.group(1).replace("colour", "color"))), None)
    for pattern, direction, step in ((_UP, 1, False), (_DOWN, -1, False), (_MORE, 1, True),
                                     (_LESS, -1, True)):
        m = re.search(rf"\b{pattern}\b(?P<after>(?: \w+){{0,3}})", low)
        if not m or (m.group(0).split()[-1] in ("more", "less", "higher", "lower")
                     and (m.group("after").split() or [""])[0] in (
                         "expensive", "costly", "price", "priced", "than")):
            continue  # "not more expensive" is about money, not size
        if pattern in (_UP, _DOWN) and re.search(r"\b(most|least) (expensive|costly|affordable)",
                                                 low):
            continue
        named = [k for k in keys if any(w in m.group("after").split() or w in low.split()
                                        for w in k.lower().split() if w not in ("type",))]
        named = [k for k in named if k.lower() not in ("color", "material")]
        key = next((k for k in _SIZE_KEYS if k in named), None) or (named[0] if named else None)
        if key is None and re.match(r"(big|larg|small|tin|a size|one size|size)", m.group(0)):
            key = next((k for k in _SIZE_KEYS if k in keys), None)  # "the biggest one"
        if key:
            return RelativeWish(key=key, direction=direction, step=step, price=price,
                                other=other)
    return RelativeWish(price=price, other=other)


def apply_relative(wish: RelativeWish, pool: List[Variant], current: Optional[Variant]
                   ) -> List[Variant]:
    """The variants of ``pool`` that the relative choice keeps (best first)."""
    if wish.key:
        ranked = [(r, v) for v in pool
                  if (r := _rank(str(v.options.get(wish.key, "")))) is not None]
        now = _rank(str(current.options.get(wish.key, ""))) if current else None
        if wish.step and now is not None:
            ranked = [(r, v) for r, v in ranked if (r - now) * wish.direction > 0]
        if not ranked:
            return []
        best = (min if (wish.direction > 0) == wish.step else max)(r for r, _ in ranked)
        pool = [v for r, v in ranked if r == best]
    if wish.price and current is not None:
        if wish.price in ("not_more", "closest_not_more"):
            pool = [v for v in pool if v.price <= current.price + 1e-9]
        if wish.price.startswith("closest") and pool:
            gap = min(abs(v.price - current.price) for v in pool)
            pool = [v for v in pool if abs(v.price - current.price) == gap]
    if wish.price in ("min", "max") and pool:
        edge = (min if wish.price == "min" else max)(v.price for v in pool)
        pool = [v for v in pool if v.price == edge]
    return pool


def resolve_variant(text: Optional[str], product: Product, current_item_id: str
                    ) -> VariantChoice:
    """Another variant of ``product`` as described; what is not mentioned stays as now."""
    variants = list(product.variants)
    current: Mapping[str, str] = next(
        (v.options for v in variants if v.item_id == current_item_id), {})
    others = [v for v in variants if v.item_id != current_item_id]
    by_id = [v for v in others if v.item_id in _ID_RE.findall(text or "")]
    if by_id:
        v = by_id[0]
        return VariantChoice(variant=v) if v.available else VariantChoice(unavailable=[v])
    toks = _tokens(text)
    # per option key, the values the text names (the longest mention wins within a key)
    spans: Dict[str, Tuple[int, int]] = {}
    wanted: Dict[str, set] = {}
    # stable orders (the catalog's), never a set's: the same words give the same variant in
    # every process, whatever its hash seed
    keys = list(dict.fromkeys(k for v in variants for k in v.options))
    all_hits = {key: {value: hit for value in dict.fromkeys(str(v.options.get(key))
                                                            for v in variants
                                                            if key in v.options)
                      if (hit := _option_hits({key: value}, toks).get(key))} for key in keys}
    # "black frames with the brown lenses": a mention next to the distinctive word of another
    # key's name ("frame", "lens", "strap") belongs to that key, not to this one
    generic = {"color", "colour", "type", "material", "size"}
    words_of_key = {k: {w for w in _tokens(k) if w not in generic} for k in keys}
    for key in keys:
        for value, hit in list(all_hits[key].items()):
            if not any(h[1:] == hit[1:] for k in keys if k != key for h in all_hits[k].values()):
                continue  # words of one key only ("animals", "A5"): nothing to decide
            near = toks[max(0, hit[1] - 1):hit[1]] + toks[hit[2]:hit[2] + 2]
            foreign = {w for k in keys if k != key for w in words_of_key[k]} - words_of_key[key]
            if any(t.startswith(w) or w.startswith(t.rstrip("es")) for t in near
                   for w in foreign if len(t) >= 3):
                del all_hits[key][value]
    for key in keys:
        best: Tuple[int, float] = (0, 0.0)
        hits = all_hits[key]
        mine = hits.get(str(current.get(key)))
        shared = mine is not None and any(
            other != key and any(h[1:] == mine[1:] for h in all_hits[other].values())
            for other in keys)
        elsewhere = mine is not None and any(
            v != current.get(key) and (h[2] <= mine[1] or h[1] >= mine[2])
            for v, h in hits.items())  # another value, named at another place
        if mine is not None and not shared and elsewhere:
            # "for black ones (mine are blue)", "the grey medium is too small": a value that
            # differs from the current one is the wish; the current one only describes
            hits = {v: h for v, h in hits.items() if v != current.get(key)}
        for value, hit in hits.items():
            if hit and (hit[2] - hit[1], hit[0]) > best:
                best, wanted[key], spans[key] = (hit[2] - hit[1], hit[0]), {value}, hit[1:]
            elif hit and (hit[2] - hit[1], hit[0]) == best:
                wanted[key].add(value)
    wish = relative_wish(text, sorted({k for v in variants for k in v.options}))
    if not wanted and not (wish.key or wish.price or wish.other):
        return VariantChoice()
    # one mention naming several keys ("black" for frame and lens colour) is one wish:
    # the key named next to it decides ("brown lenses"), else any of them will do
    groups: List[List[str]] = []
    for key in sorted(spans, key=lambda k: (spans[k], keys.index(k))):
        if groups and spans[key][0] < spans[groups[-1][0]][1]:
            groups[-1].append(key)
        else:
            groups.append([key])
    for group in groups:
        start, end = spans[group[0]]
        near = toks[max(0, start - 2):end + 2]
        named = [k for k in group if any(_match([w], near) for w in _tokens(k)
                                         if w not in ("color", "type", "material", "size"))]
        if named and len(group) > 1:
            group[:] = named
    mentioned = {g[0]: sorted(wanted[g[0]])[0] for g in groups
                 if len(g) == 1 and len(wanted[g[0]]) == 1}
    fits = [v for v in others if all(any(str(v.options.get(k)) in wanted[k] for k in g)
                                     for g in groups)]
    wanted = {k: wanted[k] for g in groups for k in g}

    def kept(v: Variant) -> int:
        return sum(v.options.get(k) == val for k, val in current.items()
                   if k not in wanted)

    named_change = bool(wanted) or bool(wish.other)
    if wish.other and wish.other not in wanted:  # "another colour"
        wanted = {**wanted, wish.other: set()}
        fits = [v for v in fits if v.options.get(wish.other) != current.get(wish.other)]
    if wish.key or wish.price:  # "the biggest", "cheaper": among the available ones
        wanted = {**wanted, **({wish.key: set()} if wish.key else {})}
        current_variant = next((v for v in variants if v.item_id == current_item_id), None)
        pool = [v for v in fits if v.available]
        if wish.key:
            pool = apply_relative(RelativeWish(key=wish.key, direction=wish.direction,
                                               step=wish.step), pool, current_variant)
        if wish.price in ("not_more", "closest_not_more") and current_variant is not None:
            pool = [v for v in pool if v.price <= current_variant.price + 1e-9]
        if wish.price not in ("min", "max") and (named_change or wish.key) and pool:
            # "another colour, closest in price": what the shopper didn't ask to change
            # stays as it is where it can
            most = max(kept(v) for v in pool)
            pool = [v for v in pool if kept(v) == most]
        fits = apply_relative(RelativeWish(price=wish.price), pool, current_variant)
        if not fits:
            return VariantChoice(mentioned=mentioned)
    fits.sort(key=lambda v: (-kept(v), v.price))
    available = [v for v in fits if v.available]
    sold_out = [v for v in fits if not v.available]
    keep_all = len([k for k in current if k not in wanted])
    if wish.price in ("min", "max", "closest", "closest_not_more"):
        keep_all = min((kept(v) for v in available), default=0)  # the price decided
    exact = [v for v in available if kept(v) >= keep_all]
    choice = VariantChoice(unavailable=sold_out, mentioned=mentioned)
    # only a variant that keeps every option the shopper didn't ask to change is taken;
    # anything else is offered (a silent switch of material or colour is a wrong write)
    if len(exact) == 1:
        choice.variant = exact[0]
    else:
        choice.candidates = available
    return choice


# ----------------------------------------------------------------------------- payment
@dataclass
class PaymentChoice:
    """``method_id``/``method``: the one method meant; ``original``: "the original payment
    method" (the caller resolves it from the order); ``candidates``: several fit (ask);
    ``excluded``: the shopper named the method that is excluded (e.g. the current one)."""

    method_id: Optional[str] = None
    method: Optional[PaymentMethod] = None
    original: bool = False
    candidates: List[PaymentMethod] = field(default_factory=list)
    excluded: bool = False


def resolve_payment_method(text: Optional[str],
                           methods: Iterable[PaymentMethod],
                           exclude_id: Optional[str] = None) -> PaymentChoice:
    """Which of the customer's payment ``methods`` the shopper means."""
    pool = list(methods)
    raw = (text or "").strip()
    toks = _tokens(raw)
    by_id = [m for m in pool if m.id.lower() == raw.lower()]
    if not by_id and re.fullmatch(r"(credit_card|gift_card|paypal)_\d+", raw.lower()):
        return PaymentChoice()  # a button id of no method of this customer
    if not by_id and re.search(r"\b(original|same (card|method|payment|way)|paid with|i used)\b",
                               _spellfix(raw)):
        return PaymentChoice(original=True)
    fits = by_id or pool
    if not by_id:
        sources = (("gift_card", ["gift card", "giftcard", "gift", "store credit"]),
                   ("paypal", ["paypal", "pay pal"]))
        wants = [s for s, forms in sources
                 if any((m := _match(_tokens(f), toks)) and m[0] >= 0.8 for f in forms)]
        brands = {m.brand for m in pool if m.brand}
        named = {b for b in brands if (h := _match(_tokens(b), toks)) and h[0] >= 0.8}
        four = set(re.findall(r"(?<!\d)\d{4}(?!\d)", raw))
        if named or four or re.search(r"\b(credit|debit)\b", raw.lower()):
            wants.append("credit_card")
        if not wants and "card" in toks:
            cards = [m for m in pool if m.source == "credit_card"]
            wants.append("credit_card" if cards else "gift_card")
        if not wants:
            return PaymentChoice()
        fits = [m for m in pool if m.source in wants
                and (m.source != "credit_card" or not named or m.brand in named)
                and (m.source != "credit_card" or not four or m.last_four in four)]
    allowed = [m for m in fits if m.id != exclude_id]
    if len(allowed) == 1:
        return PaymentChoice(method_id=allowed[0].id, method=allowed[0])
    return PaymentChoice(candidates=allowed, excluded=bool(fits) and not allowed)
