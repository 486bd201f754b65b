"""actions/text_parsing.py: order ids, and a message parsed once into a Turn (no Rasa)."""

from __future__ import annotations

import pytest

from actions.text_parsing import STOP_WORDS, Turn, find_order_id, normalize_order_id

pytestmark = pytest.mark.no_shop


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("#W1234567", "#W1234567"), ("W1234567", "#W1234567"), ("w1234567", "#W1234567"),
        ("w 1234567", "#W1234567"), ("#w 123 4567", "#W1234567"), (" #W1234567. ", "#W1234567"),
        ("1234567", "#W1234567"), ("W123456", None), ("W12345678", None), ("banana", None),
        ("", None), (None, None),
    ],
)
def test_normalize_order_id(raw, expected) -> None:
    assert normalize_order_id(raw) == expected


def test_find_order_id_in_text() -> None:
    assert find_order_id("no, I meant w 7654321 sorry") == "#W7654321"
    assert find_order_id("show 1234567") is None
    assert find_order_id("no, I meant 1234567", bare=True) == "#W1234567"
    assert find_order_id("zip 80279, call 555-1234567", bare=True) is None


def test_a_turn_is_parsed_once_from_rasa_parse_data() -> None:
    turn = Turn.parse({
        "text": "return the boots from w 7654321, they're too small",
        "intent": {"name": "return_order", "confidence": 0.9},
        "entities": [{"entity": "return_reason", "value": "too small"},
                     {"entity": "order_id", "value": ""},
                     {"entity": "return_reason", "value": "too small!"}],
    })
    assert turn.intent == "return_order"
    assert turn.entity("return_reason") == "too small!"  # the last value wins
    assert turn.entity("order_id") is None and "order_id" in turn.entity_names
    assert turn.order_id() == "#W7654321"  # from the text when the entity is empty
    assert turn.words == turn.text and not turn.is_payload


def test_a_button_payload_has_no_words() -> None:
    turn = Turn.parse({"text": '/inform{"order_id":"#W1234567"}', "intent": {"name": "inform"},
                       "entities": [{"entity": "order_id", "value": "#W1234567"}]})
    assert turn.is_payload and turn.words == ""
    assert turn.order_id() == "#W1234567"
    assert Turn.parse({}).text == "" and Turn.parse({}).intent is None


def test_stop_words_are_function_words_only() -> None:
    assert {"the", "and", "please"} <= STOP_WORDS
    assert not {"refund", "order", "cancel", "gift", "card"} & STOP_WORDS


def test_a_reminder_rasa_triggered_carries_no_words() -> None:
    """The handoff's wait reminder ("EXTERNAL: EXTERNAL_handoff_wait") is no name, reason or
    address a form could read."""
    from actions.text_parsing import Turn

    turn = Turn.parse({"text": "EXTERNAL: EXTERNAL_handoff_wait",
                       "intent": {"name": "EXTERNAL_handoff_wait"}})
    assert turn.text == "" and turn.words == "" and turn.intent == "EXTERNAL_handoff_wait"


def test_a_request_for_suggestions_is_told_from_a_product_question() -> None:
    """Issue 21: "do you have anything like my boots but cheaper?" asks for suggestions even
    when the NLU took it for a product question; "is the backpack in stock" does not."""
    from actions.text_parsing import asks_for_suggestions

    for text in ("do you have anything like my hiking boots but cheaper?",
                 "what would you recommend for a rainy hike", "any suggestions for a gift",
                 "something similar to my headphones but wireless", "recomend me a laptop"):
        assert asks_for_suggestions(text), text
    for text in ("is the blue backpack in stock", "tell me about the hiking boots",
                 "what sizes do the running shoes come in", '/product_info{"product":"Laptop"}'):
        assert not asks_for_suggestions(text), text
