"""The intent classifier on real Rasa featurizers and the packaged transformer weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from addons.classifiers import MODEL_FILE, TfidfEmbeddingIntentClassifier
from addons.featurizers import PackagedLanguageModelFeaturizer

EXAMPLES = {
    "track_order": ["where is my parcel", "track my package", "when will my delivery come",
                    "where is the box I ordered"],
    "cancel_order": ["cancel my order", "I don't want the order anymore",
                     "please cancel it", "stop my purchase"],
    "greet": ["hello", "hi there", "good morning", "hey"],
}
CONTEXT = ExecutionContext(GraphSchema({}), "test")


class Pipeline:
    """Tokenizer, word counts and (optionally) the MiniLM featurizer, as in config.yml."""

    def __init__(self, storage: LocalModelStorage, dense: PackagedLanguageModelFeaturizer | None):
        self.tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
        self.counts = CountVectorsFeaturizer.create(
            CountVectorsFeaturizer.get_default_config(), storage,
            Resource("counts"), CONTEXT)
        self.dense = dense

    def training_data(self, examples: Dict[str, List[str]]) -> TrainingData:
        data = TrainingData([Message(data={TEXT: text, INTENT: intent})
                             for intent, texts in examples.items() for text in texts])
        self.tokenizer.process_training_data(data)
        self.counts.train(data)
        self.counts.process_training_data(data)
        if self.dense:
            self.dense.process_training_data(data)
        return data

    def messages(self, *texts: str) -> List[Message]:
        messages = [Message(data={TEXT: text}) for text in texts]
        self.tokenizer.process(messages)
        self.counts.process(messages)
        if self.dense:
            self.dense.process(messages)
        return messages


@pytest.fixture(scope="module")
def minilm() -> PackagedLanguageModelFeaturizer:
    return PackagedLanguageModelFeaturizer.create(
        PackagedLanguageModelFeaturizer.get_default_config(),
        LocalModelStorage(Path("/tmp")), None, CONTEXT)


def _trained(tmp_path: Path, minilm, config: Dict[str, Any] | None = None,
             examples: Dict[str, List[str]] = EXAMPLES):
    tmp_path.mkdir(parents=True, exist_ok=True)
    storage = LocalModelStorage(tmp_path)
    pipeline = Pipeline(storage, minilm)
    classifier = TfidfEmbeddingIntentClassifier.create(
        {**TfidfEmbeddingIntentClassifier.get_default_config(), **(config or {})},
        storage, Resource("intents"), CONTEXT)
    classifier.train(pipeline.training_data(examples))
    return pipeline, classifier, storage


def test_ranking_is_probabilities_best_first(tmp_path: Path, minilm) -> None:
    pipeline, classifier, _ = _trained(tmp_path, minilm, {"ranking_length": 2})
    [message] = classifier.process(pipeline.messages("cancel my order please"))
    ranking = message.get("intent_ranking")
    assert message.get(INTENT) == ranking[0]
    assert ranking[0]["name"] == "cancel_order"
    assert len(ranking) == 2
    confidences = [entry["confidence"] for entry in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert 0.0 < sum(confidences) <= 1.0 + 1e-9


def test_the_sentence_embedding_carries_paraphrases_without_shared_words(
        tmp_path: Path, minilm) -> None:
    """No word of the message is in the training data: only the transformer vector
    can tell that it asks about a shipment."""
    text = "has this shipment arrived yet"
    pipeline, classifier, _ = _trained(tmp_path / "with", minilm)
    [with_embedding] = classifier.process(pipeline.messages(text))
    assert with_embedding.get(INTENT)["name"] == "track_order"

    pipeline, classifier, _ = _trained(tmp_path / "without", minilm, {"dense_weight": 0.0})
    [words_only] = classifier.process(pipeline.messages(text))
    track = {e["name"]: e["confidence"] for e in words_only.get("intent_ranking")}["track_order"]
    assert with_embedding.get(INTENT)["confidence"] > track + 0.2


def test_works_on_sparse_features_alone(tmp_path: Path) -> None:
    pipeline, classifier, _ = _trained(tmp_path, None)
    [message] = classifier.process(pipeline.messages("track my parcel"))
    assert message.get(INTENT)["name"] == "track_order"


def test_saved_model_loads_and_predicts_the_same(tmp_path: Path, minilm) -> None:
    pipeline, classifier, storage = _trained(tmp_path, minilm)
    assert (tmp_path / "intents" / MODEL_FILE).is_file()
    loaded = TfidfEmbeddingIntentClassifier.load(
        TfidfEmbeddingIntentClassifier.get_default_config(), storage,
        Resource("intents"), CONTEXT)
    texts = ("hi", "where's my stuff", "cancel it")
    before = [m.get("intent_ranking") for m in classifier.process(pipeline.messages(*texts))]
    after = [m.get("intent_ranking") for m in loaded.process(pipeline.messages(*texts))]
    assert [[e["name"] for e in r] for r in before] == [[e["name"] for e in r] for r in after]
    assert np.allclose([[e["confidence"] for e in r] for r in before],
                       [[e["confidence"] for e in r] for r in after])


def test_a_file_with_unexpected_types_is_refused(tmp_path: Path) -> None:
    import skops.io as sio

    (tmp_path / "intents").mkdir()
    sio.dump({"tfidf": None, "classifier": Pipeline}, tmp_path / "intents" / MODEL_FILE)
    with pytest.raises(ValueError, match="refusing"):
        TfidfEmbeddingIntentClassifier.load(
            {}, LocalModelStorage(tmp_path), Resource("intents"), CONTEXT)


def test_nothing_saved_gives_a_classifier_that_leaves_messages_alone(tmp_path: Path) -> None:
    classifier = TfidfEmbeddingIntentClassifier.load(
        {}, LocalModelStorage(tmp_path), Resource("never_trained"), CONTEXT)
    pipeline = Pipeline(LocalModelStorage(tmp_path), None)
    pipeline.training_data(EXAMPLES)
    [message] = classifier.process(pipeline.messages("hello"))
    assert message.get(INTENT) is None


def test_one_intent_is_not_enough_to_learn(tmp_path: Path, caplog) -> None:
    pipeline, classifier, _ = _trained(tmp_path, None, examples={"greet": EXAMPLES["greet"]})
    assert "at least two intents" in caplog.text
    [message] = classifier.process(pipeline.messages("hello"))
    assert message.get(INTENT) is None


def test_messages_without_text_are_skipped(tmp_path: Path) -> None:
    _, classifier, _ = _trained(tmp_path, None)
    [message] = classifier.process([Message(data={})])
    assert message.get(INTENT) is None


def test_a_pipeline_without_featurizers_gets_a_clear_error(tmp_path: Path) -> None:
    classifier = TfidfEmbeddingIntentClassifier.create(
        {}, LocalModelStorage(tmp_path), Resource("intents"), CONTEXT)
    data = TrainingData([Message(data={TEXT: t, INTENT: i})
                         for i, texts in EXAMPLES.items() for t in texts])
    with pytest.raises(ValueError, match="needs sentence features"):
        classifier.train(data)
