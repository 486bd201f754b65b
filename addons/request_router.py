"""Deterministic intent re-routing after the classifier, where the words leave no doubt.

The intent classifier is statistical: a message that names a product up front ("the kettle and
the bookshelf from w1620235, can u cancle them?") can land on ``product_info``, a request
phrased like a question on ``faq``. This component runs right after the ``FallbackClassifier``
and changes the intent only when clear surface evidence contradicts it. It is pure regex and set
look-ups (no model, nothing trained or saved), about 0.05 ms a message.

Rules, in the order they are tried (the first that fires wins):

``account_address``
    a change verb + the account's address ("default address", "address on my account",
    "my account's address", "address on file", "profile address", "home address")
    -> ``change_address``.
``change_request``
    a change verb + a reference to an order -> the change intent of that verb:
    cancel -> ``cancel_order`` ("don't/no longer need ... anymore" too, with an explicit order);
    return / refund / send back -> ``return_order``; exchange / swap / trade / replace ->
    ``exchange_order``; change / modify / update / switch / edit + an address word ->
    ``change_address``, + a payment word -> ``change_payment``, + an item or option word
    (size, color, version, a product noun, a product entity, ...) -> ``modify_order``.
    Verbs are typo-tolerant (``cancle``, ``retrun``, ``exhange``, ``modfy``: one edit on words of
    five letters or more, see ``lexeme``). An order reference is an order id in any spelling, "my /
    the / this / that (last, latest, most recent, ...) order", or an object right after the verb
    ("cancel it", "return them", "swap this one", "exchange my boots", "the boots I ordered").
    Without a change verb, an explicit order plus where it should go, how to pay or which
    variant ("W1 should go to my office instead", "pay for W1 with paypal instead", "the mat in
    W1 in purple rather than black") is routed too.
``generic_change``
    a change verb + an explicit order ("help me change my order", "make some changes to
    W1234567") and nothing saying what to change -> ``change_order``.
``complaint`` (explicit)
    "file / make a complaint", "I want to complain" -> ``complaint``.
``unsupported_request``
    password, log in, invoices / receipts / VAT, create or delete an account, newsletters /
    marketing emails, changing the account's email or phone, loyalty points, price matching,
    gift wrapping, placing a new order -> ``unsupported_request``.
``complaint``
    "unacceptable", "ridiculous", "worst service", "I'm so angry", ... -> ``complaint``, unless
    the message also asks something concrete (an order id, a change, an order's whereabouts).

Each rule re-routes only from the predicted intents listed in its ``*_route_from`` config key,
and the order-change rules never re-route a question about the rules in general ("can I cancel
an order after it ships?", "what is your return policy", "how long does a refund take"), unless
the message names an order id. A change intent predicted for the same kind of request is left
alone: the classifier's intent counts as confirmed when its own verb is in the message, and
``exchange_order`` / ``modify_order`` are one family (the change form turns one into the other
by the order's status). Button payloads ("/intent{...}") are never touched.

What a re-routed message carries: ``intent`` = the new intent with confidence
``max(original, confidence)``; ``intent_ranking`` = the new intent, then the original one, then the
rest; ``routed = {"from": <original intent>, "rule": <rule name>}`` (in the parse data, for
debugging and reports).

A conversation designer adds words in config.yml (see ``RequestRouter.DEFAULTS`` and
docs/nlu.md): extra verbs per kind, item/address/payment words, complaint and unsupported
phrases, account-address phrases, policy-question phrases. Words and phrases are matched whole,
case-insensitively; verbs of five letters or more also match with one typo.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Pattern, Sequence, Tuple

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from addons._component import ConfiguredGraphComponent

logger = logging.getLogger(__name__)


def _words(text: str) -> FrozenSet[str]:
    """A vocabulary written as whitespace-separated words."""
    return frozenset(text.split())


ROUTED = "routed"  # the message property recording a re-route
MAX_CHARS = 2000  # only the start of a (pasted) long text is read: bounded time per message

# ----------------------------------------------------------------------------- intents
CANCEL, RETURN, EXCHANGE, MODIFY = "cancel_order", "return_order", "exchange_order", "modify_order"
ADDRESS, PAYMENT, CHANGE = "change_address", "change_payment", "change_order"
UNSUPPORTED, COMPLAINT = "unsupported_request", "complaint"
CHANGE_INTENTS = frozenset({CANCEL, RETURN, EXCHANGE, MODIFY, ADDRESS, PAYMENT, CHANGE})
TARGET_INTENTS = {"address": ADDRESS, "payment": PAYMENT, "item": MODIFY}
# Intents that are the same request seen from two sides: never re-routed into each other.
FAMILIES: Tuple[FrozenSet[str], ...] = (frozenset({EXCHANGE, MODIFY}),)

# Predicted intents each rule may replace (config keys of the same names override these).
CHANGE_ROUTE_FROM = (
    "product_info", "faq", "inform", "nlu_fallback", "out_of_scope", "order_status",
    "track_order", "list_orders", CHANGE,
)  # ... and any change intent whose own evidence is not in the message
STOP_ROUTE_FROM = ("out_of_scope", "nlu_fallback", "inform", "faq", "complaint")  # "no" stays deny
# the end of a message that drops the request
STOP_RE = re.compile(
    r"\b(?:forget (?:it|about it|that|the whole thing)(?!')|never ?mind|scratch that|"
    r"don'?t bother|dont do (?:it|anything)|don'?t do anything|leave it as it is|"
    r"i(?:'ll| will)? keep (?:it|them|everything|the (?:\w+ ){0,2}\w+) after all|"
    r"(?:wants?|want|decided|going) to keep (?:it|them|everything))\b")
GENERIC_CHANGE_ROUTE_FROM = ("inform", "faq", "nlu_fallback", MODIFY, "out_of_scope",
                             "product_info")
UNSUPPORTED_ROUTE_FROM = (
    "faq", "out_of_scope", "inform", "nlu_fallback", "product_info", "ask_capabilities",
)
COMPLAINT_ROUTE_FROM = ("faq", "out_of_scope", "inform", "nlu_fallback", "greet", "deny")
# Never turned into a complaint, even without an order id or a change verb.
COMPLAINT_KEEP = ("affirm", "stop", "request_human")

# ----------------------------------------------------------------------------- the verbs
# kind -> forms. A kind is what the verb asks for; "base" forms are verbs unless a determiner
# comes before them ("a return", "my exchange": nouns), "past" forms only after a request
# ("I want it cancelled", not "was it cancelled?"), "noun" forms only after a request frame
# ("I'd like a refund"), "plural" forms never ("how do returns work").
VERB_FORMS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "cancel": {
        "base": ("cancel", "cancels", "scrap", "kill"), "past": ("cancelled", "canceled"),
        "gerund": ("cancelling", "canceling"), "noun": ("cancellation", "cancelation"),
        "plural": ("cancellations", "cancelations"),
    },
    "return": {
        "base": ("return",), "past": ("returned",), "gerund": ("returning",),
        "plural": ("returns",),
    },
    "refund": {
        "base": ("refund",), "past": ("refunded",), "gerund": ("refunding",),
        "plural": ("refunds",),
    },
    "exchange": {
        "base": ("exchange", "swap", "trade"),
        "past": ("exchanged", "swapped", "traded"),
        "gerund": ("exchanging", "swapping"),
        "plural": ("exchanges", "swaps", "trades"),
    },
    "replace": {
        "base": ("replace",), "past": ("replaced",), "gerund": ("replacing",),
        "noun": ("replacement",), "plural": ("replacements",),
    },
    "change": {
        "base": ("change", "modify", "modifies", "update", "switch", "edit", "alter", "adjust",
                 "upgrade", "fix", "amend", "revise", "tweak"),
        "past": ("changed", "modified", "updated", "switched", "edited", "altered", "adjusted",
                 "upgraded", "fixed", "amended"),
        "gerund": ("changing", "modifying", "updating", "switching", "editing", "altering",
                   "adjusting", "upgrading", "fixing", "amending", "revising", "tweaking"),
        "noun": ("modification", "amendment", "adjustment", "revision"),
        "plural": ("changes", "updates", "switches", "edits", "modifications", "upgrades",
                   "amendments", "adjustments", "tweaks", "revisions"),
    },
}
# Known misspellings (the one-edit check finds most others: see ``lexeme``).
VERB_VARIANTS: Dict[str, str] = {
    "cancl": "cancel", "cancle": "cancel", "cancell": "cancel", "cansel": "cancel",
    "cancal": "cancel", "cncl": "cancel", "cnacel": "cancel", "cancled": "cancelled",
    "cancelled": "cancelled", "cancellled": "cancelled",
    "retrun": "return", "retun": "return", "retrn": "return", "reutrn": "return",
    "retunr": "return", "rturn": "return",
    "refun": "refund", "refnd": "refund",
    "exhange": "exchange", "exchnage": "exchange", "exchage": "exchange",
    "exchang": "exchange", "echange": "exchange", "exchane": "exchange", "xchange": "exchange",
    "swop": "swap",
    "replce": "replace", "repalce": "replace",
    "chnage": "change", "chage": "change", "cahnge": "change", "chang": "change",
    "chnge": "change", "chane": "change",
    "modfy": "modify", "modifiy": "modify", "modiffy": "modify", "mofidy": "modify",
    "udpate": "update", "updte": "update", "upate": "update",
    "swich": "switch", "swtich": "switch",
}
# Words of a verb kind that the one-edit check may find misspelt (short or ambiguous words such
# as "swap", "trade", "fix", "alter" must be spelt right: "trace", "after").
FUZZY_VERBS = (
    "cancel", "cancelled", "canceled", "cancellation", "return", "returned", "refund",
    "exchange", "exchanged", "replace", "modify", "modified", "change", "changed", "update",
    "switch",
)
# Real words one edit away from a verb or target word: never read as a typo.
NOT_TYPOS = _words("""
chance chances charge charged charges charging chancel cancer retune rerun refind refine swatch
stitch pavement adrenal tradee
""")

# The object right after a verb that points at something the shopper ordered.
PRONOUN_OBJECTS = frozenset({"it", "them", "that", "this", "these", "those", "both", "everything",
                             "em", "'em", "mine"})
DETERMINERS = frozenset({"a", "an", "the", "my", "your", "our", "this", "that", "his", "her",
                         "their", "its", "any", "no", "another", "one"})
POSSESSIVE_OBJECT_STARTS = frozenset({"my", "our", "the", "these", "those", "both", "this",
                                      "that", "all", "each", "every"})
# Nouns after "that" / "this" that are no order: "cancel that request".
NOT_ORDER_OBJECTS = _words("""
request requests conversation chat question questions process change changes idea plan message
step form search ticket call
""")
# Leading words of a confirmation ("yes, cancel it"): an answer, not a new request.
AFFIRMATIONS = frozenset({"yes", "yep", "yeah", "yup", "yea", "ya", "sure", "confirm",
                          "confirmed"})
# What asks for the noun ("I want a refund", "start a return").
REQUEST_FRAMES = _words("""
want wanna need like get start request process initiate open begin arrange issue make file
submit place do give please pls plz demand set organise organize requesting needs
""")
# Before a past participle: a request ("I want it cancelled") or a status ("was it cancelled")?
REQUEST_CUES = _words("""
want wanted need needed like get please pls plz can could would should must make wanna
""")
STATUS_CUES = _words("""
was were is are been has had already why did got if whether not isn't wasn't hasn't haven't it's
that's they're what's when weren't aren't
""")
SUBJECTS = _words("you u they it we i someone anyone he she")
STATUS_QUESTION_CUES = STATUS_CUES | {"have", "didn't", "didnt"}  # "did you cancel ...?"
NEGATORS = _words("""
don't dont not never didn't didnt won't wont doesn't doesnt instead rather without nor
""")
# Words right after a verb form that make it a noun in a compound ("return policy"); for the
# change verbs only CHANGE_COMPOUND_BLOCKERS ("update shipping" is a request).
CHANGE_COMPOUND_BLOCKERS = _words("""
status policy policies rule rules fee fees time times requested history log
""")
COMPOUND_BLOCKERS = _words("""
status policy policies window period label labels deadline rule rules fee fees cost costs
process time times timeline info information address shipping rate rates requested
""")

# ----------------------------------------------------------------------------- what to change
# Words saying the change is about the items (modify_order). Product nouns of the catalog
# (shop/data/db.json) are in PRODUCT_NOUNS; a `product` entity counts too.
ITEM_WORDS = _words("""
size sizes sized color colors colour colours colored version versions variant variants model
models storage capacity material style option options item items product products length ram
processor memory type kind black white red blue green grey gray silver gold pink purple yellow
navy brown beige orange xs xl xxl small medium large larger smaller bigger cheaper waterproof
wireless wired leather cotton polyester one ones
""")
PRODUCT_NOUNS = _words("""
camera cameras purifier backpack backpacks bicycle bike bikes speaker speakers bookshelf
bookcase coffee maker helmet lamp dumbbell dumbbells reader kettle toothbrush espresso machine
jacket mouse hose grill headphones headset boots boot shoes shoe sneakers trainers puzzle bulb
bulbs laptop luggage suitcase makeup keyboard notebook chair umbrella perfume bed charger
skateboard thermostat watch smartwatch smartphone phone sunglasses shirt tshirt tablet vacuum
clock bottle earbuds wristwatch mat kit set
""")
ITEM_RE = re.compile(r"\b\d+(?:\.\d+)?\s?(?:gb|tb|ml|l|liters?|litres?|inch|in|mah|mp|cups?|ft|"
                     r"mm|piece|pieces|oz)\b|\bsize\s?\w+\b|\bwhat(?:'s| is)? in\b|"
                     r"\bwhat (?:i|we) (?:ordered|bought|picked|chose)\b|\bcontents?\b")
# "the order with the grill" names the order, not the item to change.
ORDER_WITH_RE = re.compile(
    r"\b(?:order|purchase|package|one)\s+(?:with|containing|that (?:has|had|contains|included)|"
    r"which (?:has|had|contains)|including|for)\s+(?:the |my |a |an |those |these )?"
    r"(?:[\w'-]+(?:\s|$)){1,3}"
)
# Payment targets (change_payment); "card" but not "SD card".
PAYMENT_RE = re.compile(
    r"\b(?:payment|payments|paypal|pay pal|visa|master ?card|amex|american express|debit|"
    r"credit card|gift ?card|apple pay|google pay|billing method)\b|"
    r"\b(?:pay|paying|paid) (?:with|by|using|via|through|on|for (?:it|this|that|them) with)\b|"
    r"\b(?:how|the way) (?:i|we) pay\b|\bpay (?:differently|another way)\b|"
    r"(?<!sd )(?<!cf )(?<!memory )(?<!micro sd )\bcards?\b"
)
# A payment change without a change verb, when the message names an order ("pay for order W1
# with my credit card instead", "charge my last order to a different card").
_PAY = r"(?:card|cards|paypal|pay pal|visa|master ?card|amex|gift ?card|credit card|debit card)"
PAY_CUE_RE = re.compile(
    r"\b(?:pay|paying|paid|charge|charged|bill|use|put|move|take)\b[^.?!]{0,50}\binstead\b|"
    r"\binstead of (?:the |my |a )?" + _PAY + r"\b|"
    r"\bpay(?:ing)?\s+(?:for\s+)?(?:it|this|that|order\s*#?\s*w?\s?\d{7}|#?w\s?\d{7}|"
    r"(?:my|the|this|that) (?:[\w-]+ ){0,2}?order)\s+(?:with|by|using|via|on|through)\b|"
    r"\b(?:put|charge|charged|bill|billed|move|moved)\s+(?:[\w'#-]+\s+){0,6}?(?:on|to|onto)\s+(?:my|the|a|another|"
    r"a different|her|his)\b(?:\s+[\w-]+){0,3}?\s+" + _PAY + r"\b|"
    r"\b(?:come|be paid|be charged) (?:from|to|with|by) (?:my|the|a|another)\b|"
    r"\buse (?:my |the |a |another |a different )?(?:[\w-]+ ){0,2}?" + _PAY +
    r" (?:for|on) (?:my|the|this|that|order|#?w\s?\d{7})\b|"
    r"\b(?:different|another|other|new) (?:payment|card|method of payment)\b|"
    r"\bwhich (?:card|payment method) (?:pays|is charged)\b"
)
# "could I pay for that with my other card instead?": the order in focus, a pronoun is enough.
PAY_FOR_IT_RE = re.compile(
    r"\bpay(?:ing)? for (?:it|that|this|them)\b[^.?!]{0,40}\binstead\b"
)
# Address targets (change_address). "email address", "return address" are not.
ADDRESS_RE = re.compile(
    r"(?<!e-mail )(?<!email )(?<!e mail )(?<!return )(?<!ip )\bad{1,2}re?s{1,2}(?:es)?\b|"
    r"\b(?:ship|ships|shipped|shipping|send|sent|deliver|delivers|delivered|delivering|delivery)"
    r"\s+(?:it\s+|them\s+|this\s+|that\s+)?to\b|"
    r"\b(?:shipping|delivery) (?:details|info|information|destination|location|place|spot)\b|"
    r"\b(?:change|update|modify|switch|edit|fix)\w*\s+(?:the\s+|my\s+)?shipping\b|"
    r"\bwhere\b[^.?!]{0,40}?\b(?:ship|ships|shipped|shipping|deliver|delivered|delivering|sent|"
    r"send|going|goes|go)\b|"
    r"\bzip ?code\b|\bpostcode\b|\bpostal code\b|\bstreet\b|\bapartment\b"
)
# An address change without a change verb, when the message names an order ("send my order to
# my office instead", "the order with the grill should go to my cabin", "wrong address on W1").
_A = r"ad{1,2}re?s{1,2}"
ADDRESS_CUE_RE = re.compile(
    r"\b(?:ship|send|sent|deliver|redirect|reroute|re-route|go|goes|going)\w*\s+"
    r"(?:[\w'#-]+\s+){0,7}?to\s+(?:a |an |my |the |our |her |his |their )?"
    r"(?:different|another|other|new|office|work|cabin|summer|vacation|holiday|home|house|place|"
    r"(?:parent|mom|mum|dad|friend|neighbou?r|daughter|son|sister|brother|girlfriend|boyfriend|"
    r"wife|husband|grandma|grandmother|aunt|uncle|cousin)s?'?s?)\b|"
    r"\b(?:redirect|reroute|re-route)\w*\b|"
    r"\b(?:wrong|incorrect|old|outdated|new)\s+(?:shipping\s+|delivery\s+)?" + _A + r"\b|"
    r"\b" + _A + r"\b[^.?!]{0,30}\b(?:is|was|looks|seems) (?:wrong|incorrect|outdated|old)\b|"
    r"\b(?:zip|zip code|postcode|postal code|street|street name|house number)\b[^.?!]{0,30}\b"
    r"(?:is|was) (?:wrong|incorrect|misspel\w*|missing)\b"
)
# Item changes without a change verb, when the message names an order ("make the sneakers in
# my order a size 10", "I want the yoga mat in my order in a different color").
MODIFY_CUE_RE = re.compile(
    r"\bmake (?:it|them|the|both|my|all|this|that)\b|\binstead\b|\brather than\b|"
    r"\b(?:different|another|other|bigger|smaller|larger|next) (?:size|color|colour|version|"
    r"variant|option|model|one|material|style)\b"
)
# "send it to my new address", "ship them to my office instead": a pronoun is enough.
SHIP_IT_ELSEWHERE_RE = re.compile(
    r"\b(?:ship|send|deliver)\w* (?:it|them)\b[^.?!]{0,40}\b(?:instead|different|another|other|"
    r"new)\b"
)
# Contact details of the account: changing them is unsupported, not an address change.
CONTACT_RE = re.compile(
    r"\b(?:e-?mail|e mail|phone|mobile|telephone|cell)(?:\s+(?:address|number|no))?\b"
)

# ----------------------------------------------------------------------------- order references
ORDER_ID_RE = re.compile(
    r"(?<![\w.\-])#?\s?w\s?-?\s?\d{7}(?![\w.\-])|"  # W1234567, w 1234567, #W1234567
    r"\border\s*(?:number|no\.?|num|nr|id|#)?\s*[:#]?\s*(\d{7})(?![\w.\-])|"  # order 1234567
    r"(?<![\w.\-])#\d{7}(?![\w.\-])",  # #1234567
    re.IGNORECASE,
)
ORDER_NOUN = r"(?:orders?|ordr|oder|purchases?|package|packages|parcel|shipment|delivery)"
ORDER_WORDS = frozenset({"order", "orders", "ordr", "oder", "purchase", "purchases", "package",
                         "parcel", "shipment"})
ORDER_PHRASE_RE = re.compile(
    r"\b(?:my|our|the|this|that|these|those)\s+(?:[\w'-]+\s+){0,3}?" + ORDER_NOUN + r"\b|"
    r"\ban?\s+(?:[\w-]+\s+)?order\s+(?:i|we)\s+(?:just\s+)?(?:placed|made|put in|submitted)\b|"
    r"\b(?:both|all|two|three)\s+(?:of\s+)?(?:my|our|the)\s+orders\b|"
    r"\border\s*#"
)
# "the boots I ordered": the shopper's own purchase.
OWN_PURCHASE_RE = re.compile(
    r"\b(?:i|we)\s+(?:just\s+|recently\s+|already\s+)?(?:ordered|bought|purchased|received|got|"
    r"placed|made)\b|"
    r"\bi've (?:ordered|bought|purchased|received|got)\b"
)
POSSESSIVE_RE = re.compile(r"\b(?:my|our)\b|" + OWN_PURCHASE_RE.pattern)

# ----------------------------------------------------------------------------- other phrases
# "don't need ... anymore": a cancel request when the message names an order explicitly.
NO_LONGER_NEED_RE = re.compile(
    r"\b(?:don'?t|do not|dont|won'?t|wont|will not|no longer|not)\s+(?:really\s+|even\s+)?"
    r"(?:need|want)\b"
    r"(?:(?!\bbut\b)[^.?!]){0,80}?\b(?:any ?more|any longer|after all)\b|"
    r"\bno longer (?:need|want)\b"
)
# "call it off", "call off my order".
CALL_OFF_RE = re.compile(
    r"\bcall(?:ing)?\s+(?:(it|them|this|that|the (?:\w+ )?order|my (?:\w+ )?order)\s+off|off\s+"
    r"(?:the|my)\s+(?:\w+\s+)?order)\b"
)
# Returns phrased without the verb "return".
SEND_BACK_RE = re.compile(
    r"\b(?:send|sned|snd|sent|sending|ship|mail|mailing|post|take|taking|bring)\s+"
    r"(?:((?:it|them|this|that|these|those|everything|all|both|em|'em)|"
    r"(?:the|my|our|this|that|these|those|both)\s+[\w'-]+(?:\s+[\w'-]+){0,2}?|"
    r"#?w\s?\d{7})\s+)?back\b|"
    r"\bmoney back\b|"
    r"\b(?:go|goes|going)\s+back\b(?!\s+to\b)"
)
# "refund it to my gift card": where a refund goes (an answer in the return form), not a request.
REFUND_DESTINATION_RE = re.compile(
    r"\brefund(?:ed)?\s+(?:it\s+|them\s+|me\s+|the money\s+)?(?:back\s+)?(?:to|into|on|onto)\b|"
    r"\brefund(?:ed)?\s+(?:me\s+|us\s+)?(?:the|any) (?:price )?difference\b"  # price adjustment
)
# "make changes to my order": the plural noun as a verb.
_CHANGE_NOUNS = r"(?:changes?|modifications?|edits?|adjustments?|amendments?|tweaks?|revisions?)"
MAKE_CHANGES_RE = re.compile(
    r"\b(?:make|making|do|need|needs|want|got|have)\s+(?:some\s+|a few\s+|a couple of\s+|"
    r"few\s+|a\s+|an\s+|any\s+)?(?:small\s+|quick\s+|minor\s+|little\s+)?" + _CHANGE_NOUNS +
    r"(?:\s+(?:to|on|in|for)\b|\s*$|\s*[,.!?])|"
    r"(?:^|[,.!?]\s*)(?:some\s+|a few\s+)?" + _CHANGE_NOUNS + r"\s+(?:to|on|in|for)\s+"
    r"(?:my|the|this|that|our|order|#?w\s?\d{7})|"
    r"\border\s+" + _CHANGE_NOUNS + r"\b"
)
# "changed my mind", "change of plans": a reason, no change request.
NOT_A_CHANGE_RE = re.compile(
    r"\bchang(?:e|ed|ing)\s+(?:my|our|your|his|her)\s+minds?\b|\bchange of (?:mind|plans?)\b|"
    r"\bchange(?:d)? (?:my|our) plans\b"
)

# Account address (rule account_address): these mean the account's default address.
# ({a}: "address" and its typos, {c}: "account" and its typos)
ACCOUNT_ADDRESS_PHRASES = (
    r"default (?:shipping |delivery |home |billing )?{a}",
    r"{a} (?:on|in|of|for|saved (?:on|in|to)|linked to|associated with|attached to) "
    r"(?:my|the|our) (?:customer |user )?(?:{c}|profile)",
    r"(?:my|the|our) (?:customer |user )?{c}'?s? (?:default |shipping |home |main |saved )?{a}",
    r"{c} {a}", r"{a} on file", r"profile {a}", r"home {a}", r"saved {a}", r"primary {a}",
)
ACCOUNT_VERBS_RE = re.compile(r"\b(?:new|set|move|moved|moving)\b")
# "I've moved house - can my account use 2250 Oak Grove Ave ... from now on?"
ACCOUNT_WORD_RE = re.compile(r"\b(?:my|the|our) (?:customer |user )?(?:ac{1,2}o?un?t|profile)\b")
STREET_RE = re.compile(
    r"\b\d{1,6}\s+(?:[a-z0-9'.-]+\s+){0,4}?(?:st|street|ave|avenue|rd|road|blvd|boulevard|dr|"
    r"drive|ln|lane|way|ct|court|pl|place|terrace|ter|pkwy|parkway|hwy|highway|cir|circle|sq|"
    r"square)\b"
)
MOVED_RE = re.compile(
    r"\b(?:moved|moving|relocated|relocating|new (?:place|home|house|apartment|flat)|"
    r"from now on)\b"
)

# General questions about the rules: the order-change rules leave them alone.
POLICY_PHRASES = (
    r"polic(?:y|ies)", r"rules?", r"how (?:do|does|did)", r"how long", r"how many", r"how soon",
    r"is it (?:even |still )?possible", r"in general", r"generally", r"usually", r"normally",
    r"what happens", r"what if", r"affects?", r"allowed", r"am i able", r"are (?:we|you) able",
    r"is there (?:a|an|any)", r"do you (?:allow|accept|offer|do|take|charge|have)",
    r"do i (?:get|have|need)", r"until when", r"deadline", r"time limit", r"how much time",
    r"when (?:will|would|do|does|can)", r"if (?:i|we) (?:change|update|modify|cancel|return|"
    r"exchange|switch|move|swap)\w*", r"does (?:a|an|the|changing|updating|cancelling|returning)",
    r"can (?:a|an)", r"what (?:does|do|did) [^?.!]{0,50}\bmean", r"meaning of",
)
CAN_AFTER_RE = re.compile(
    r"\b(?:can|could|may)(?:'t|not)?\s+(?:i|you|we|u|one|customers?|people)\b[^.?!]{0,80}?"
    r"\b(?:after|once|when|if)\s+(?:it|they|its|it's|they're|the|an?|my|i|"
    r"you|we|u|item|order|package|delivery|checkout|checking|ordering|purchase|purchasing|"
    r"placing|shipping|shipment|dispatch|\d+)\b"
)
GENERIC_OBJECT_RE = re.compile(
    r"\b(?:an?|any)\s+(?:[\w-]+\s+)?(?:orders?|items?|products?|purchases?|packages?)\b|"
    r"\bsomething\b|\banything\b"
)
# Plural nouns with nothing making them the shopper's own: generic ("which orders can ...").
OWN_PLURAL_STARTS = frozenset({"my", "our", "the", "these", "those", "both", "two", "three",
                               "all", "some", "few", "several", "of"})

# Complaints. Explicit ones ("file a complaint") win over unsupported topics.
COMPLAINT_EXPLICIT_PHRASES = (
    r"(?:file|make|lodge|submit|raise|register|log|open|put in|write|have)\s+(?:a\s+|an\s+)?"
    r"(?:formal\s+|official\s+|serious\s+)?complaint",
    r"(?:want|wish|like|need|going) to complain", r"complain(?:ing)? about", r"complaints? about",
    r"where (?:can|do) i complain", r"i'?m complaining",
)
COMPLAINT_PHRASES = (
    r"unacc?eptable", r"unacceptible", r"unexceptable", r"ridiculous", r"rid[ie]culo?us",
    r"disgusting", r"disgraceful", r"a disgrace", r"outrageous", r"appalling", r"atrocious",
    r"pathetic", r"shameful", r"shame on you", r"how dare", r"unprofessional", r"rude",
    r"(?:is|are|'s|r) (?:a |such a |an absolute |a complete )?joke", r"joke of a", r"incompetent",
    r"scam(?:mers?)?", r"(?:so |really |very |extremely |deeply |bitterly )?dis+ap+ointed",
    r"unhappy", r"not happy",
    r"(?:a )?(?:total |complete |absolute )?(?:disaster|nightmare|shambles)",
    r"(?:you|you've|you have|you guys|u|they|they've) (?:have )?messed "
    r"(?:it |this |everything )?up",
    r"nobody (?:cares|seems to care|helps|answers|answered|responds|responded|called back)",
    r"no one (?:cares|helps|answers|answered|responds)",
    r"gone downhill", r"let(?:ting)? (?:me|us) down", r"expected (?:much |a lot |way )?better",
    r"not good enough", r"how is (?:this|that) (?:acceptable|ok|okay)", r"ruined",
    r"(?:so |completely |totally )?done with (?:this|you|your)", r"i'?m so done",
    r"(?:is|are|was|were|been|has been|have been) (?:so |really |absolutely |just |truly |"
    r"utterly )?(?:terrible|horrible|awful|appalling|atrocious|shocking|abysmal|rubbish|garbage|"
    r"trash|the worst)", r"cheap rubbish", r"worst\W+(?:\w+\W+)?(?:shop|store|service|company|"
    r"experience|experince|site|website)", r"report (?:the|your|this) (?:delivery|courier|driver)",
    r"rip[- ]?off", r"waste of (?:my )?(?:time|money)", r"fed up", r"sick (?:and tired )?of",
    r"worst (?:\w+ )?(?:service|experience|company|store|shop|customer service|support|"
    r"purchase|shopping experience|delivery|courier)",
    r"(?:terrible|horrible|awful|lousy|crappy|crap|poor|bad|shocking|dreadful|abysmal|appalling) "
    r"(?:customer )?(?:service|experience|support|company|store|shop|care)",
    r"(?:i'm|i am|im|i feel|i'm really|we are|we're)\s+(?:so\s+|really\s+|very\s+|extremely\s+|"
    r"absolutely\s+|totally\s+|beyond\s+|incredibly\s+|pretty\s+)?(?:angry|furious|fed up|"
    r"disappointed|frustrated|upset|livid|pissed(?: off)?|annoyed|mad|disgusted|outraged|"
    r"fuming|irritated)",
    r"never (?:order(?:ing)?|buy(?:ing)?|shop(?:ping)?|purchas(?:e|ing)) (?:\w+ ){0,3}?again",
    r"(?:you|u) (?:guys |people |lot )?(?:are|r) (?:useless|incompetent|hopeless|terrible|"
    r"the worst|a joke|clowns)",
    r"useless (?:company|service|store|shop|support)", r"complain\w*",
)
# Something concrete asked next to the complaint ("... where is my order W1234567"): keep it.
CONCRETE_RE = re.compile(
    r"\bwhere(?:'s| is| are|s)\b|\bstatus\b|\btrack\w*\b|\bwhen (?:will|is|does|do|are|can)\b|"
    r"\bhasn'?t (?:arrived|shipped|come)\b|\bhaven'?t (?:received|got)\b|\bnever (?:arrived|came|"
    r"showed up|got here|received)\b|\bstill (?:not|hasn'?t|haven'?t|waiting)\b|\blist\b|"
    r"\bshow me\b"
)

# A return/cancel reason next to the complaint: with `inform` predicted, the answer to a form.
REASON_RE = re.compile(
    r"\b(?:damaged|broken|brok|defective|faulty|cracked|scratched|smashed|dented|ripped|torn|"
    r"stained|leak\w*|does ?n'?t (?:fit|work)|doesnt (?:fit|work)|don'?t (?:fit|work)|"
    r"stopped working|too (?:small|big|large|tight|loose|short|long)|wrong (?:size|item|color|"
    r"colour|product|model)|not as (?:described|advertised|pictured)|arrived late|came late|"
    r"changed my mind|no longer need\w*|ordered by mistake)\b"
)
# Unsupported topics: topic -> phrases (regular expressions, matched whole).
UNSUPPORTED_PHRASES: Dict[str, Tuple[str, ...]] = {
    "password": (r"pass ?words?", r"pasword", r"passwrd", r"passcode", r"pwd"),
    "login": (r"account (?:is |got |was |has been )?locked", r"unlock (?:my |the |it)",
              r"log ?(?:in|on|into)", r"logging (?:in|on|into)", r"logged (?:in|out)",
              r"sign(?:ing)? ?in(?:to)?", r"login", r"locked out", r"two[- ]factor", r"2fa",
              r"verification code"),
    "invoice": (r"invoices?", r"receipts?", r"vat", r"tax (?:document|invoice|receipt|form|"
                r"statement)s?", r"proof of purchase", r"billing statement"),
    "create_account": (r"(?:create|open|make|register|set ?up|start)\s+(?:a |an |new |my |me |"
                       r"one |another |second |customer |user |shopping )*account", r"sign ?up",
                       r"register", r"registration"),
    "delete_account": (r"(?:delete|close|deactivate|remove|cancel|terminate|erase|disable|shut "
                       r"down)\s+(?:my |the |this |our )?(?:whole |entire |customer )?"
                       r"(?:account|profile)", r"(?:account|profile|personal data|my data)\b"
                       r"[^.?!]{0,30}\b(?:removed|deleted|erased|closed|wiped)",
                       r"account (?:deletion|closure)", r"forget (?:me|my data)"),
    "newsletter": (r"newsletters?", r"unsubscribe\w*", r"marketing (?:e-?mails?|messages|texts|"
                   r"sms|calls)", r"promo(?:tional)? (?:e-?mails?|offers|messages|texts)",
                   r"mailing list", r"spam\w*", r"stop (?:sending|emailing|texting) me",
                   r"opt(?:ing)? out",
                   r"(?:sale|sales|advertising|ad) (?:e-?mails?|texts|messages)"),
    "contact_details": (r"(?:change|chnage|chang|update|updte|modify|edit|switch|correct|fix|"
                        r"replace)\w*\s+(?:[\w']+\s+){0,3}?(?:e-?mail|e mail|phone|mobile|"
                        r"telephone|cell)(?:\s+(?:address|number|no))?",
                        r"(?:new|different|another|other) (?:e-?mail|phone|mobile)"
                        r"(?:\s+(?:address|number))?",
                        r"(?:e-?mail|phone)(?: address| number)? (?:changed|is wrong|is outdated)"),
    "loyalty": (r"loyalty", r"rewards?(?: points?| program(?:me)?| card)?", r"points? balance",
                r"my points", r"cash ?back", r"bonus points"),
    "price_match": (r"price[- ]?match\w*", r"match (?:the|a|their|your|that|this) price",
                    r"price (?:adjustment|protection)",
                    r"refund (?:me )?the (?:price )?difference",
                    r"price (?:dropped|went down|is lower now)"),
    "gift_wrap": (r"gift[- ]?wrap\w*",
                  r"wrap(?:ped|ping)?\b[^.?!]{0,25}\b(?:as a )?(?:gift|present)",
                  r"gift (?:box|message|note|receipt)"),
    "new_order": (r"(?:want|wanna|like|need|help me|let me|can i|could i|can you|could you|"
                  r"would you|will you|please|pls)\s+(?:to\s+)?(?:place|put in|submit|make|"
                  r"create)\s+(?:a |an |the )?(?:new |another |second )?order"
                  r"(?!\s*(?:#|id|number|w?\s?\d))",
                  r"(?:place|put in|submit|make|create)\s+(?:a |an |the )?(?:new |another |"
                  r"second )?order for me", r"put (?:the |an |my )?order in for me",
                  r"re-?order (?:[\w'-]+ ){0,4}?for me",
                  r"(?:order|buy|purchase)\s+(?:it|this|that|them|one|these|those|a|an|some|"
                  r"two|three|another|the|more|\d+)(?:\s+[\w'-]+){0,6}?\s+for me",
                  r"(?:can|could|would|will) you (?:please |pls )?(?:order|buy|purchase) "
                  r"(?:it|this|that|them|one|these|those|another|more|a new|the|me (?:a|an|the|"
                  r"one|some|another) (?:new )?(?:" + "|".join(sorted(PRODUCT_NOUNS)) + "))",
                  r"add\s+(?:[\w'-]+\s+){0,4}?to (?:my |the )?(?:cart|basket)"),
}

TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|'em")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one insertion, deletion, substitution or swap
    of two neighbouring letters (optimal string alignment distance <= 1), in linear time."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]])
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def _listed(config: Dict[str, Any], key: str) -> List[str]:
    """A config list, lower-cased; a lone string (``item_words: kettle``) is a list of one."""
    value = config.get(key) or []
    if isinstance(value, str):
        value = [value]
    return [str(v).lower().strip() for v in value if str(v).strip()]


def _phrases(patterns: Iterable[str], extra: Iterable[str] = ()) -> Optional[Pattern[str]]:
    """One alternation of regex ``patterns`` and designer ``extra`` phrases (literal), whole."""
    parts = [f"(?:{p})" for p in patterns] + [re.escape(str(p).lower().strip())
                                              for p in extra if str(p).strip()]
    return re.compile(r"(?<![\w'])(?:" + "|".join(parts) + r")(?![\w'])") if parts else None


@dataclass(frozen=True)
class Verb:
    """One change verb found in a message."""

    kind: str  # cancel, return, refund, exchange, replace, change (VERB_FORMS keys), or a cue
    index: int  # token index
    ref: bool  # an object right after it points at the shopper's order/items
    weak: bool = False  # a cue without the verb ("don't need ... anymore", "money back")


@dataclass
class Analysis:
    """What the rules read from one message."""

    low: str
    tokens: List[str]
    starts: List[int]
    has_id: bool
    order_ref: bool  # an order id or an explicit order ("my order", "the last order")
    own: bool  # my/our/"I bought": the shopper's own things
    verbs: List[Verb] = field(default_factory=list)
    product_tokens: FrozenSet[int] = frozenset()


class Lexicon:
    """The vocabularies (module constants + config additions), compiled once."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.forms: Dict[str, Tuple[str, str]] = {}
        for kind, forms in VERB_FORMS.items():
            for form, words in forms.items():
                for word in words:
                    self.forms[word] = (kind, form)
        extra_verbs = [(kind, w) for kind in VERB_FORMS for w in _listed(config, f"{kind}_verbs")]
        for kind, word in extra_verbs:
            self.forms[word] = (kind, "base")
        for variant, word in VERB_VARIANTS.items():
            self.forms.setdefault(variant, self.forms[word])
        self.fuzzy: Dict[str, List[Tuple[str, Tuple[str, str]]]] = {}
        for word in list(FUZZY_VERBS) + [w for _, w in extra_verbs if w.isalpha()]:
            if len(word) >= 5:
                self.fuzzy.setdefault(word[0], []).append((word, self.forms[word]))
        self.cancel_words = frozenset(w for w, (kind, _) in self.forms.items() if kind == "cancel")
        self.not_typos = NOT_TYPOS | set(_listed(config, "not_typos"))
        self.item_words = ITEM_WORDS | PRODUCT_NOUNS | set(_listed(config, "item_words"))
        # what an object after a verb may name: an item, a product, an order
        self.object_words = self.item_words | ORDER_WORDS | {"stuff", "thing", "things", "lot",
                                                             "everything"}
        self.address_extra = _phrases((), _listed(config, "address_words"))
        self.payment_extra = _phrases((), _listed(config, "payment_words"))
        self.account_address = _phrases(
            [p.format(a=r"(?<!email )(?<!e-mail )(?<!e mail )ad{1,2}re?s{1,2}",
                      c=r"ac{1,2}o?un?t") for p in ACCOUNT_ADDRESS_PHRASES],
            _listed(config, "account_address_phrases"),
        )
        self.policy = _phrases(POLICY_PHRASES, _listed(config, "policy_phrases"))
        self.complaint_explicit = _phrases(COMPLAINT_EXPLICIT_PHRASES)
        self.complaint = _phrases(COMPLAINT_PHRASES, _listed(config, "complaint_phrases"))
        extra_unsupported = config.get("unsupported_phrases") or {}
        if not isinstance(extra_unsupported, dict):  # a plain list: one "other" topic
            extra_unsupported = {"other": extra_unsupported}
        topics = {**{t: () for t in extra_unsupported}, **UNSUPPORTED_PHRASES}
        self.unsupported: Dict[str, Pattern[str]] = {
            topic: pattern for topic in topics
            if (pattern := _phrases(topics[topic], _listed(extra_unsupported, topic)))
        }
        self._cache: Dict[str, Optional[Tuple[str, str]]] = {}

    def lexeme(self, word: str) -> Optional[Tuple[str, str]]:
        """``(kind, form)`` of a verb word, misspelt by one edit or not; None for other words.

        One edit (an insertion, deletion, substitution or swap of neighbours) on words of five
        letters or more with the right first letter: ``cancle``, ``cancl``, ``retrun``, ``exhange``,
        ``modfy``; real words that close (``chance``, ``charge``) are in ``NOT_TYPOS``.
        """
        found = self.forms.get(word)
        if found is not None or len(word) < 5 or word in self.not_typos or not word.isalpha():
            return found
        if word in self._cache:
            return self._cache[word]
        matches = [(target, lex) for target, lex in self.fuzzy.get(word[0], ())
                   if within_one_edit(word, target)]
        # "canceld" is one edit from "cancel" and from "canceled": the same ending wins
        matches.sort(key=lambda m: m[0][-1] != word[-1])
        found = matches[0][1] if matches else None
        if len(self._cache) < 50_000:
            self._cache[word] = found
        return found

    def is_address_word(self, word: str, previous: str = "") -> bool:
        """"address" (or one typo away), but not an email, IP or return address."""
        return (len(word) >= 5 and word[0] == "a" and within_one_edit(word, "address")
                and previous not in {"email", "mail", "ip", "return", "web"})

    def is_payment_word(self, word: str) -> bool:
        return len(word) >= 6 and word[0] == "p" and within_one_edit(word, "payment")


