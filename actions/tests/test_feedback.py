"""Offer of a human, the rating form's validation and the rating's submission (real shop)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.feedback import (
    ActionOfferHuman,
    ActionSubmitRating,
    ValidateRatingForm,
    parse_rating,
    rating_buttons,
    sentiment_trend,
)
from actions.shop_client import ShopClient
from actions.tests.conftest import MOHAMED, Result, identified_slots, initial_slots

# What the lead adds to domain.yml (also listed in the issue-9 hand-over report).
DOMAIN_ADDITIONS = yaml.safe_load("""
slots:
  sentiment:
    type: categorical
    values: [negative, neutral, positive]
    influence_conversation: false
    mappings: [{type: from_entity, entity: sentiment}]
  human_offered:
    type: bool
    initial_value: false
    influence_conversation: false
    mappings: [{type: custom}]
  rating:
    type: any  # the raw answer ("4 stars") until validate_rating_form makes it 1-5
    influence_conversation: false
    mappings:
      - type: from_text
        not_intent: [request_human]
        conditions: [{active_loop: rating_form, requested_slot: rating}]
  rating_comment:
    type: text
    influence_conversation: false
    mappings:
      - type: from_text
        not_intent: [request_human]
        conditions: [{active_loop: rating_form, requested_slot: rating_comment}]
  rating_done:
    type: bool
    initial_value: false
    influence_conversation: true
    mappings: [{type: custom}]
forms:
  rating_form:
    required_slots: [rating, rating_comment]
responses:
  utter_ask_rating:
    - text: "Before you go: how would you rate this conversation, from 1 (poor) to 5 (great)?"
  utter_invalid_rating:
    - text: "Please give a number from 1 to 5 (or say \\"skip\\")."
  utter_ask_rating_comment:
    - text: "Thanks! Anything you'd like to add? (or say \\"no\\")"
  utter_rating_thanks:
    - text: "Thank you for your feedback — you rated us {rating}/5."
  utter_rating_skipped:
    - text: "No problem. Thanks for chatting with us!"
  utter_rating_failed:
    - text: "Sorry, I couldn't save your rating right now — thank you all the same!"
