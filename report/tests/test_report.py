"""The report on a tracker store filled by scripted conversations through Rasa's own API.

The conversations are saved with ``SQLTrackerStore.save`` (what the Rasa server does), so the
report is tested against exactly the rows Rasa writes; the ratings come from the real shop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from actions.shop_client import ShopClient
from actions.tests.conftest import shop  # noqa: F401 - the real shop fixture
from report.__main__ import main
from report.metrics import compute, read_events

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, order_status, inform, cancel_order, stop, request_human, thank, out_of_scope]
slots:
  requested_slot: {type: any, mappings: [{type: custom}]}
forms:
  identify_form: {required_slots: []}
  cancel_form: {required_slots: []}
  rating_form: {required_slots: []}
actions: [action_order_status, action_handoff, action_fallback, action_offer_human,
          action_submit_rating]
responses:
  utter_greet: [{text: hi}]
""")


def start() -> List[Event]:
    return [ActionExecuted("action_session_start"), SessionStarted(),
            ActionExecuted("action_listen")]


def user(text: str, intent: str, compound: Optional[float]) -> List[Event]:
    parse: Dict[str, Any] = {"text": text, "intent": {"name": intent, "confidence": 0.9},
                             "entities": []}
    if compound is not None:
        label = "negative" if compound <= -0.3 else "positive" if compound >= 0.3 else "neutral"
        parse["sentiment"] = {"label": label, "compound": compound,
                              "strongly_negative": compound <= -0.5}
    return [UserUttered(text, parse["intent"], [], parse)]


def act(name: str, *events: Event) -> List[Event]:
    return [ActionExecuted(name), *events]


def form_step(form: str, done: bool = False) -> List[Event]:
    if done:
        return [ActionExecuted(form), SlotSet("requested_slot", None), ActiveLoop(None)]
    return [ActionExecuted(form), ActiveLoop(form), SlotSet("requested_slot", "x")]


LISTEN = [ActionExecuted("action_listen")]

CONVERSATIONS: Dict[str, List[List[Event]]] = {
    # identified, order status (identify_form completed), then rated 5
    "c1": [start(), user("hello", "greet", 0.0), act("utter_greet", BotUttered("hi")), LISTEN,
           user("where is my order", "order_status", 0.1), form_step("identify_form"), LISTEN,
           user("it's me@example.com", "inform", 0.2), form_step("identify_form", done=True),
           act("action_order_status"), form_step("rating_form"), LISTEN,
           user("5", "inform", 0.4), form_step("rating_form", done=True),
           act("action_submit_rating"), LISTEN],
    # angry cancel, stopped (abandoned flow), human offered, handoff
    "c2": [start(), user("cancel this stupid order now", "cancel_order", -0.8),
           form_step("cancel_form"), LISTEN,
           user("stop, this is useless", "stop", -0.7),
           act("action_deactivate_loop", ActiveLoop(None)), act("action_offer_human"), LISTEN,
           user("/request_human", "request_human", -0.2), act("action_handoff"), LISTEN],
    # not understood, then thanks (rated 3 through the shop)
    "c3": [start(), user("blorp fizz", "nlu_fallback", 0.0), act("action_fallback"), LISTEN,
           user("thanks!", "thank", 0.6), act("utter_greet"), LISTEN],
    # out of scope answered by the fallback action; a form left open when the chat ended
    "c4": [start(), user("what's the weather", "out_of_scope", 0.0), act("action_fallback"),
           LISTEN, user("hi, my order status", "order_status", 0.2),
           form_step("identify_form"), LISTEN],
    # a session start only: nobody talked
    "c5": [start()],
}


@pytest.fixture(scope="module")
def tracker_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tracker") / "tracker.db"
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))
    for sender, turns in CONVERSATIONS.items():
        events = [e for turn in turns for e in turn]
        # saved in two steps, as the server does turn after turn
        half = len(events) // 2
        tracker = DialogueStateTracker.from_events(sender, events[:half], DOMAIN.slots)
        asyncio.run(store.save(tracker))
        tracker = asyncio.run(store.retrieve(sender))
        tracker.update_with_events(events[half:], DOMAIN)
        asyncio.run(store.save(tracker))
    store.engine.dispose()
    return f"sqlite:///{path}"


def test_rasa_wrote_the_events(tracker_db: str) -> None:
    conversations = read_events(tracker_db)
    assert set(conversations) == {"c1", "c2", "c3", "c4", "c5"}
    first_user = next(e for e in conversations["c2"] if e["event"] == "user")
    assert first_user["parse_data"]["sentiment"]["strongly_negative"] is True


