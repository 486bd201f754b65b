"""SentimentAnalyzer: scores shop messages, and really runs inside a trained Rasa NLU pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict

import pytest
import rasa.nlu.constants
import rasa.shared.nlu.constants
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import SQLTrackerStore
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.model_training import train_nlu
from rasa.nlu.test import _remove_entities_of_extractors
from rasa.shared.nlu.training_data.message import Message

from addons.sentiment import EXTRACTOR_NAME, SentimentAnalyzer


def make(tmp_path: Path, **config: Any) -> SentimentAnalyzer:
    return SentimentAnalyzer.create(
        {**SentimentAnalyzer.get_default_config(), **config},
        LocalModelStorage(tmp_path),
        Resource("sentiment"),
        ExecutionContext(GraphSchema({}), node_name="sentiment"),
    )


@pytest.fixture
def analyzer(tmp_path: Path) -> SentimentAnalyzer:
    return make(tmp_path)


def parse(component: SentimentAnalyzer, text: str) -> Message:
    message = Message(data={"text": text})
    component.process([message])
    return message


@pytest.mark.parametrize("text", [
    "I am so frustrated, this is the worst service ever",
    "I HATE this useless bot!!!",
    "WTF is wrong with you people",
    "my package never arrived and I am angry",
    "This is unacceptable, you lost my order again 😡",
])
def test_angry_shoppers_are_strongly_negative(analyzer: SentimentAnalyzer, text: str) -> None:
    sentiment = parse(analyzer, text).get("sentiment")
    assert sentiment["label"] == "negative"
    assert sentiment["strongly_negative"] is True
    assert sentiment["compound"] <= -0.5


def test_mildly_annoyed_is_negative_but_not_strongly(analyzer: SentimentAnalyzer) -> None:
    sentiment = analyzer.score("This is ridiculous, my order is three weeks late")
    assert sentiment["label"] == "negative" and -0.5 < sentiment["compound"] <= -0.3
    assert sentiment["strongly_negative"] is False


@pytest.mark.parametrize("text", [
    "Thanks a lot, that was really helpful!",
    "great, thank you so much 🙂",
    "Could you please check my order? I love your shop",
])
def test_polite_shoppers_are_positive(analyzer: SentimentAnalyzer, text: str) -> None:
    sentiment = analyzer.score(text)
    assert sentiment["label"] == "positive" and sentiment["strongly_negative"] is False


@pytest.mark.parametrize("text", [
    "where is my order?", "W1234567", "mohamed.li8414@example.com", "no", "track my package",
    "/request_human", '/inform{"order_id": "#W1234567"}', "⭐⭐⭐",
])
def test_plain_requests_and_payloads_are_neutral(analyzer: SentimentAnalyzer, text: str) -> None:
    sentiment = analyzer.score(text)
    assert sentiment["label"] == "neutral" and sentiment["strongly_negative"] is False


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text_is_neutral_zero(analyzer: SentimentAnalyzer, text: Any) -> None:
    assert analyzer.score(text) == {"label": "neutral", "compound": 0.0,
                                    "strongly_negative": False}
    message = Message(data={"text": text or ""})
    analyzer.process([message])
    assert message.get("sentiment")["label"] == "neutral"


def test_emoji_alone_carry_mood(analyzer: SentimentAnalyzer) -> None:
    assert analyzer.score("😡😡")["label"] == "negative"
    assert analyzer.score("😠")["label"] == "negative"
    assert analyzer.score("👍")["label"] == "positive"
    custom = SentimentAnalyzer({"emoji_words": {"🐌": "slow terrible"}})
    assert custom.score("🐌🐌")["label"] == "negative"


def test_thresholds_are_configurable(tmp_path: Path) -> None:
    text = "this is ridiculous"  # VADER compound about -0.36
    compound = make(tmp_path).score(text)["compound"]
    assert -0.5 < compound < -0.3
    assert make(tmp_path).score(text)["label"] == "negative"
    lenient = make(tmp_path, negative_threshold=-0.4, strong_negative_threshold=-0.8)
    assert lenient.score(text)["label"] == "neutral"
    strict = make(tmp_path, negative_threshold=-0.1, strong_negative_threshold=-0.3)
    assert strict.score(text) == {"label": "negative", "compound": compound,
                                  "strongly_negative": True}
    with pytest.raises(ValueError, match="threshold"):
        make(tmp_path, negative_threshold=-0.6, strong_negative_threshold=-0.5)


def test_entity_for_the_slot_replaces_its_own_and_keeps_others(
    analyzer: SentimentAnalyzer,
) -> None:
    order = {"entity": "order_id", "value": "W1", "start": 0, "end": 2, "extractor": "DIET"}
    message = Message(data={"text": "W1 is late, terrible service", "entities": [order]})
    analyzer.process([message])
    analyzer.process([message])  # processing twice must not duplicate the entity
    assert message.get("entities") == [order, {
        "entity": "sentiment", "value": "negative", "start": 0, "end": 28,
        "extractor": EXTRACTOR_NAME}]
    assert {"sentiment", "entities"} <= set(message.as_dict(only_output_properties=True))


def test_without_entity(tmp_path: Path) -> None:
    message = parse(make(tmp_path, add_entity=False), "awful")
    assert message.get("sentiment")["label"] == "negative"
    assert not message.get("entities")


def test_rasa_nlu_evaluation_ignores_the_sentiment_entity() -> None:
    """`rasa test nlu` drops entities of PRETRAINED_EXTRACTORS before evaluating extractors."""
    assert EXTRACTOR_NAME in rasa.nlu.constants.PRETRAINED_EXTRACTORS
    assert EXTRACTOR_NAME in rasa.shared.nlu.constants.PRETRAINED_EXTRACTORS
    result: Dict[str, Any] = {"entities": [
        {"entity": "order_id", "value": "W1", "start": 0, "end": 2,
         "extractor": "DIETClassifier"},
        {"entity": "sentiment", "value": "neutral", "start": 0, "end": 2,
         "extractor": EXTRACTOR_NAME},
    ]}
    _remove_entities_of_extractors(result, rasa.nlu.constants.PRETRAINED_EXTRACTORS)
    assert [e["entity"] for e in result["entities"]] == ["order_id"]


# ------------------------------------------------------------------ inside a real Rasa pipeline

CONFIG = """\
recipe: default.v1
language: en
assistant_id: sentiment-test
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LogisticRegressionClassifier
  - name: addons.sentiment.SentimentAnalyzer
    strong_negative_threshold: -0.6
