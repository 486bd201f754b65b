"""validate_identify_form: who is the shopper (email + zip, first + last name + zip, or the
store site's signed token).

Why a custom ``run``: the form needs one decision per turn that spans several slots (is the
identity complete? does the shop know it? is the conversation locked?), which the per-slot
``validate_<slot>`` hooks of the SDK cannot express. The SDK hooks are still implemented
(``extract_<slot>``, ``validate_<slot>``) and called from ``run`` in a fixed order.

Contract (docs/dialogue-design.md):
- remembers the task that triggered the form in ``pending_request``;
- two facts, always: an email alone is never looked up (RETAIL_RULES), and every failure gets the
  same reply, so no answer tells whether an email has an account;
- a signed-in shopper's ``customer_token`` (actions/customer_token.py) identifies without asking;
- after 3 failed lookups the conversation is locked (``id_attempts``) and the form ends; the shop
  also counts failures per account and per client address across conversations and replicas
  (``/restart`` or a new sender id does not reset those) and pauses identification
  (``IdentificationLocked``);
- one conversation serves one customer: once identified, other identity details are refused.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.forms import REQUESTED_SLOT, FormValidationAction

from actions.action_base import Dispatcher, DomainDict, Events, shop_safe
from actions.customer_token import customer_from_token, token_in
from actions.shop_client import NotFound, ShopError, get_client
from actions.shop_errors import IdentificationLocked
from actions.text_parsing import EMAIL_RE, ZIP_RE, find_order_id
from actions.tracker_helpers import TASK_INTENTS, client_address, latest_metadata, latest_turn

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
IDENTITY_SLOTS = ("email", "first_name", "last_name", "zip")
NAME_SLOTS = ("first_name", "last_name", "zip")
EMAIL_SLOTS = ("email", "zip")

NAME_WORD_RE = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'\-]*")
# "I'd rather use my name", "no email", "by zip code" -> identify by name + zip
NAME_PREFERENCE_RE = re.compile(
    r"\b(name|zip|postal|postcode|post code)\b|"
    r"\b(no|without|don'?t have|do not have|forgot)( an| my)? e-?mail",
    re.IGNORECASE,
)
# Intents during which the free text is certainly not a name (digressions, other tasks).
NOT_A_NAME_INTENTS = {
    "faq",
    "request_human",
    "stop",
    "deny",
    "out_of_scope",
    "ask_capabilities",
    "bot_challenge",
    "product_info",
    "goodbye",
    "thank",
    "cancel_order",
    "return_order",
    "exchange_order",
    "modify_order",
    "change_address",
}
# Words around a name that are not part of it ("it's John Smith", "my last name is Li").
FILLER_WORDS = {
    "a", "am", "an", "and", "by", "call", "code", "dont", "don't", "e", "email", "first",
    "hello", "hey", "hi", "i", "i'm", "im", "is", "it", "it's", "its", "last", "mail", "me",
    "mine", "mr", "mrs", "ms", "my", "name", "names", "no", "ok", "okay", "please", "postal",
    "s", "sure", "surname", "the", "then", "this", "use", "yes", "zip", "zipcode", "family",
    "given", "here", "thanks", "thank", "you", "of", "have", "prefer", "rather", "i'd", "id",
    "instead", "with", "should", "be", "under", "account", "on", "number", "live", "at",
    "order", "orders", "status", "track", "tracking", "package", "parcel", "where", "what",
    "for", "about", "check", "want", "need", "help", "not", "sorry", "oops", "wait",
}


def _name_case(word: str) -> str:
    """``john`` -> ``John``; mixed case (``McDonald``) is kept as typed."""
    return word[:1].upper() + word[1:] if word.islower() or word.isupper() else word


def _answers_the_prompt(tracker: Tracker) -> bool:
    """Whether the message is an answer to our question, not a digression or another task."""
    return latest_turn(tracker).intent not in NOT_A_NAME_INTENTS | set(TASK_INTENTS)


def name_words(text: str) -> List[str]:
    """The words of ``text`` that may be a person's name (emails, digits, fillers removed)."""
    text = re.sub(r"\S*\d\S*", " ", EMAIL_RE.sub(" ", text))  # no emails, ids, zips
    words = [w for w in NAME_WORD_RE.findall(text) if w.lower() not in FILLER_WORDS]
    return [_name_case(w.strip("'-")) for w in words if w.strip("'-")]