class Analyzer:
    """Reads one message into an ``Analysis``: tokens, order references, change verbs."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lex = lexicon

    def analyse(self, text: str, entities: Sequence[Dict[str, Any]] = ()) -> Analysis:
        low = " ".join(text[:MAX_CHARS].translate(_APOSTROPHES).lower().split())
        tokens, starts = [], []
        for match in TOKEN_RE.finditer(low):
            tokens.append(match.group())
            starts.append(match.start())
        has_id = bool(ORDER_ID_RE.search(low))
        order_ref = has_id or bool(ORDER_PHRASE_RE.search(low))
        own = bool(POSSESSIVE_RE.search(low))
        product_tokens = set()
        for entity in entities or ():
            if entity.get(ENTITY_ATTRIBUTE_TYPE) == "product" and isinstance(
                entity.get(ENTITY_ATTRIBUTE_START), int
            ):
                product_tokens.add(bisect.bisect_right(starts, entity[ENTITY_ATTRIBUTE_START]) - 1)
        analysis = Analysis(low=low, tokens=tokens, starts=starts, has_id=has_id,
                            order_ref=order_ref, own=own, product_tokens=frozenset(product_tokens))
        analysis.verbs = self._verbs(analysis)
        return analysis

    # ------------------------------------------------------------------ verbs
    def _token_at(self, analysis: Analysis, char: int) -> int:
        return max(0, bisect.bisect_right(analysis.starts, char) - 1)

    def _names_an_item(self, analysis: Analysis, indices: Iterable[int]) -> bool:
        items = self.lex.object_words
        return any(i < len(analysis.tokens) and (analysis.tokens[i] in items
                                                 or i in analysis.product_tokens)
                   for i in indices)

    def _object_ref(self, analysis: Analysis, i: int) -> bool:
        """Whether what follows the verb at ``i`` is something the shopper ordered."""
        tokens = analysis.tokens
        j = i + 1
        while j < len(tokens) and tokens[j] in {"me", "us", "for"}:  # "refund me for the mat"
            j += 1
        if j >= len(tokens):
            return False
        if tokens[j] in ORDER_WORDS:  # "cancel order", "return order W1234567"
            return True
        if tokens[j] in PRONOUN_OBJECTS:
            after = tokens[j + 1] if j + 1 < len(tokens) else ""
            if after in NOT_ORDER_OBJECTS:
                return False  # "cancel that request"
            if tokens[j] in {"that", "this"} and analysis.tokens[i] in self.lex.cancel_words:
                # "cancel that" / "cancel this" mean "stop", unless an item follows
                return self._names_an_item(analysis, range(j + 1, min(j + 3, len(tokens))))
            return True
        if tokens[j] in {"all", "both"} and j + 1 < len(tokens) and tokens[j + 1] == "of":
            return True
        if tokens[j] in POSSESSIVE_OBJECT_STARTS or j in analysis.product_tokens:
            return self._names_an_item(analysis, range(j, min(j + 5, len(tokens))))
        return False

    def _negated(self, analysis: Analysis, i: int) -> bool:
        """A negation up to three words before ``i`` in the same clause ("don't cancel")."""
        for k in range(i - 1, max(-1, i - 4), -1):
            if any(c in analysis.low[analysis.starts[k]:analysis.starts[k + 1]] for c in ",.;!?"):
                return False
            if analysis.tokens[k] in NEGATORS:
                return True
        return False

    def requested(self, analysis: Analysis, i: int) -> bool:
        """The verb at ``i`` opens the message ("update payment method") or follows a request
        ("I want to", "please", "can you")."""
        before = [t for t in analysis.tokens[max(0, i - 4):i]
                  if t not in {"hi", "hello", "hey", "ok", "okay", "so", "and", "then", "also"}]
        return not before or any(t in REQUEST_CUES or t in {"help", "let", "i'll", "lets"}
                                 or t.endswith("'d") for t in before)

    def _noun_requested(self, analysis: Analysis, i: int) -> bool:
        """For "I'd like a refund", "start a return", "give me a full refund", "cancellation
        please": the noun at ``i`` is asked for (not "where is my refund", "check my return")."""
        tokens = analysis.tokens
        if i + 1 < len(tokens) and tokens[i + 1] in {"please", "pls", "plz"}:
            return True
        k = i - 1
        for d in (i - 1, i - 2):  # the determiner, maybe with an adjective: "a full refund"
            if d >= 0 and tokens[d] in DETERMINERS:
                k = d - 1
                break
        while k >= 0 and tokens[k] in {"me", "us", "you", "to"}:
            k -= 1
        return k >= 0 and (tokens[k] in REQUEST_FRAMES or tokens[k].endswith("'d"))

    def _participle_requested(self, analysis: Analysis, i: int) -> Optional[int]:
        """For "I want it cancelled": the index of the request cue before ``i``, else None."""
        for k in range(i - 1, max(-1, i - 7), -1):
            word = analysis.tokens[k]
            if word in STATUS_CUES:
                return None
            if word in REQUEST_CUES or word.endswith("'d"):
                return k
        return None

    def _verbs(self, analysis: Analysis) -> List[Verb]:
        tokens, low = analysis.tokens, analysis.low
        verbs: List[Verb] = []
        not_change = {self._token_at(analysis, m.start()) for m in NOT_A_CHANGE_RE.finditer(low)}
        refund_to = {self._token_at(analysis, m.start())
                     for m in REFUND_DESTINATION_RE.finditer(low)}
        make_changes = {self._token_at(analysis, m.start()) for m in MAKE_CHANGES_RE.finditer(low)}
        for i, word in enumerate(tokens):
            lexeme = self.lex.lexeme(word)
            if lexeme is None:
                continue
            kind, form = lexeme
            prev = tokens[i - 1] if i else ""
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if i in not_change or (kind == "refund" and i in refund_to):
                continue
            blockers = CHANGE_COMPOUND_BLOCKERS if kind == "change" else COMPOUND_BLOCKERS
            if nxt in blockers or self._negated(analysis, i):
                continue
            if word in {"update", "updates"} and nxt in {"on", "about", "regarding", "me", "us",
                                                         "yet", "from", "for"}:
                continue
            if kind == "return" and nxt in {"to", "from", "home", "trip", "flight"} and \
                    prev not in {"to", "please", "pls", "can", "could", "i", "will"}:
                continue
            if form in {"base", "gerund"} and i >= 2 and prev in SUBJECTS and \
                    tokens[i - 2] in STATUS_QUESTION_CUES:
                continue  # "did you cancel my order?", "why did they return it": a status
            if word.startswith("switch") and prev in {"nintendo", "light", "power", "linear",
                                                      "tactile", "clicky", "the", "a", "my"}:
                continue
            if form == "plural":
                if any(k in make_changes for k in range(max(0, i - 6), i + 1)):
                    verbs.append(Verb(kind, i, False))
                continue
            if form == "past":
                cue = self._participle_requested(analysis, i)
                if cue is None:
                    continue
                between = range(cue + 1, i)
                ref = any(tokens[k] in PRONOUN_OBJECTS for k in between) or \
                    self._names_an_item(analysis, between)
                verbs.append(Verb(kind, i, ref))
                continue
            if form in {"noun"} or (form == "base" and prev in DETERMINERS):
                made = any(k in make_changes for k in range(max(0, i - 6), i + 1))
                if kind == "change" and word != "change" and not made:
                    continue  # "an update", "the switch": not a request
                if not self._noun_requested(analysis, i) and not made:
                    continue
                ref = nxt in {"for", "of", "on", "to"} and self._object_ref(analysis, i + 1)
                verbs.append(Verb(kind, i, ref))
                continue
            verbs.append(Verb(kind, i, self._object_ref(analysis, i)))
        for match in SEND_BACK_RE.finditer(low):
            i = self._token_at(analysis, match.start())
            if self._negated(analysis, i):
                continue
            if match.group().startswith("money"):
                frame = any(t in REQUEST_FRAMES or t.endswith("'d")
                            for t in tokens[max(0, i - 5):i])
                if frame:  # "I want my money back" (for the boots / for this order)
                    ref = bool(analysis.product_tokens) or bool(OWN_PURCHASE_RE.search(low)) or \
                        self._names_an_item(analysis, range(i + 2, i + 7))
                    verbs.append(Verb("refund", i, ref, weak=True))
                continue
            if match.group().startswith("go"):  # "... from W1 need to go back"
                verbs.append(Verb("return", i, False, weak=True))
                continue
            obj = match.group(1) is not None or (
                match.group().split()[1] not in {"back"}
                and self._names_an_item(analysis, range(i + 1, i + 5))
            )
            verbs.append(Verb("return", i, obj or self._object_ref(analysis, i + 1)))
        for match in CALL_OFF_RE.finditer(low):
            i = self._token_at(analysis, match.start())
            if not self._negated(analysis, i):
                verbs.append(Verb("cancel", i, match.group(1) is not None))
        if not any(v.kind == "cancel" for v in verbs):
            match = NO_LONGER_NEED_RE.search(low)
            if match:
                verbs.append(Verb("cancel", self._token_at(analysis, match.start()), False,
                                  weak=True))
        verbs.sort(key=lambda v: v.index)
        return verbs


