"""The report on a tracker store filled by scripted conversations through Rasa's own API.

The conversations are saved with ``SQLTrackerStore.save`` (what the Rasa server does), so the
report is tested against exactly the rows Rasa writes; the ratings and the agent desk's numbers
come from the real shop (the desk's from one of its own, with the shared ``desk`` account of
AGENT_TOKEN, whose tickets are made, claimed, answered and closed through the shop's API).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
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
from report.metrics import Metrics, compute, read_events
from report.render import desk_rows, duration, render
from tests.support import free_port, services_python, start_shop, stop

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
    # the desk's numbers of this (shared, agentless) shop: the section is there, with numbers
    assert set(data["desk"]["handoffs"]) == {"open", "claimed", "closed", "total"}
    assert "<h2>Human handoffs (agent desk)</h2>" in page
    assert f"<td>Tickets</td><td>{data['desk']['handoffs']['total']}</td>" in page
    # the risk control's numbers of this shop too (decisions of other tests: only the shape)
    assert set(data["risk"]["decisions"]) == {"total", "allowed", "flagged", "refused"}
    assert f"<td>Decisions</td><td>{data['risk']['decisions']['total']}</td>" in page
    assert "unavailable" not in page


def test_report_without_the_shop_still_works(tracker_db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["--tracker-db-url", tracker_db, "--shop-url", "http://127.0.0.1:9",
                 "--out", str(out)]) == 0
    page = out.read_text()
    assert "unavailable (shop:" in page and page.count("data:image/png") == 3
    assert ("The agent desk's numbers are unavailable (shop: shop unreachable: ConnectionError)."
            in page)
    assert ("The risk control's numbers are unavailable (shop: shop unreachable: ConnectionError)."
            in page)
    assert "<table id='risk" not in page and "<h2>Risk control (order changes)</h2>" in page
    assert "<td>Conversations</td><td>4</td>" in page and "Traceback" not in page


def test_missing_or_empty_tracker_store(tmp_path: Path) -> None:
    assert main(["--tracker-db-url", f"sqlite:///{tmp_path / 'nope.db'}",
                 "--out", str(tmp_path / "x.html")]) == 2
    empty = tmp_path / "empty.db"
    SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(empty)).engine.dispose()
    assert main(["--tracker-db-url", f"sqlite:///{empty}", "--out",
                 str(tmp_path / "e.html")]) == 0
    assert "<td>Conversations</td><td>0</td>" in (tmp_path / "e.html").read_text()


# ---------------------------------------------------------------- the agent desk's numbers


@dataclass
class OwnShop:
    url: str
    token: str
    agent_token: str  # AGENT_TOKEN: the password of the shared agent "desk"


DeskShop = OwnShop


@contextlib.contextmanager
def own_shop(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[OwnShop]:
    """A real shop of its own (fresh database: the numbers are exact) with AGENT_TOKEN and the
    default risk settings (no SHOP_RISK_*, SHOP_WORKERS or SHOP_AGENTS from the shell)."""
    if not services_python().exists():
        pytest.skip(f"{services_python()} missing: run `make install`")
    tmp = tmp_path_factory.mktemp(name)
    port, token, agent_token = free_port(), secrets.token_hex(24), secrets.token_hex(24)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SHOP_RISK_") and key not in ("SHOP_WORKERS", "SHOP_AGENTS")}
    env.update({"SHOP_PORT": str(port), "SHOP_API_TOKEN": token,
                "SHOP_DATABASE_URL": f"sqlite:///{tmp / 'shop.db'}", "AGENT_TOKEN": agent_token,
                "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        proc = start_shop(env, tmp / "shop.log")
    except RuntimeError as exc:
        pytest.fail(f"shop did not start: {exc}")
    try:
        yield OwnShop(url=f"http://127.0.0.1:{port}", token=token, agent_token=agent_token)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def desk_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnShop]:
    with own_shop(tmp_path_factory, "desk-shop") as started:
        yield started


class Desk:
    """The shared desk agent's calls, as the desk page will make them (docs/shop.md)."""

    def __init__(self, desk_shop: DeskShop) -> None:
        self.url = desk_shop.url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {desk_shop.token}"
        r = self.http.post(f"{self.url}/agents/login", timeout=10,
                           json={"agent_id": "desk", "password": desk_shop.agent_token})
        assert r.status_code == 200, r.text
        self.agent = {"X-Agent-Id": "desk", "X-Agent-Token": r.json()["token"]}

    def ticket(self, n: int) -> str:
        r = self.http.post(f"{self.url}/handoffs", timeout=10,
                           json={"summary": f"shopper {n} wants a person",
                                 "conversation_id": f"desk-{n}"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def act(self, handoff_id: str, action: str, body: Optional[Dict[str, Any]] = None) -> None:
        r = self.http.post(f"{self.url}/desk/handoffs/{handoff_id}/{action}", json=body,
                           headers=self.agent, timeout=10)
        assert r.status_code == 200, (action, r.text)

    def stats(self) -> Dict[str, Any]:
        r = self.http.get(f"{self.url}/desk/stats", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


def run_report(tracker_db: str, shop_url: str, token: str, tmp_path: Path,
               name: str) -> tuple[str, Dict[str, Any]]:
    out, numbers = tmp_path / f"{name}.html", tmp_path / f"{name}.json"
    assert main(["--tracker-db-url", tracker_db, "--shop-url", shop_url,
                 f"--shop-token={token}", "--out", str(out), "--json", str(numbers)]) == 0
    return out.read_text(), json.loads(numbers.read_text())


def cell(label: str, value: Any) -> str:
    return f"<td>{label}</td><td>{value}</td>"


def test_desk_section_from_the_shop(tracker_db: str, desk_shop: DeskShop,
                                    tmp_path: Path) -> None:
    # no ticket yet: zeros, and the times say there is nothing to measure
    page, data = run_report(tracker_db, desk_shop.url, desk_shop.token, tmp_path, "empty")
    assert data["desk"]["handoffs"] == {"open": 0, "claimed": 0, "closed": 0, "total": 0}
    for c in (cell("Tickets", 0), cell("Open (waiting for an agent)", 0),
              cell("Time to first claim", "n/a (no ticket claimed yet)"),
              cell("Time to first agent reply", "n/a (no agent reply yet)"),
              cell("Outcome: resolved", 0), cell("Outcome: no reply", 0)):
        assert c in page, c

    desk = Desk(desk_shop)
    started = time.monotonic()
    answered, waiting, gave_up, untouched, unanswered = (desk.ticket(n) for n in range(5))
    time.sleep(1.2)  # every claim and the reply come at least 1.2 s after the ticket
    desk.act(answered, "claim")
    desk.act(answered, "reply-recorded")
    desk.act(answered, "close", {"outcome": "resolved", "note": "refund explained"})
    desk.act(waiting, "claim")                        # claimed, no reply yet
    desk.act(gave_up, "claim")
    desk.act(gave_up, "close", {"outcome": "unresolved"})
    desk.act(unanswered, "close", {"outcome": "no_reply"})  # closed without a claim
    elapsed = time.monotonic() - started              # `untouched` stays open

    page, data = run_report(tracker_db, desk_shop.url, desk_shop.token, tmp_path, "desk")
    stats = data["desk"]
    assert stats == desk.stats()  # the report shows what the shop says, nothing changed since
    assert stats["handoffs"] == {"open": 1, "claimed": 1, "closed": 3, "total": 5}
    assert stats["outcomes"] == {"resolved": 1, "unresolved": 1, "no_reply": 1}
    claim, reply = stats["time_to_claim"], stats["time_to_first_reply"]
    assert claim["count"] == 3 and reply["count"] == 1
    for value in (claim["median_seconds"], claim["p90_seconds"], reply["median_seconds"]):
        assert 1.2 <= value <= elapsed + 0.1, stats
    assert reply["p90_seconds"] == reply["median_seconds"]  # one reply

    assert "<h2>Human handoffs (agent desk)</h2>" in page
    section = page[page.index("<h2>Human handoffs"):page.index("<h2>Risk control")]
    for c in (cell("Tickets", 5), cell("Open (waiting for an agent)", 1),
              cell("Claimed (an agent has it)", 1), cell("Closed", 3),
              cell("Time to first claim", f"median {duration(claim['median_seconds'])}, "
                                          f"p90 {duration(claim['p90_seconds'])} (3 tickets)"),
              cell("Time to first agent reply",
                   f"median {duration(reply['median_seconds'])}, "
                   f"p90 {duration(reply['p90_seconds'])} (1 ticket)"),
              cell("Outcome: resolved", 1), cell("Outcome: unresolved", 1),
              cell("Outcome: no reply", 1)):
        assert c in section, c
    assert re.search(r"median \d+\.\d s, p90 \d+\.\d s \(3 tickets\)", section), section
    assert "all tickets" in section and "unavailable" not in section
    # the rest of the report is unchanged by it (this shop has no ratings: no ratings plot)
    assert cell("Conversations", 4) in page and page.count("data:image/png") == 3


def test_desk_section_when_the_shop_refuses(tracker_db: str, desk_shop: DeskShop,
                                            tmp_path: Path) -> None:
    page, data = run_report(tracker_db, desk_shop.url, "not-the-token", tmp_path, "refused")
    assert data["desk"] is None and data["ratings"] is None
    assert "The agent desk&#x27;s numbers are unavailable" not in page  # written plainly
    assert ("The agent desk's numbers are unavailable (shop answered 401: shop auth failed: "
            in page), page
    assert cell("Conversations", 4) in page and cell("Turns (user messages)", 11) in page
    assert "Traceback" not in page


def test_desk_rows_read_as_minutes_and_seconds() -> None:
    # the example of docs/shop.md "Stats"
    stats = {"since": "2025-03-01T00:00:00Z",
             "handoffs": {"open": 1, "claimed": 2, "closed": 3, "total": 6},
             "time_to_claim": {"count": 4, "median_seconds": 15.0, "p90_seconds": 90.0},
             "time_to_first_reply": {"count": 2, "median_seconds": 45.0, "p90_seconds": 3725.0},
             "outcomes": {"resolved": 1, "unresolved": 1, "no_reply": 1}}
    assert desk_rows(stats) == [
        ["Tickets", 6], ["Open (waiting for an agent)", 1], ["Claimed (an agent has it)", 2],
        ["Closed", 3],
        ["Time to first claim", "median 15 s, p90 1 min 30 s (4 tickets)"],
        ["Time to first agent reply", "median 45 s, p90 1 h 2 min (2 tickets)"],
        ["Outcome: resolved", 1], ["Outcome: unresolved", 1], ["Outcome: no reply", 1],
    ]
    page = render(Metrics(desk=stats), "sqlite:///x.db")
    assert "tickets created since 2025-03-01T00:00:00Z" in page
    assert [duration(s) for s in (None, 0, 0.4, 59.9, 59.96, 61, 3599.4, 3599.6, 90000)] == [
        "n/a", "0 s", "0.4 s", "59.9 s", "1 min", "1 min 1 s", "59 min 59 s", "1 h", "1 d 1 h"]
