"""Message sentiment for the NLU pipeline (VADER), so replies and escalation can react to mood.

Why VADER: it is lexicon-based (the lexicon ships inside ``vaderSentiment``), needs no training
data and no model download, runs in microseconds, and handles the way shoppers vent (caps,
"!!!", "not good", emoji). Why an NLU component: the score then lives in the parse result of
each message, so it is stored with the ``UserUttered`` event in the tracker store (reports,
policies) and is visible in ``/model/parse``.

Each processed message gets

- ``message["sentiment"] = {"label", "compound", "strongly_negative"}`` (an output property, so
  it survives into the parse data), and
- an entity ``{"entity": "sentiment", "value": label, "extractor": "SentimentAnalyzer"}`` over
  the whole text, so a slot ``sentiment`` can be filled by a ``from_entity`` mapping (and used in
  response conditions).

Keeping ``rasa test nlu`` clean: Rasa evaluates every extractor that appears in the predictions,
one report per extractor; our message-level "entity" would get a meaningless report of its own
(every token labelled ``sentiment``). Rasa drops the entities of the extractors listed in
``PRETRAINED_EXTRACTORS`` (Duckling, spaCy: extractors that are not trained on the data) before
evaluating, so this module adds its extractor name to that set when it is imported, which
happens whenever a model that uses it is loaded. DIET's report is never affected either way
(predictions are compared per extractor). The span covers the whole text because Rasa's story
writers and evaluation need ``start``/``end`` on every entity.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import rasa.nlu.constants
import rasa.shared.nlu.constants
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from addons._component import ConfiguredGraphComponent

logger = logging.getLogger(__name__)

SENTIMENT = "sentiment"  # the message property, the entity type and the suggested slot name
EXTRACTOR_NAME = "SentimentAnalyzer"
NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"

# Emoji that VADER's emoji lexicon describes with words it does not score ("pouting face").
EMOJI_WORDS: Dict[str, str] = {
    "😡": "furious",
    "🤬": "furious",
    "😤": "annoyed",
    "😒": "annoyed",
    "🙄": "annoyed",
    "👎": "bad",
    "👍": "good",
    "❤️": "love",
    "❤": "love",
}

# Not an evaluation target: see the module docstring (same set object rasa.nlu.test reads).
for _extractors in {id(s): s for s in (rasa.nlu.constants.PRETRAINED_EXTRACTORS,
                                       rasa.shared.nlu.constants.PRETRAINED_EXTRACTORS)}.values():
    _extractors.add(EXTRACTOR_NAME)


def classify(
    compound: float, negative_threshold: float, positive_threshold: float
) -> str:
    """``negative`` at or below the negative threshold, ``positive`` at or above the positive."""
    if compound <= negative_threshold:
        return NEGATIVE
    if compound >= positive_threshold:
        return POSITIVE
    return NEUTRAL


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class SentimentAnalyzer(ConfiguredGraphComponent, EntityExtractorMixin):
    """Scores each message with VADER and exposes the score as a property and an entity."""

    # thresholds on VADER's compound score (-1..1) and what to emit
    DEFAULTS = {
        # label "negative" at or below this compound score
        "negative_threshold": -0.3,
        # "strongly_negative" (used for escalation) at or below this one
        "strong_negative_threshold": -0.5,
        # label "positive" at or above this one
        "positive_threshold": 0.3,
        # also add the label as a `sentiment` entity (for a from_entity slot mapping)
        "add_entity": True,
        # button payloads ("/affirm", '/inform{"x": 1}') carry no mood: always neutral
        "neutral_payloads": True,
        # extra emoji -> word hints, merged over EMOJI_WORDS
        "emoji_words": {},
    }

    def __init__(self, config: Dict[str, Any], *args: Any, **kwargs: Any) -> None:
        """Validates the thresholds once, so a typo in config.yml fails at training time.

        Nothing is trained or saved (the lexicon comes with the package), so the storage
        ``create`` passes on is optional.
        """
        super().__init__(config, *args, **kwargs)
        self.negative_threshold = float(self._config["negative_threshold"])
        self.strong_threshold = float(self._config["strong_negative_threshold"])
        self.positive_threshold = float(self._config["positive_threshold"])
        if not -1.0 <= self.strong_threshold <= self.negative_threshold < self.positive_threshold:
            raise ValueError(
                "SentimentAnalyzer needs -1 <= strong_negative_threshold <= negative_threshold "
                f"< positive_threshold, got {self.strong_threshold}, {self.negative_threshold}, "
                f"{self.positive_threshold}"
            )
        self.add_entity = bool(self._config["add_entity"])
        self.neutral_payloads = bool(self._config["neutral_payloads"])
        self.emoji_words = {**EMOJI_WORDS, **(self._config.get("emoji_words") or {})}
        self._analyzer = SentimentIntensityAnalyzer()

    @property
    def name(self) -> str:
        """The extractor name written on the entity (Rasa's convention: the class name)."""
        return EXTRACTOR_NAME

    @staticmethod
    def required_packages() -> List[str]:
        """Rasa checks these are importable before training."""
        return ["vaderSentiment"]

    def score(self, text: Optional[str]) -> Dict[str, Any]:
        """The sentiment of one text: label, compound score and the strong-negative flag."""
        text = (text or "").strip()
        if not text or (self.neutral_payloads and text.startswith("/")):
            compound = 0.0
        else:
            for emoji, word in self.emoji_words.items():
                if emoji in text:
                    text = text.replace(emoji, f" {word} ")
            compound = round(float(self._analyzer.polarity_scores(text)["compound"]), 4)
        return {
            "label": classify(compound, self.negative_threshold, self.positive_threshold),
            "compound": compound,
            "strongly_negative": compound <= self.strong_threshold,
        }

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds the sentiment property (and entity) to every message."""
        for message in messages:
            text = message.get(TEXT) or ""
            sentiment = self.score(text)
            message.set(SENTIMENT, sentiment, add_to_output=True)
            if self.add_entity:
                entity = {
                    ENTITY_ATTRIBUTE_TYPE: SENTIMENT,
                    ENTITY_ATTRIBUTE_VALUE: sentiment["label"],
                    ENTITY_ATTRIBUTE_START: 0,
                    ENTITY_ATTRIBUTE_END: len(text),
                    EXTRACTOR: self.name,
                }
                others = [
                    e for e in message.get(ENTITIES, []) if e.get(EXTRACTOR) != self.name
                ]
                message.set(ENTITIES, others + [entity], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples are left alone: nothing downstream learns from sentiment."""
        return training_data
