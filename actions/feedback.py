"""Emotion-aware service (issue 9): offering a human agent, and the satisfaction rating.

- ``action_offer_human``: predicted by ``addons.policies.SentimentEscalationPolicy`` after two
  strongly negative messages in a row; utters ``utter_offer_human`` (yes/no buttons) and
  remembers the offer in ``human_offered``.
- ``validate_rating_form``: the ``rating_form`` asks a 1-5 rating (``rating``) and an optional
  comment (``rating_comment``). Shoppers answer in many ways ("5", "five", "4 stars", "⭐⭐⭐",
  "4/5", a button); "skip"/"no" ends the form without a rating, so rating is never a chore.
- ``action_submit_rating``: stores the rating in the shop (``POST /ratings``, one per
  conversation) and thanks the shopper; a skipped rating stores nothing; a shop that is down
  gets a polite line, never a traceback.

``sentiment_trend`` summarises the mood of a conversation for the handoff ticket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Dict, List, Optional, Union

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.forms import FormValidationAction

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction
from actions.shop_client import Conflict, ShopError, get_client, idempotency_key
from actions.tracker_helpers import current_customer

logger = logging.getLogger(__name__)

FORM = "rating_form"
SKIP = "skip"
MAX_RATING_TRIES = 2  # unusable answers to the rating question before we stop asking

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
STAR_CHARS = "⭐★🌟✮✯"
SKIP_RE = re.compile(
    r"^\W*(skip|no|nope|nah|no thanks?|no,? thank you|not now|later|maybe later|pass|stop|"
    r"none|nothing|nothing else|no comments?|rather not|i'?d rather not|don'?t want to|"
    r"no rating|never ?mind|n/?a)\W*$",
    re.IGNORECASE,
)
SKIP_PAYLOADS = ("/deny", "/stop", "/skip")
_DIGIT_RE = re.compile(r"(?<![\d.,])([0-9]+)(?:[.,]0)?(?![\d.,]*\d)")
_SCALE_RE = re.compile(
    r"\b([0-9]+|one|two|three|four|five)\s*(?:out of|/|of)\s*(?:5|five)\b"
)
_PAYLOAD_RATING_RE = re.compile(r'"rating"\s*:\s*"?\s*([0-9]+)')


def is_skip(text: Any) -> bool:
    """True for answers that mean "I don't want to rate / comment"."""
    value = str(text or "").strip()
    return value.lower().startswith(SKIP_PAYLOADS) or bool(SKIP_RE.match(value))


def parse_rating(value: Any) -> Union[int, str, None]:
    """1-5 from what the shopper typed or clicked; ``SKIP``; or None when it is unclear.

    Unclear on purpose for "3 or 4", "10", "4.5": asking again beats storing a guess.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) if float(value).is_integer() and 1 <= value <= 5 else None
    text = str(value).strip()
    if not text:
        return None
    if is_skip(text):
        return SKIP
    payload = _PAYLOAD_RATING_RE.search(text)
    if payload:
        number = int(payload.group(1))
        return number if 1 <= number <= 5 else None
    stars = sum(text.count(c) for c in STAR_CHARS)
    if stars:
        return stars if stars <= 5 else None
    lowered = text.lower()
    scale = _SCALE_RE.search(lowered)  # "4 out of 5", "4/5", "three of five"
    if scale:
        first = scale.group(1)
        number = int(first) if first.isdigit() else NUMBER_WORDS[first]
        return number if 1 <= number <= 5 else None
    found = {int(n) for n in _DIGIT_RE.findall(lowered)}
    words = {NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", lowered) if w in NUMBER_WORDS}
    candidates = found | words
    if len(candidates) != 1:
        return None
    number = candidates.pop()
    return number if 1 <= number <= 5 else None


def clean_comment(value: Any) -> str:
    """The comment as stored: "" for no comment, else trimmed text of at most 1000 chars."""
    text = " ".join(str(value or "").split())
    if not text or is_skip(text) or text.startswith("/"):
        return ""
    return text[:1000]


def _user_turns_since_form(tracker: Tracker) -> int:
    """User messages since ``rating_form`` was last activated (the current one included)."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == FORM:
            break
        if event.get("event") == "user":
            count += 1
    return count


# --------------------------------------------------------------------------- escalation
class ActionOfferHuman(NamedAction):
    """Offers a human agent (buttons yes/no); the yes button is ``/request_human``."""

    action_name = "action_offer_human"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        dispatcher.utter_message(response="utter_offer_human")
        return [SlotSet("human_offered", True)]


def sentiment_trend(tracker: Tracker, last: int = 6) -> Optional[str]:
    """One line for the handoff ticket: the mood of the last messages, and where it is going.

    E.g. ``Sentiment: -0.42, -0.71, -0.83 (negative, worsening; 2 strongly negative).``;
    None when the NLU stored no sentiment (older model).
    """
    scores: List[float] = []
    strong = 0
    for event in tracker.events:
        if event.get("event") != "user":
            continue
        sentiment = (event.get("parse_data") or {}).get("sentiment")
        if isinstance(sentiment, dict) and isinstance(sentiment.get("compound"), (int, float)):
            scores.append(float(sentiment["compound"]))
            strong += bool(sentiment.get("strongly_negative"))
    if not scores:
        return None
    recent = scores[-last:]
    mean = sum(recent) / len(recent)
    mood = "negative" if mean <= -0.3 else "positive" if mean >= 0.3 else "neutral"
    details = [mood]
    if len(recent) >= 2:
        change = recent[-1] - recent[0]
        details.append("worsening" if change <= -0.2 else "improving" if change >= 0.2
                       else "steady")
    if strong:
        details.append(f"{strong} strongly negative")
    values = ", ".join(f"{s:+.2f}" for s in recent)
    return f"Sentiment: {values} ({', '.join(details)})."


# --------------------------------------------------------------------------- rating
class ValidateRatingForm(FormValidationAction):
    """Turns the shopper's answers into a 1-5 rating and an optional comment."""

    def name(self) -> str:
        return "validate_rating_form"

    async def validate_rating(
        self, value: Any, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A valid rating fills the slot; "skip" (or two unusable answers) ends the form."""
        rating = parse_rating(value)
        if isinstance(rating, int):
            return {"rating": rating}
        if rating == SKIP or _user_turns_since_form(tracker) >= MAX_RATING_TRIES:
            # requested_slot None = the form is done; no rating -> nothing stored
            return {"rating": None, "rating_comment": None, "requested_slot": None}
        dispatcher.utter_message(response="utter_invalid_rating")
        return {"rating": None}

    async def validate_rating_comment(
        self, value: Any, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Any text is a comment; "no", "skip" or the no-comment button is an empty one."""
        return {"rating_comment": clean_comment(value)}


class ActionSubmitRating(NamedAction):
    """Stores the rating (if any) in the shop and thanks the shopper."""

    action_name = "action_submit_rating"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        done = [SlotSet("rating_done", True), SlotSet("rating", None),
                SlotSet("rating_comment", None)]
        rating = parse_rating(tracker.get_slot("rating"))
        if not isinstance(rating, int):
            dispatcher.utter_message(response="utter_rating_skipped")
            return done
        comment = clean_comment(tracker.get_slot("rating_comment")) or None
        try:
            await asyncio.to_thread(  # blocking HTTP off the event loop
                get_client().create_rating,
                conversation_id=tracker.sender_id,
                rating=rating,
                comment=comment,
                customer_id=current_customer(tracker),
                idem_key=idempotency_key("rating", tracker.sender_id, rating, comment or ""),
            )
        except Conflict:
            logger.info("conversation %s was already rated", tracker.sender_id)
        except ShopError as exc:
            logger.warning("rating not stored: %s", exc)
            dispatcher.utter_message(response="utter_rating_failed")
            return done
        except Exception:  # noqa: BLE001 - never a traceback to the shopper
            logger.exception("rating not stored")
            dispatcher.utter_message(response="utter_rating_failed")
            return done
        dispatcher.utter_message(response="utter_rating_thanks", rating=rating)
        return done


def rating_buttons() -> List[Dict[str, str]]:
    """The buttons suggested for ``utter_ask_rating`` (payloads the form understands)."""
    buttons = [{"title": "⭐" * n, "payload": "/inform" + json.dumps({"rating": str(n)})}
               for n in range(5, 0, -1)]
    return buttons + [{"title": "Skip", "payload": "/deny"}]
