"""The held-out NLU set measures generalisation only if it is never trained on."""

from __future__ import annotations

from pathlib import Path

from rasa.shared.nlu.training_data.loading import load_data

ROOT = Path(__file__).resolve().parents[1]


def _examples(folder: str) -> dict:
    data = load_data(str(ROOT / folder))
    return {m.get("text").strip().lower(): m.get("intent") for m in data.intent_examples}


def test_held_out_examples_are_not_in_the_training_data() -> None:
    training, held_out = _examples("data/nlu"), _examples("tests/nlu")
    assert len(held_out) >= 50
    assert sorted(set(training) & set(held_out)) == []


def test_held_out_intents_are_all_trained() -> None:
    training, held_out = _examples("data/nlu"), _examples("tests/nlu")
    assert set(held_out.values()) <= set(training.values())