def test_metrics(tracker_db: str) -> None:
    m = compute(read_events(tracker_db))
    assert m.conversations == 4 and m.turns == 11 and m.turns_per_conversation == 2.75
    assert m.intents == {"order_status": 2, "inform": 2, "greet": 1, "cancel_order": 1,
                         "stop": 1, "request_human": 1, "nlu_fallback": 1, "thank": 1,
                         "out_of_scope": 1}
    # flows: c1 completed identify_form; c2 abandoned cancel_form; c4 left identify_form open
    assert m.flows == {"cancel_form": {"started": 1, "completed": 0, "abandoned": 1},
                       "identify_form": {"started": 2, "completed": 1, "abandoned": 1}}
    assert (m.flow_conversations, m.completed_flow_conversations) == (3, 1)
    assert m.flow_completion_rate == pytest.approx(1 / 3, abs=1e-4)
    assert m.fallback_turns == 2 and m.fallback_rate == pytest.approx(2 / 11, abs=1e-4)
    assert m.handoff_conversations == 1 and m.handoff_rate == 0.25
    assert m.human_offers == 1
    assert m.negative_turn_share == pytest.approx(2 / 11, abs=1e-4)
    assert m.sentiment_by_turn == [
        {"turn": 1, "mean": pytest.approx((0.0 - 0.8 + 0.0 + 0.0) / 4), "n": 4},
        {"turn": 2, "mean": pytest.approx((0.1 - 0.7 + 0.6 + 0.2) / 4), "n": 4},
        {"turn": 3, "mean": pytest.approx((0.2 - 0.2) / 2), "n": 2},
        {"turn": 4, "mean": pytest.approx(0.4), "n": 1},
    ]


def test_rating_form_can_count_as_a_flow(tracker_db: str) -> None:
    m = compute(read_events(tracker_db), excluded_forms=())
    assert m.flows["rating_form"] == {"started": 1, "completed": 1, "abandoned": 0}


def test_report_command_with_ratings_from_the_shop(tracker_db: str, shop: Any,  # noqa: F811
                                                   tmp_path: Path) -> None:
    client = ShopClient(base_url=shop.url, token=shop.token)
    before = client.list_ratings(limit=1)["summary"]
    client.create_rating("c1", 5)
    client.create_rating("c3", 3, comment="ok")
    client.close()
    out, numbers = tmp_path / "out" / "report.html", tmp_path / "report.json"
    code = main(["--tracker-db-url", tracker_db, "--shop-url", shop.url,
                 f"--shop-token={shop.token}", "--out", str(out), "--json", str(numbers)])
    assert code == 0
    data = json.loads(numbers.read_text())
    assert data["conversations"] == 4 and data["handoff_rate"] == 0.25
    ratings = data["ratings"]
    assert ratings["count"] == before["count"] + 2
    assert ratings["distribution"]["5"] == before["distribution"]["5"] + 1
    assert ratings["distribution"]["3"] == before["distribution"]["3"] + 1

    page = out.read_text()
    for cell in ("<td>Conversations</td><td>4</td>", "<td>Turns (user messages)</td><td>11</td>",
                 "33.3% (1 of 3 conversations with a flow)", "18.2% (2 of 11 turns)",
                 "25.0% (1 of 4 conversations)", f"{ratings['count']}, average"):
        assert cell in page, cell
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 4  # rates, intents, ratings, sentiment
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in page.replace(shop.url, "")  # nothing fetched from elsewhere


def test_report_without_the_shop_still_works(tracker_db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["--tracker-db-url", tracker_db, "--shop-url", "http://127.0.0.1:9",
                 "--out", str(out)]) == 0
    page = out.read_text()
    assert "unavailable (shop:" in page and page.count("data:image/png") == 3


def test_missing_or_empty_tracker_store(tmp_path: Path) -> None:
    assert main(["--tracker-db-url", f"sqlite:///{tmp_path / 'nope.db'}",
                 "--out", str(tmp_path / "x.html")]) == 2
    empty = tmp_path / "empty.db"
    SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(empty)).engine.dispose()
    assert main(["--tracker-db-url", f"sqlite:///{empty}", "--out",
                 str(tmp_path / "e.html")]) == 0
    assert "<td>Conversations</td><td>0</td>" in (tmp_path / "e.html").read_text()