policies: []
"""

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
- intent: order_status
  examples: |
    - where is my order
    - what is the status of my order
    - my order has not arrived
"""


@pytest.fixture(scope="module")
def nlu_agent(tmp_path_factory: pytest.TempPathFactory) -> Agent:
    """A tiny NLU model trained with the component, loaded as `rasa run` would."""
    root = tmp_path_factory.mktemp("sentiment-model")
    (root / "config.yml").write_text(CONFIG)
    (root / "nlu.yml").write_text(NLU)
    model = train_nlu(str(root / "config.yml"), str(root / "nlu.yml"), str(root / "models"),
                      fixed_model_name="nlu")
    assert model, "training failed"
    return Agent.load(model)


def test_parse_output_carries_sentiment_and_entity(nlu_agent: Agent) -> None:
    """What /model/parse returns (the server calls agent.parse_message)."""
    parsed = asyncio.run(nlu_agent.parse_message("my order has not arrived, this is awful!!"))
    assert parsed["intent"]["name"] == "order_status"
    assert parsed["sentiment"]["label"] == "negative"
    assert parsed["sentiment"]["compound"] < -0.3
    # -0.6 from config.yml, not the default -0.5
    assert parsed["sentiment"]["strongly_negative"] is (parsed["sentiment"]["compound"] <= -0.6)
    assert {"entity": "sentiment", "value": "negative", "start": 0, "end": 41,
            "extractor": "SentimentAnalyzer"} in parsed["entities"]
    calm = asyncio.run(nlu_agent.parse_message("hello"))
    assert calm["sentiment"] == {"label": "neutral", "compound": 0.0, "strongly_negative": False}


def test_sentiment_survives_into_the_stored_tracker(nlu_agent: Agent, tmp_path: Path) -> None:
    """latest_message.parse_data keeps it, through a SQL tracker store round trip."""
    store = SQLTrackerStore(nlu_agent.domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    nlu_agent.tracker_store = store
    nlu_agent.processor.tracker_store = store
    asyncio.run(nlu_agent.processor.log_message(
        UserMessage("I hate waiting, terrible service", sender_id="angry"), should_save_tracker=True
    ))
    tracker = asyncio.run(SQLTrackerStore(nlu_agent.domain, dialect="sqlite",
                                          db=str(tmp_path / "t.db")).retrieve("angry"))
    assert tracker is not None
    sentiment = tracker.latest_message.parse_data["sentiment"]
    assert sentiment["label"] == "negative" and sentiment["strongly_negative"] is True