def other_identity_in_message(tracker: Tracker) -> bool:
    """Whether the latest message carries identity details (email, or a name with a zip)."""
    turn = latest_turn(tracker)
    entities = turn.entity_names
    if "email" in entities or EMAIL_RE.search(turn.text):
        return True
    if "order_id" in entities or find_order_id(turn.text, bare=True):
        return False  # "no, I meant 7017301": the NLU may tag the number as a zip
    return bool({"first_name", "last_name", "zip"} & entities)


class ValidateIdentifyForm(FormValidationAction):
    """Collects email + zip or name + zip, asks the shop who that is, enforces the locks."""

    def name(self) -> str:
        return "validate_identify_form"

    # ------------------------------------------------------------------ SDK hooks
    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: Dispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[str]:
        """``[]`` once identified or locked; name + zip when preferred; else email + zip."""
        if tracker.get_slot("customer_id") or self.is_locked(tracker):
            return []
        return list(NAME_SLOTS) if self._name_mode(tracker) else list(EMAIL_SLOTS)

    def extract_email(
        self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """An email anywhere in the message ("it's john@x.com")."""
        current = tracker.get_slot("email")
        if current and EMAIL_RE.fullmatch(str(current).strip()):
            return {}
        match = EMAIL_RE.search(latest_turn(tracker).text)
        return {"email": match.group(0)} if match else {}

    def extract_zip(
        self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A 5-digit zip ("zip is 80279", "John Smith 80279")."""
        if tracker.get_slot("zip"):
            return {}
        text = EMAIL_RE.sub(" ", latest_turn(tracker).text)
        if text.startswith("/"):  # a button payload, e.g. /order_status{...}
            return {}
        match = ZIP_RE.search(text)
        return {"zip": match.group(1)} if match else {}

    def extract_first_name(
        self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Names from free text while a name is asked for, or typed with a zip."""
        if tracker.get_slot("first_name") or not self._may_hold_name(tracker):
            return {}
        words = name_words(latest_turn(tracker).text)
        if not 1 <= len(words) <= 3:
            return {}
        requested = tracker.get_slot(REQUESTED_SLOT)
        if requested == "last_name" and len(words) == 1:
            return {}  # a lone word answers the question asked: the last name
        found: Dict[str, Any] = {"first_name": words[0]}
        if len(words) >= 2 and not tracker.get_slot("last_name"):
            found["last_name"] = words[-1]
        return found

    def extract_last_name(
        self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A last name typed alone after we asked for it, or after a first name the NLU found."""
        if tracker.get_slot("last_name") or not self._may_hold_name(tracker):
            return {}
        words = name_words(latest_turn(tracker).text)
        if tracker.get_slot(REQUESTED_SLOT) == "last_name":
            return {"last_name": words[-1]} if 1 <= len(words) <= 2 else {}
        first = str(tracker.get_slot("first_name") or "")
        if first and 2 <= len(words) <= 3 and words[-1].lower() != first.lower():
            return {"last_name": words[-1]}  # "Mei Martin" with only first_name=Mei tagged
        return {}

    def validate_email(
        self, value: Any, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Lower-cased; something that is not an email is asked again (no strike)."""
        email = str(value or "").strip().strip(".,;").lower()
        if EMAIL_RE.fullmatch(email):
            return {"email": email}
        if _answers_the_prompt(tracker):
            dispatcher.utter_message(response="utter_invalid_email")
        return {"email": None}

    def validate_zip(
        self, value: Any, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Five digits (a ZIP+4 keeps its first five); anything else is dropped.

        The NLU also tags order numbers ("W 5564375") and sizes ("size 9") as zips: those are
        dropped silently; only an answer to "what's your zip?" gets a correction.
        """
        digits = re.sub(r"\D", "", str(value or ""))
        if len(digits) in (5, 9):
            return {"zip": digits[:5]}
        text = latest_turn(tracker).text
        if (
            tracker.get_slot(REQUESTED_SLOT) == "zip"
            and _answers_the_prompt(tracker)
            and len(digits) != 7
            and not find_order_id(text)
        ):
            dispatcher.utter_message(response="utter_invalid_zip")
        return {"zip": None}

    def validate_first_name(
        self, value: Any, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A plausible name, capitalised like the account's."""
        return {"first_name": self._clean_name(value)}

    def validate_last_name(
        self, value: Any, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A plausible name, capitalised like the account's."""
        return {"last_name": self._clean_name(value)}

    # ------------------------------------------------------------------ the turn
    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        # a working copy: the hooks below read what this turn collected so far from its slots;
        # the tracker Rasa sent stays as it came
        tracker = tracker.copy()
        events: Events = []
        intent = latest_turn(tracker).intent
        if intent in TASK_INTENTS:
            # set even when unchanged: a task asked again mid-form is handled input, so the
            # form must not be rejected for "nothing extracted"
            events.append(SlotSet("pending_request", intent))
            tracker.slots["pending_request"] = intent
            # the request in full (order, items, options, reason), resumed as it was said
            message = tracker.latest_message or {}
            events.append(SlotSet("pending_message", {
                "text": message.get("text") or "",
                "intent": {"name": intent},
                "entities": [{"entity": e.get("entity"), "value": e.get("value")}
                             for e in message.get("entities") or []],
            }))

        if tracker.get_slot("customer_id"):
            return events + self._already_identified(dispatcher, tracker)
        signed_in = await self._signed_in(dispatcher, tracker)
        if signed_in is not None:
            return events + signed_in
        if self.is_locked(tracker):
            dispatcher.utter_message(response="utter_identification_locked")
            return events + self._clear_inputs(tracker) + [SlotSet(REQUESTED_SLOT, None)]

        name_mode = self._name_mode(tracker)
        values = await self._collect(dispatcher, tracker, domain)
        events += [SlotSet(k, v) for k, v in values.items()]
        name_mode = name_mode or self._name_mode(tracker)

        email = tracker.get_slot("email")
        first, last, zip_code = (tracker.get_slot(s) for s in NAME_SLOTS)
        if not zip_code or not (email or (first and last)):
            return events + [SlotSet(REQUESTED_SLOT, self._next_slot(tracker, name_mode))]

        client = get_client()
        try:
            if email:
                user_id = client.lookup_customer(
                    email=email, zip_code=zip_code, client_id=client_address(tracker))
            else:
                user_id = client.lookup_customer(
                    first_name=first, last_name=last, zip_code=zip_code,
                    client_id=client_address(tracker))
            profile = client.get_customer(user_id)
        except NotFound:
            return events + self._failed(dispatcher, tracker, name_mode and not email)
        except IdentificationLocked as exc:
            logger.info("identification paused by the shop for %s (%d s)",
                        tracker.sender_id, exc.retry_after)
            dispatcher.utter_message(response="utter_identification_paused",
                                     retry_minutes=max(1, -(-int(exc.retry_after) // 60)))
            return events + self._clear_inputs(tracker) + [SlotSet(REQUESTED_SLOT, None)]
        except ShopError as exc:
            logger.warning("identification: shop unavailable: %s", exc)
            dispatcher.utter_message(response="utter_shop_unavailable")
            return events + [SlotSet(REQUESTED_SLOT, None)]

        return events + self._identified(dispatcher, tracker, user_id,
                                         profile.first_name or first or "")

    # ------------------------------------------------------------------ internals
    def _identified(self, dispatcher: Dispatcher, tracker: Tracker, user_id: str,
                    customer_name: str) -> Events:
        dispatcher.utter_message(response="utter_identified", customer_name=customer_name)
        return self._clear_inputs(tracker) + [
            SlotSet("customer_id", user_id),
            SlotSet("customer_name", customer_name),
            SlotSet("identified", True),
            SlotSet(REQUESTED_SLOT, None),
        ]

    async def _signed_in(self, dispatcher: Dispatcher, tracker: Tracker) -> Optional[Events]:
        """Identified by the store site's signed token in the message, or None (ask as usual).

        The shop still has to know the customer: a token for a deleted account identifies no
        one (the shopper is asked for the two facts instead).
        """
        user_id = customer_from_token(token_in(latest_metadata(tracker)))
        if user_id is None:
            return None
        try:
            profile = get_client().get_customer(user_id)
        except NotFound:
            logger.warning("customer token for an unknown customer %s", user_id)
            return None
        except ShopError as exc:
            logger.warning("identification: shop unavailable: %s", exc)
            dispatcher.utter_message(response="utter_shop_unavailable")
            return [SlotSet(REQUESTED_SLOT, None)]
        logger.info("identified %s by the store's signed token", tracker.sender_id)
        return self._identified(dispatcher, tracker, user_id, profile.first_name or "")

    @staticmethod
    def is_locked(tracker: Tracker) -> bool:
        """True after MAX_ATTEMPTS failed lookups in this conversation."""
        try:
            return float(tracker.get_slot("id_attempts") or 0) >= MAX_ATTEMPTS
        except (TypeError, ValueError):
            return False

    async def _collect(
        self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Extract from free text, then validate what is new this turn; updates ``tracker``."""
        before = {s: tracker.get_slot(s) for s in IDENTITY_SLOTS}
        for slot in ("email", "zip", "first_name", "last_name"):
            found = getattr(self, f"extract_{slot}")(dispatcher, tracker, domain)
            tracker.slots.update(found)
        # validate what this turn brought: new extractions, and NLU entities (whether Rasa passed
        # them as form candidates or action_extract_slots set them since the user's message)
        candidates = self._set_this_turn(tracker)
        candidates.update(
            {s: tracker.get_slot(s) for s in IDENTITY_SLOTS if tracker.get_slot(s) != before[s]}
        )
        for slot, value in candidates.items():
            if value is None:
                continue
            validate = getattr(self, f"validate_{slot}")
            tracker.slots.update(validate(value, dispatcher, tracker, domain))
        return {
            s: tracker.get_slot(s)
            for s in IDENTITY_SLOTS
            if s in candidates or tracker.get_slot(s) != before[s]
        }

    @staticmethod
    def _set_this_turn(tracker: Tracker) -> Dict[str, Any]:
        """Identity slots set since the latest user message (entities, form candidates)."""
        last_user = max(
            (i for i, e in enumerate(tracker.events) if e.get("event") == "user"), default=-1
        )
        return {
            e["name"]: e.get("value")
            for e in tracker.events[last_user + 1 :]
            if e.get("event") == "slot" and e.get("name") in IDENTITY_SLOTS
        }

    def _name_mode(self, tracker: Tracker) -> bool:
        """Name + zip instead of email: given one of them, asked one, or said so."""
        if tracker.get_slot("email"):
            return False
        if any(tracker.get_slot(s) for s in NAME_SLOTS):
            return True
        if tracker.get_slot(REQUESTED_SLOT) in NAME_SLOTS:
            return True
        text = latest_turn(tracker).text
        return bool(NAME_PREFERENCE_RE.search(text)) and not EMAIL_RE.search(text)

    def _may_hold_name(self, tracker: Tracker) -> bool:
        """Whether the free text may be a name: a name was asked, or it came with a zip."""
        text = latest_turn(tracker).text
        if not text or text.startswith("/") or "?" in text or EMAIL_RE.search(text):
            return False
        if latest_turn(tracker).intent in NOT_A_NAME_INTENTS:
            return False
        if tracker.get_slot(REQUESTED_SLOT) in ("first_name", "last_name"):
            return True
        if ZIP_RE.search(text) or NAME_PREFERENCE_RE.search(text):
            return True
        # asked for the email, the shopper answers with a full name ("Mohamed Li"), which the
        # NLU may classify as inform or not at all (nlu_fallback)
        if latest_turn(tracker).intent in TASK_INTENTS:
            return False
        return 2 <= len(name_words(text)) <= 3

    @staticmethod
    def _clean_name(value: Any) -> Optional[str]:
        text = " ".join(str(value or "").split()).strip(" .,;:!")
        if not text or len(text) > 40 or any(ch.isdigit() for ch in text) or "@" in text:
            return None
        return " ".join(_name_case(w) for w in text.split())

    @staticmethod
    def _next_slot(tracker: Tracker, name_mode: bool) -> Optional[str]:
        slots = NAME_SLOTS if name_mode else EMAIL_SLOTS
        return next((s for s in slots if not tracker.get_slot(s)), slots[0])

    @staticmethod
    def _clear_inputs(tracker: Tracker) -> Events:
        for slot in IDENTITY_SLOTS:
            tracker.slots[slot] = None
        return [SlotSet(slot, None) for slot in IDENTITY_SLOTS]

    def _failed(
        self, dispatcher: Dispatcher, tracker: Tracker, name_mode: bool
    ) -> Events:
        """One strike: ask again, or lock the conversation at the third."""
        attempts = float(tracker.get_slot("id_attempts") or 0) + 1
        events = self._clear_inputs(tracker) + [SlotSet("id_attempts", attempts)]
        if attempts >= MAX_ATTEMPTS:
            logger.info("identification locked for %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_identification_locked")
            return events + [SlotSet(REQUESTED_SLOT, None)]
        dispatcher.utter_message(response="utter_identification_failed")
        return events + [SlotSet(REQUESTED_SLOT, "first_name" if name_mode else "email")]

    def _already_identified(self, dispatcher: Dispatcher, tracker: Tracker) -> Events:
        """One customer per conversation: other identity details change nothing."""
        gave_details = any(tracker.get_slot(s) for s in IDENTITY_SLOTS) or (
            other_identity_in_message(tracker)
        )
        if gave_details:
            dispatcher.utter_message(
                response="utter_already_identified",
                customer_name=tracker.get_slot("customer_name") or "",
            )
        return self._clear_inputs(tracker) + [SlotSet(REQUESTED_SLOT, None)]