""")


@pytest.fixture(scope="module")
def full_domain(domain: Dict[str, Any]) -> Dict[str, Any]:
    merged = {**domain}
    for section in ("slots", "forms", "responses"):
        merged[section] = {**(domain.get(section) or {}), **DOMAIN_ADDITIONS[section]}
    return merged


def user_event(text: str, intent: str = "inform", sentiment: Optional[Dict[str, Any]] = None
               ) -> Dict[str, Any]:
    parse_data: Dict[str, Any] = {"text": text, "intent": {"name": intent, "confidence": 1.0},
                                  "entities": []}
    if sentiment is not None:
        parse_data["sentiment"] = sentiment
    return {"event": "user", "text": text, "parse_data": parse_data}


class RatingChat:
    """A conversation inside rating_form, as Rasa sends it to validate_rating_form."""

    def __init__(self, domain: Dict[str, Any], slots: Optional[Dict[str, Any]] = None) -> None:
        self.domain = domain
        self.sender = "rating-" + secrets.token_hex(4)
        self.slots = initial_slots(domain) | (slots or {})
        self.events: List[Dict[str, Any]] = [
            {"event": "action", "name": "rating_form"},
            {"event": "active_loop", "name": "rating_form"},
            {"event": "slot", "name": "requested_slot", "value": "rating"},
        ]
        self.slots["requested_slot"] = "rating"
        self.latest: Dict[str, Any] = {}

    def answer(self, text: str) -> Result:
        """The shopper answers the requested slot (from_text), then the validation runs."""
        slot = self.slots["requested_slot"]
        message = user_event(text)
        self.latest = message["parse_data"]
        self.events += [{"event": "action", "name": "action_listen"}, message,
                        {"event": "action", "name": "rating_form"},
                        {"event": "slot", "name": slot, "value": text}]
        self.slots[slot] = text
        return self.run(ValidateRatingForm())

    def run(self, action: Any) -> Result:
        tracker = Tracker(self.sender, dict(self.slots), dict(self.latest),
                          list(self.events), False, None,
                          {"name": "rating_form"} if self.slots.get("requested_slot") else {},
                          "action_listen")
        dispatcher = CollectingDispatcher()
        events = asyncio.run(action.run(dispatcher, tracker, self.domain))
        for event in events:
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
        self.events += events
        return Result(events, dispatcher.messages, self.domain)


# ------------------------------------------------------------------ rating parsing


@pytest.mark.no_shop
@pytest.mark.parametrize("text,expected", [
    ("5", 5), ("five", 5), ("4 stars", 4), ("⭐⭐⭐", 3), ("4/5", 4), ("3 out of five", 3),
    ("I'd give it a 2", 2), ('/inform{"rating": "1"}', 1), ("Five stars!!", 5), ("one star", 1),
    ("skip", "skip"), ("No thanks", "skip"), ("/deny", "skip"), ("maybe later", "skip"),
    ("10", None), ("0", None), ("3 or 4", None), ("4.5", None), ("great", None), ("", None),
    ("⭐⭐⭐⭐⭐⭐", None), (5, 5), (True, None),
])
def test_parse_rating(text: Any, expected: Any) -> None:
    assert parse_rating(text) == expected


@pytest.mark.no_shop
def test_every_suggested_button_parses() -> None:
    parsed = [parse_rating(b["payload"]) for b in rating_buttons()]
    assert parsed == [5, 4, 3, 2, 1, "skip"]


# ------------------------------------------------------------------ the form


@pytest.mark.no_shop
def test_form_takes_rating_then_comment(full_domain: Dict[str, Any]) -> None:
    chat = RatingChat(full_domain)
    result = chat.answer("4 stars")
    assert result.slot("rating") == 4 and result.messages == []
    chat.slots["requested_slot"] = "rating_comment"
    result = chat.answer("  Quick answers,   thanks ")
    assert result.slot("rating_comment") == "Quick answers, thanks"


@pytest.mark.no_shop
@pytest.mark.parametrize("answer", ["no", "skip", "No thanks.", "/deny"])
def test_no_comment_is_empty(full_domain: Dict[str, Any], answer: str) -> None:
    chat = RatingChat(full_domain, {"rating": 5.0})
    chat.slots["requested_slot"] = "rating_comment"
    assert chat.answer(answer).slot("rating_comment") == ""


@pytest.mark.no_shop
def test_unclear_rating_is_asked_again_then_given_up(full_domain: Dict[str, Any]) -> None:
    chat = RatingChat(full_domain)
    first = chat.answer("it was ok I guess")
    assert first.responses == ["utter_invalid_rating"] and first.slot("rating") is None
    assert not first.sets("requested_slot")  # still asking
    second = chat.answer("whatever")
    assert second.messages == []  # not nagging a third time: the form ends without a rating
    assert second.slot("requested_slot") is None and second.slot("rating") is None


@pytest.mark.no_shop
def test_skip_ends_the_form_without_rating(full_domain: Dict[str, Any]) -> None:
    chat = RatingChat(full_domain)
    result = chat.answer("skip")
    assert result.slot("requested_slot") is None  # Rasa deactivates the form
    assert result.slot("rating") is None and result.messages == []


# ------------------------------------------------------------------ submission (real shop)


def submit(chat: RatingChat) -> Result:
    chat.slots["requested_slot"] = None
    chat.events += [{"event": "active_loop", "name": None},
                    {"event": "action", "name": "action_submit_rating"}]
    return chat.run(ActionSubmitRating())


def stored(client: ShopClient, sender: str) -> List[Dict[str, Any]]:
    return [r for r in client.list_ratings(limit=1000)["ratings"]
            if r["conversation_id"] == sender]


def test_submit_stores_the_rating_with_the_customer(full_domain: Dict[str, Any],
                                                   client: ShopClient) -> None:
    chat = RatingChat(full_domain, identified_slots(MOHAMED))
    chat.answer("five")
    chat.slots["requested_slot"] = "rating_comment"
    chat.answer("Fast and friendly")
    result = submit(chat)
    assert result.responses == ["utter_rating_thanks"]
    assert result.text == "Thank you for your feedback — you rated us 5/5."
    assert result.slot("rating_done") is True and result.slot("rating") is None
    [rating] = stored(client, chat.sender)
    assert rating["rating"] == 5 and rating["comment"] == "Fast and friendly"
    assert rating["customer_id"] == MOHAMED["user_id"]
    # Rasa re-running the action: same idempotency key, still one rating, same thanks
    chat.slots.update({"rating": 5.0, "rating_comment": "Fast and friendly"})
    assert submit(chat).responses == ["utter_rating_thanks"]
    assert len(stored(client, chat.sender)) == 1


def test_submit_without_comment_or_identification(full_domain: Dict[str, Any],
                                                  client: ShopClient) -> None:
    chat = RatingChat(full_domain, {"customer_id": "mohamed_li_1979", "identified": False})
    chat.answer("⭐⭐")
    chat.slots["requested_slot"] = "rating_comment"
    chat.answer("no")
    assert submit(chat).responses == ["utter_rating_thanks"]
    [rating] = stored(client, chat.sender)
    assert rating["rating"] == 2 and rating["comment"] is None
    assert rating["customer_id"] is None  # not identified: not attributed to anyone


def test_second_rating_of_the_conversation_is_not_an_error(full_domain: Dict[str, Any],
                                                           client: ShopClient) -> None:
    chat = RatingChat(full_domain, {"rating": 3.0, "rating_comment": ""})
    assert submit(chat).responses == ["utter_rating_thanks"]
    chat.slots.update({"rating": 1.0, "rating_comment": "changed my mind"})
    assert submit(chat).responses == ["utter_rating_thanks"]  # 409 from the shop: first kept
    assert [r["rating"] for r in stored(client, chat.sender)] == [3]


def test_skipped_rating_stores_nothing(full_domain: Dict[str, Any], client: ShopClient) -> None:
    chat = RatingChat(full_domain)
    chat.answer("no thanks")
    result = submit(chat)
    assert result.responses == ["utter_rating_skipped"]
    assert result.slot("rating_done") is True
    assert stored(client, chat.sender) == []


@pytest.mark.no_shop
def test_shop_down_is_a_polite_message(full_domain: Dict[str, Any], shop_down: str) -> None:
    chat = RatingChat(full_domain, {"rating": 4.0, "rating_comment": "ok"})
    result = submit(chat)
    assert result.responses == ["utter_rating_failed"]
    assert "couldn't save your rating" in result.text
    assert result.slot("rating_done") is True


# ------------------------------------------------------------------ escalation pieces


@pytest.mark.no_shop
def test_offer_human_utters_the_offer_and_remembers_it(full_domain: Dict[str, Any]) -> None:
    chat = RatingChat(full_domain)
    result = chat.run(ActionOfferHuman())
    assert result.responses == ["utter_offer_human"]
    assert result.slot("human_offered") is True
    buttons = full_domain["responses"]["utter_offer_human"][0]["buttons"]
    assert [b["payload"] for b in buttons] == ["/request_human", "/deny"]


@pytest.mark.no_shop
def test_sentiment_trend_for_the_handoff_summary() -> None:
    def tracker(*sentiments: Optional[Dict[str, Any]]) -> Tracker:
        events = [user_event("x", sentiment=s) for s in sentiments]
        return Tracker("s", {}, {}, events, False, None, {}, "action_listen")

    worse = tracker({"compound": -0.1}, {"compound": -0.6, "strongly_negative": True},
                    {"compound": -0.8, "strongly_negative": True})
    assert sentiment_trend(worse) == (
        "Sentiment: -0.10, -0.60, -0.80 (negative, worsening, 2 strongly negative).")
    better = tracker({"compound": -0.4}, {"compound": 0.5})
    assert sentiment_trend(better) == "Sentiment: -0.40, +0.50 (neutral, improving)."
    assert sentiment_trend(tracker(None)) is None
    many = tracker(*[{"compound": 0.0}] * 10)
    assert sentiment_trend(many, last=3) == "Sentiment: +0.00, +0.00, +0.00 (neutral, steady)."