class RoutingRules:
    """The rules, on plain values: ``route(text, intent, entities)`` -> ``(intent, rule)``."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.lex = Lexicon(config)
        self.analyzer = Analyzer(self.lex)
        def intents(key: str, default: Sequence[str]) -> FrozenSet[str]:
            value = config.get(key) or default
            return frozenset([value] if isinstance(value, str) else value)

        self.change_from = intents("change_route_from", CHANGE_ROUTE_FROM)
        self.generic_from = intents("generic_change_route_from", GENERIC_CHANGE_ROUTE_FROM)
        self.unsupported_from = intents("unsupported_route_from", UNSUPPORTED_ROUTE_FROM)
        self.complaint_from = intents("complaint_route_from", COMPLAINT_ROUTE_FROM)
        self.complaint_keep = intents("complaint_keep", COMPLAINT_KEEP)

    # ------------------------------------------------------------------ evidence
    def _targets(self, analysis: Analysis) -> Dict[str, Any]:
        """Where the message names an address, a payment, items/options (sorted character
        offsets of each), and whether it names the account's email/phone."""
        low, tokens, starts = analysis.low, analysis.tokens, analysis.starts
        spans = [m.span() for m in ORDER_WITH_RE.finditer(low)]

        def outside(pos: int) -> bool:  # not in "the order with the boots"
            return not any(a <= pos < b for a, b in spans)

        def found(*patterns: Optional[Pattern[str]]) -> List[int]:
            return [m.start() for p in patterns if p for m in p.finditer(low)]

        address = found(ADDRESS_RE, self.lex.address_extra) + [
            starts[i] for i, t in enumerate(tokens)
            if self.lex.is_address_word(t, tokens[i - 1] if i else "")]
        payment = found(PAYMENT_RE, self.lex.payment_extra) + [
            starts[i] for i, t in enumerate(tokens) if self.lex.is_payment_word(t)]
        item = [pos for pos in found(ITEM_RE) if outside(pos)] + [
            starts[i] for i, t in enumerate(tokens)
            if (t in self.lex.item_words or i in analysis.product_tokens) and outside(starts[i])]
        return {"address": sorted(set(address)), "payment": sorted(set(payment)),
                "item": sorted(set(item)), "contact": bool(CONTACT_RE.search(low))}

    @staticmethod
    def _change_target(targets: Dict[str, Any], low: str, at: int, exchange: bool
                       ) -> Tuple[Optional[str], List[str]]:
        """What the verb at character ``at`` changes: ``"address"``, ``"payment"``, ``"item"``
        or None, and the address/payment targets also named (nearest first).

        The verb's own clause (up to the next ``.``, ``;``, ``?`` or ``!``) decides first, so
        "change the t-shirt to a medium. refund any difference to my card" changes the item.
        In it an address or payment wins over item words ("change the item's shipping
        address"), except after exchange/swap/replace, whose object comes first ("exchange the
        boots for the black ones and ship them to my office").
        """
        end = next((i for i in range(at, len(low)) if low[i] in ".;?!"), len(low))

        def after(kind: str, stop: int) -> List[int]:
            return [p for p in targets[kind] if at < p < stop]

        def nearest(kinds: Iterable[str], stop: int) -> List[str]:
            hits = sorted((p, kind) for kind in kinds for p in after(kind, stop)[:1])
            return [kind for _, kind in hits]

        clause = nearest(("address", "payment", "item"), end)
        specific = [k for k in clause if k != "item"]
        if clause and exchange:
            primary = clause[0]
        elif specific:
            primary = specific[0]
        elif clause:
            primary = "item"
        else:  # named elsewhere: after the verb first, then before it
            later = nearest(("address", "payment", "item"), len(low))
            earlier = sorted((at - p, kind) for kind in ("address", "payment", "item")
                              for p in targets[kind] if p < at)
            order = later + [kind for _, kind in earlier]
            primary = order[0] if order else None
        also = [k for k in nearest(("address", "payment"), len(low)) if k != primary]
        return primary, also

    def _is_policy_question(self, analysis: Analysis) -> bool:
        """A question about the rules in general (an order id makes it specific)."""
        if analysis.has_id:
            return False
        low = analysis.low
        if self.lex.policy.search(low) or CAN_AFTER_RE.search(low):
            return True
        if analysis.own or analysis.order_ref:
            return False
        if GENERIC_OBJECT_RE.search(low):
            return True
        tokens = analysis.tokens
        return any(t in {"items", "orders", "products"} and (i == 0 or tokens[i - 1]
                                                               not in OWN_PLURAL_STARTS)
                   for i, t in enumerate(tokens))

    def change_candidates(self, analysis: Analysis) -> List[Tuple[str, str]]:
        """The change intents the message asks for, in text order, with the rule of each."""
        targets = self._targets(analysis)
        low = analysis.low
        kinds = {v.kind for v in analysis.verbs if not v.weak}
        own_purchase = bool(OWN_PURCHASE_RE.search(low))
        # "change my address", "update the payment method": the target is the shopper's own
        possessive_target = re.search(
            r"\b(?:my|our|the|order's|its)\s+(?:[\w'-]+\s+){0,3}?(?:ad{1,2}re?s{1,2}|payment|card|"
            r"paypal|pay)\b", low,
        ) is not None
        found: List[Tuple[str, str]] = []
        for verb in analysis.verbs:
            referenced = analysis.order_ref or verb.ref or own_purchase
            if verb.weak:
                if verb.kind == "cancel" and not kinds and analysis.order_ref:
                    found.append((CANCEL, "change_request"))  # "don't need W1 anymore"
                elif verb.kind == "refund" and referenced and "cancel" not in kinds:
                    found.append((RETURN, "change_request"))  # "I want my money back for it"
                elif verb.kind == "return" and analysis.order_ref and not kinds:
                    found.append((RETURN, "change_request"))  # "... from W1 need to go back"
                continue
            if verb.kind == "cancel":
                # not "I ordered it": "I want to cancel because I ordered it by mistake" is
                # also the answer to the cancel form's reason question
                if analysis.order_ref or verb.ref:
                    found.append((CANCEL, "change_request"))
                continue
            if verb.kind in {"return", "refund"}:
                # "cancel it and refund me": the refund is part of the cancellation
                if referenced and (verb.kind == "return" or "cancel" not in kinds):
                    found.append((RETURN, "change_request"))
                continue
            primary, also = self._change_target(targets, low, analysis.starts[verb.index],
                                                exchange=verb.kind != "change")
            if primary in {"address", "payment"}:
                if referenced or possessive_target or self.analyzer.requested(analysis,
                                                                              verb.index):
                    # the one changed first; the other named too counts as asked
                    found.extend((TARGET_INTENTS[k], "change_request") for k in [primary, *also])
                continue
            if verb.kind != "change":  # exchange, swap, trade, replace
                if referenced or analysis.own:
                    found.append((EXCHANGE, "change_request"))
                continue
            if targets["contact"]:
                continue  # the account's email/phone: unsupported, not an order change
            if primary == "item":
                if referenced or analysis.own:
                    found.append((MODIFY, "change_request"))
            elif analysis.order_ref:
                found.append((CHANGE, "generic_change"))
        if found:
            return found
        # no change verb: a cue with an explicit order ("send W1 to my office instead")
        cues = []
        address_cue = ADDRESS_CUE_RE.search(low)
        if address_cue and (analysis.order_ref or SHIP_IT_ELSEWHERE_RE.search(low)):
            cues.append((address_cue.start(), ADDRESS))
        pay_cue = PAY_CUE_RE.search(low)
        if pay_cue and targets["payment"] and (analysis.order_ref or PAY_FOR_IT_RE.search(low)):
            cues.append((pay_cue.start(), PAYMENT))
        found = [(intent, "change_request") for _, intent in sorted(cues)]
        if not found and targets["item"] and (analysis.order_ref or own_purchase) and \
                MODIFY_CUE_RE.search(low):
            found.append((MODIFY, "change_request"))  # "make the lamp in my order the blue one"
        return found

    def _account_address(self, analysis: Analysis) -> bool:
        """A change of the account's address: "change the default address", "update the
        address on file", "I've moved - can my account use 12 Elm Street from now on"."""
        low = analysis.low
        verb = any(v.kind in {"change", "replace"} and not v.weak for v in analysis.verbs)
        if self.lex.account_address.search(low):
            return verb or bool(ACCOUNT_VERBS_RE.search(low))
        return bool(ACCOUNT_WORD_RE.search(low) and STREET_RE.search(low)
                    and (verb or MOVED_RE.search(low)))

    @staticmethod
    def _same_family(a: str, b: str) -> bool:
        return a == b or any(a in family and b in family for family in FAMILIES)

    # ------------------------------------------------------------------ the rules
    def route(
        self, text: Optional[str], intent: Optional[str],
        entities: Sequence[Dict[str, Any]] = (),
    ) -> Optional[Tuple[str, str]]:
        """``(new intent, rule)`` when the message should be re-routed, else None."""
        text = (text or "").strip()
        if not text or text.startswith("/") or not intent:
            return None
        analysis = self.analyzer.analyse(text, entities)
        # a predicted change intent is replaced only when the message has none of its evidence
        # (``change_candidates`` then does not list it)
        change_from = self.change_from | CHANGE_INTENTS

        def may_change(new: str, allowed: FrozenSet[str]) -> bool:
            return intent in allowed and not self._same_family(intent, new)

        # "hmm actually wait, my husband wants to keep them. forget it": drop the request
        if intent in STOP_ROUTE_FROM and STOP_RE.search(analysis.low) and \
                not analysis.has_id:
            return "stop", "stop"
        # "yes, cancel it": the answer to a read-back, not a new request
        answer = bool(analysis.tokens) and analysis.tokens[0] in AFFIRMATIONS and \
            not analysis.order_ref and len(analysis.tokens) <= 8
        policy = self._is_policy_question(analysis)
        # account_address
        if not answer and self._account_address(analysis):
            if not policy and may_change(ADDRESS, change_from):
                return ADDRESS, "account_address"
            if intent == ADDRESS or policy:
                return None
        # change_request / generic_change
        candidates = [] if answer else self.change_candidates(analysis)
        if candidates:
            if policy or any(self._same_family(intent, new) for new, _ in candidates):
                return None  # the classifier's change intent is confirmed (or a rules question)
            new, rule = candidates[0]
            allowed = self.generic_from if rule == "generic_change" else change_from
            if intent in allowed:
                return new, rule
            return None
        change_verb = any(not v.weak or v.kind == "cancel" for v in analysis.verbs)
        low = analysis.low
        keep_complaint = intent in self.complaint_keep
        complaint_allowed = not keep_complaint and (
            intent in self.complaint_from or (not analysis.has_id and not change_verb)
        ) and intent != COMPLAINT
        # explicit complaint
        if complaint_allowed and self.lex.complaint_explicit.search(low):
            return COMPLAINT, "complaint"
        # unsupported_request ("can I return it without a receipt" is a rules question)
        if intent in self.unsupported_from and not (change_verb and policy):
            for pattern in self.lex.unsupported.values():
                if pattern.search(low):
                    return UNSUPPORTED, "unsupported_request"
        # complaint
        if complaint_allowed and self.lex.complaint.search(low):
            concrete = analysis.has_id or change_verb or CONCRETE_RE.search(low) or (
                intent in CHANGE_INTENTS and analysis.order_ref
            )
            reason = intent == "inform" and (  # the reason asked by a return/cancel form
                bool(REASON_RE.search(low))
                or any(e.get(ENTITY_ATTRIBUTE_TYPE) == "return_reason" for e in entities or ())
            )
            if not concrete and not reason:
                return COMPLAINT, "complaint"
        return None


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class RequestRouter(ConfiguredGraphComponent):
    """Re-routes the intent where the words contradict the classifier (see the module doc)."""

    # Every list here ADDS to the module's vocabulary (``*_route_from`` replace the defaults).
    DEFAULTS = {
        # confidence of a re-routed intent: max(the original's, this)
        "confidence": 0.9,
        # extra verbs (exact words, matched with one typo from 5 letters) per kind
        "cancel_verbs": [],
        "return_verbs": [],
        "refund_verbs": [],
        "exchange_verbs": [],
        "replace_verbs": [],
        "change_verbs": [],
        # extra words that say what to change: items/options, the address, the payment
        "item_words": [],
        "address_words": [],
        "payment_words": [],
        # extra phrases meaning the account's default address ("mailing address")
        "account_address_phrases": [],
        # extra phrases marking a question about the rules in general (never re-routed)
        "policy_phrases": [],
        # extra complaint phrases ("clown show")
        "complaint_phrases": [],
        # extra unsupported phrases: {topic: [phrases]} or a plain list
        "unsupported_phrases": {},
        # real words never read as a misspelt verb ("chance", "charge" are built in)
        "not_typos": [],
        # which predicted intents each rule may replace (empty: the module's defaults)
        "change_route_from": [],
        "generic_change_route_from": [],
        "unsupported_route_from": [],
        "complaint_route_from": [],
        # predicted intents never turned into a complaint
        "complaint_keep": [],
    }

    def __init__(self, config: Dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        unknown = sorted(set(config) - set(self.DEFAULTS))
        if unknown:  # a misspelt key in config.yml would otherwise add nothing, silently
            logger.warning("RequestRouter ignores unknown config keys %s (known: %s)",
                           unknown, sorted(self.DEFAULTS))
        self.confidence = float(self._config["confidence"])
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"RequestRouter confidence must be in [0, 1], got {self.confidence}")
        self.rules = RoutingRules(self._config)

    def process(self, messages: List[Message]) -> List[Message]:
        """Re-routes the intent of each message that needs it (the others are untouched)."""
        for message in messages:
            predicted = message.get(INTENT) or {}
            decision = self.rules.route(
                message.get(TEXT), predicted.get(INTENT_NAME_KEY), message.get(ENTITIES) or ()
            )
            if decision is not None:
                self.reroute(message, *decision)
        return messages

    def reroute(self, message: Message, new_intent: str, rule: str) -> None:
        """Sets the new intent on top of the ranking, the original right under it."""
        old = dict(message.get(INTENT) or {})
        old_name = old.get(INTENT_NAME_KEY)
        old_confidence = float(old.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
        new = {INTENT_NAME_KEY: new_intent,
               PREDICTED_CONFIDENCE_KEY: max(old_confidence, self.confidence)}
        rest = [dict(r) for r in message.get(INTENT_RANKING_KEY) or []
                if r.get(INTENT_NAME_KEY) not in (new_intent, old_name)]
        ranking = [new, {**old, PREDICTED_CONFIDENCE_KEY: old_confidence}, *rest]
        message.set(INTENT, new, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        message.set(ROUTED, {"from": old_name, "rule": rule}, add_to_output=True)
        logger.debug("routed %r -> %r (%s)", old_name, new_intent, rule)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples keep their labels."""
        return training_data
