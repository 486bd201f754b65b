"""action_handoff after an unanswered write: the shopper's retry gets the same ticket (real shop).

A handoff whose answer never came (lost reply, timeout, shop down) is kept in the slot
``handoff_pending`` (its Idempotency-Key and body) and resent on the next try, so the shop
replays the ticket it may already have opened instead of opening a second one.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Dict, List

import pytest

from actions import shop_client
from actions.handoff import PENDING_SLOT, ActionHandoff
from actions.tests.conftest import Conversation, Shop


def tickets_of(shop: Shop, sender: str) -> List[str]:
    """Ids of the handoff tickets the shop holds for one conversation (read-only query)."""
    db = shop.log.parent / "shop.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT id FROM handoffs WHERE conversation_id = ? ORDER BY id",
                           (sender,)).fetchall()
    finally:
        con.close()
    return [str(r[0]) for r in rows]


@pytest.fixture
def posts(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    """Every POST /handoffs the client sends (path, key, body), passed on to the real shop."""
    seen: List[Dict[str, Any]] = []
    original = shop_client.ShopClient._request

    def spy(self: shop_client.ShopClient, method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and path == "/handoffs":
            seen.append({"key": kwargs.get("idem_key"), "body": kwargs.get("body")})
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(shop_client.ShopClient, "_request", spy)
    return seen


def lose_replies(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """The next ``count`` handoff writes reach the shop, which does the work; the answer is lost."""
    original = shop_client.ShopClient._request
    left = [count]

    def lossy(self: shop_client.ShopClient, method: str, path: str, **kwargs: Any) -> Any:
        answer = original(self, method, path, **kwargs)
        if method == "POST" and path == "/handoffs" and left[0] > 0:
            left[0] -= 1
            raise shop_client.ShopUnavailable("shop unreachable: ReadTimeout")
        return answer

    monkeypatch.setattr(shop_client.ShopClient, "_request", lossy)


def test_retry_after_a_lost_reply_gets_the_same_ticket(
    domain: dict, shop: Shop, posts: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_replies(monkeypatch, 1)
    convo = Conversation(domain)
    convo.user("I want to talk to a human", intent="request_human")
    first = convo.run(ActionHandoff())
    assert first.responses == ["utter_handoff_failed"]
    assert "again" in first.text.lower()
    pending = json.loads(first.slot(PENDING_SLOT))
    assert pending["idem_key"] == posts[0]["key"]
    opened = tickets_of(shop, convo.sender)
    assert len(opened) == 1  # the shop did open it; the shopper never heard

    convo.user("please connect me to a human agent", intent="request_human")
    again = convo.run(ActionHandoff())
    assert again.responses == ["utter_handoff_created"]
    assert again.slot("handoff_ticket") == opened[0]
    assert again.slot(PENDING_SLOT) is None
    assert tickets_of(shop, convo.sender) == opened
    # the same request twice: same key and same body (the shop replays a key only for that)
    assert [p["key"] for p in posts] == [pending["idem_key"]] * 2
    assert posts[0]["body"] == posts[1]["body"]


def test_key_is_kept_over_several_failures_and_dropped_once_confirmed(
    domain: dict, shop: Shop, posts: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_replies(monkeypatch, 2)
    convo = Conversation(domain)
    for text in ("human please", "human!!", "a person, now"):
        convo.user(text, intent="request_human")
        result = convo.run(ActionHandoff())
    assert result.responses == ["utter_handoff_created"]
    assert len({p["key"] for p in posts}) == 1
    assert tickets_of(shop, convo.sender) == [result.slot("handoff_ticket")]
    # a later handoff, after the confirmed one, is a new request: a new ticket
    convo.user("I need an agent again", intent="request_human")
    later = convo.run(ActionHandoff())
    assert later.responses == ["utter_handoff_created"]
    assert posts[-1]["key"] != posts[0]["key"]
    assert len(tickets_of(shop, convo.sender)) == 2


def test_shop_down_then_up_opens_one_ticket(
    domain: dict, shop: Shop, posts: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    convo = Conversation(domain)
    convo.user("human please", intent="request_human")
    monkeypatch.setenv("SHOP_URL", "http://127.0.0.1:9")  # nothing listens: refused
    down = convo.run(ActionHandoff())
    assert down.responses == ["utter_handoff_failed"]
    assert down.slot(PENDING_SLOT)
    assert tickets_of(shop, convo.sender) == []
    monkeypatch.setenv("SHOP_URL", shop.url)
    convo.user("can I talk to a human now?", intent="request_human")
    up = convo.run(ActionHandoff())
    assert up.responses == ["utter_handoff_created"]
    assert tickets_of(shop, convo.sender) == [up.slot("handoff_ticket")]
    assert up.slot(PENDING_SLOT) is None


def test_a_refusal_is_not_kept(domain: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4xx means no ticket (and would be replayed for the key): the next try is fresh."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise shop_client.Invalid("summary too long", 422, "validation_error")

    monkeypatch.setattr(shop_client.ShopClient, "create_handoff", refuse)
    convo = Conversation(domain, slots={PENDING_SLOT: None})
    convo.user("human please", intent="request_human")
    result = convo.run(ActionHandoff())
    assert result.responses == ["utter_handoff_failed"]
    assert not result.sets(PENDING_SLOT)  # stays empty
    convo.slots[PENDING_SLOT] = json.dumps({"idem_key": "k" * 40, "summary": "s"})
    result = convo.run(ActionHandoff())
    assert result.slot(PENDING_SLOT) is None


def test_an_unreadable_pending_slot_is_ignored(domain: dict, shop: Shop, posts: list) -> None:
    convo = Conversation(domain, slots={PENDING_SLOT: "{not json"})
    convo.user("human please", intent="request_human")
    result = convo.run(ActionHandoff())
    assert result.responses == ["utter_handoff_created"]
    assert result.slot(PENDING_SLOT) is None
    assert tickets_of(shop, convo.sender) == [result.slot("handoff_ticket")]


def test_pending_slot_is_in_the_domain_and_does_not_steer_the_dialogue(domain: dict) -> None:
    spec = domain["slots"][PENDING_SLOT]
    assert spec["type"] == "text"
    assert spec["influence_conversation"] is False
    assert spec["mappings"] == [{"type": "custom"}]
