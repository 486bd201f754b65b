"""action_product_info against the real catalog."""

from __future__ import annotations

from typing import Optional

import pytest

from actions.catalog import ActionProductInfo
from actions.tests.conftest import Conversation

ACTION = ActionProductInfo()


def ask(convo: Conversation, text: str, product: Optional[str] = None):
    entities = {"product": product} if product else {}
    convo.user(text, intent="product_info", **entities)
    return convo.run(ACTION)


def test_overview_with_options_prices_and_availability(convo: Conversation) -> None:
    result = ask(convo, "tell me about the hiking boots", "hiking boots")
    text = result.text
    assert text.startswith("Hiking Boots: 9 of 19 versions in stock, from $")
    assert "• size: " in text and "• material: " in text and "• waterproof: " in text
    assert result.slot("product") == "Hiking Boots"


@pytest.mark.parametrize(
    "said, canonical",
    [("tee", "T-Shirt"), ("boots", "Hiking Boots"), ("earbuds", "Wireless Earbuds"),
     ("T-SHIRTS", "T-Shirt"), ("power bank", "Portable Charger")],
)
def test_synonyms_resolve_to_catalog_names(convo: Conversation, said: str, canonical: str) -> None:
    result = ask(convo, f"do you sell {said}?", said)
    assert result.text.startswith(f"{canonical}: ")
    assert result.slot("product") == canonical


def test_product_found_in_text_when_nlu_missed_the_entity(convo: Conversation) -> None:
    result = ask(convo, "how much is an office chair")
    assert result.text.startswith("Office Chair: ")


def test_options_filter_variants(convo: Conversation) -> None:
    text = ask(convo, "is the blue one in M available?", "T-Shirt").text
    assert text.startswith("T-Shirt in M, blue: 1 of 1 matching versions in stock.")
    assert "• blue, M, cotton, crew neck — $50.88, in stock" in text


def test_options_filter_with_size_word_and_material(convo: Conversation) -> None:
    text = ask(convo, "hiking boots size 9 in leather?", "hiking boots").text
    assert text.startswith("Hiking Boots in 9, leather:")
    lines = [line for line in text.splitlines() if line.startswith("• ")]
    assert lines and all(line.startswith("• 9, leather") for line in lines)


def test_option_the_product_never_comes_in(convo: Conversation) -> None:
    text = ask(convo, "do you have a pink laptop?", "laptop").text
    assert text.startswith("Laptop doesn't come in pink. Its options are:")
    assert "• color: " in text


def test_product_from_slot_on_follow_up(convo: Conversation) -> None:
    convo.slots["product"] = "Yoga Mat"
    text = ask(convo, "and in pink?").text
    assert text.startswith("Yoga Mat in pink:")


def test_unknown_product(convo: Conversation) -> None:
    result = ask(convo, "do you sell spaceships?", "spaceship")
    assert result.responses == ["utter_product_not_found"]


def test_no_product_asks_which(convo: Conversation) -> None:
    result = ask(convo, "I have a product question")
    assert result.responses == ["utter_ask_product"]
