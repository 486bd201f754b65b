"""Fixtures: the REAL shop backend on a temp database, and helpers to run actions.

The shop is started once per session (``python -m shop`` of the services venv,
``tests.support.start_shop``) on a free port with a random token and its own SQLite file, and
stopped at the end; nothing is left running.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import quote

import pytest
import requests
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actions import shop_client  # noqa: E402
from tests.support import free_port, services_python, start_shop, stop  # noqa: E402

# Seed customers used by the tests (shop/data/db.json).
MOHAMED = {
    "user_id": "mohamed_li_1979",
    "email": "mohamed.li8414@example.com",
    "first_name": "Mohamed",
    "last_name": "Li",
    "zip": "43209",
    "orders": {
        "processed": "#W7824724",
        "cancelled": "#W2437730",
        "pending": "#W8844578",
        "delivered": "#W8864622",
    },
}
NOAH = {"user_id": "noah_brown_6181", "email": "noah.brown7922@example.com", "order": "#W7678072"}
NO_ORDERS = {"user_id": "yusuf_khan_2015", "email": "yusuf.khan4494@example.com"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_shop: the test needs no shop backend")


@dataclass
class Shop:
    url: str
    token: str
    log: Path


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The real shop backend, seeded into a temp SQLite database."""
    if not services_python().exists():
        pytest.skip(f"{services_python()} missing: run `make install`")
    tmp = tmp_path_factory.mktemp("shop")
    port = free_port()
    token = secrets.token_hex(24)
    log = tmp / "shop.log"
    env = {
        **os.environ,
        "SHOP_PORT": str(port),
        "SHOP_API_TOKEN": token,
        "SHOP_DATABASE_URL": f"sqlite:///{tmp / 'shop.db'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("SHOP_WORKERS", None)
    try:
        proc = start_shop(env, log)
    except RuntimeError as exc:
        pytest.fail(f"shop did not start: {exc}")
    try:
        yield Shop(url=f"http://127.0.0.1:{port}", token=token, log=log)
    finally:
        stop(proc)


@pytest.fixture(autouse=True)
def shop_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the actions' client at the test shop (tests marked ``no_shop`` skip this)."""
    monkeypatch.setenv("SHOP_RETRY_BACKOFF", "0.05")
    if "no_shop" in request.keywords:
        return
    shop: Shop = request.getfixturevalue("shop")
    monkeypatch.setenv("SHOP_URL", shop.url)
    monkeypatch.setenv("SHOP_API_TOKEN", shop.token)


@pytest.fixture
def shop_down(monkeypatch: pytest.MonkeyPatch) -> str:
    """SHOP_URL pointing at a closed port: every call fails to connect."""
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SHOP_URL", url)
    monkeypatch.setenv("SHOP_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("SHOP_TIMEOUT", "0.5")
    return url


@pytest.fixture
def client(shop: Shop) -> shop_client.ShopClient:
    """A client of the test shop (for reading back what actions did)."""
    c = shop_client.ShopClient(base_url=shop.url, token=shop.token)
    yield c
    c.close()


def stored_order(client: shop_client.ShopClient, order_id: str, customer_id: str) -> Dict[str, Any]:
    """An order as the shop stores it (its JSON, with what a write left: return items, ...)."""
    response = requests.get(
        f"{client.base_url}/orders/{quote(order_id, safe='')}",
        headers={"Authorization": f"Bearer {client.token}", "X-Customer-Id": customer_id},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()


# ------------------------------------------------------------------------- domain and trackers
@pytest.fixture(scope="session")
def domain() -> Dict[str, Any]:
    """domain.yml as the dict the action server receives."""
    return yaml.safe_load((REPO / "domain.yml").read_text(encoding="utf-8"))


ENTITY_SLOTS = ("email", "first_name", "last_name", "zip", "order_id", "product")


def initial_slots(domain: Dict[str, Any]) -> Dict[str, Any]:
    return {name: spec.get("initial_value") for name, spec in domain["slots"].items()} | {
        "requested_slot": None
    }


def identified_slots(customer: Dict[str, Any], name: str = "Mohamed") -> Dict[str, Any]:
    return {"customer_id": customer["user_id"], "customer_name": name, "identified": True}


def user_event(text: str, intent: Optional[str], entities: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "event": "user",
        "timestamp": time.time(),
        "text": text,
        "parse_data": {
            "text": text,
            "intent": {"name": intent, "confidence": 1.0},
            "entities": entities,
        },
    }


def entities_of(**values: str) -> List[Dict[str, Any]]:
    return [{"entity": k, "value": v} for k, v in values.items()]


@dataclass
class Conversation:
    """Slots and events of one conversation; ``turn`` runs an action on the next message."""

    domain: Dict[str, Any]
    slots: Dict[str, Any] = field(default_factory=dict)
    events: List[Dict[str, Any]] = field(default_factory=list)
    sender: str = field(default_factory=lambda: "test-" + secrets.token_hex(4))
    active_loop: Dict[str, Any] = field(default_factory=dict)
    latest: Dict[str, Any] = field(default_factory=dict)
    # what the channel and the page add to each user message (client_address, customer_token)
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slots = initial_slots(self.domain) | self.slots

    def user(self, text: str, intent: Optional[str] = "inform", **entities: str) -> None:
        """The shopper says ``text``; entity values fill their slots (from_entity mappings)."""
        ents = entities_of(**entities)
        event = user_event(text, intent, ents)
        if self.metadata:
            event["metadata"] = dict(self.metadata)
        self.events.append(event)
        self.latest = event["parse_data"] | {"entities": ents}
        for ent in ents:  # what action_extract_slots does after each user message
            if ent["entity"] in ENTITY_SLOTS:
                self.slots[ent["entity"]] = ent["value"]
                self.events.append({"event": "slot", "name": ent["entity"], "value": ent["value"]})

    def tracker(self, candidates: Optional[Dict[str, Any]] = None, form: bool = False) -> Tracker:
        events = list(self.events)
        if form:
            # what Rasa's FormAction sends to validate_<form>: requested slot, form, candidates
            events.append(
                {"event": "slot", "name": "requested_slot", "value": self.slots["requested_slot"]}
            )
            events.append({"event": "action", "name": "identify_form"})
            events += [
                {"event": "slot", "name": k, "value": v} for k, v in (candidates or {}).items()
            ]
        return Tracker(
            self.sender,
            dict(self.slots),
            dict(self.latest),
            events,
            False,
            None,
            self.active_loop,
            "action_listen",
        )

    def run(self, action: Action, form: bool = False) -> Result:
        """Run ``action`` on the current state and apply its SlotSet events."""
        candidates = None
        if form:
            # Rasa passes the slots of the form's required slots ([email]) and the requested one
            wanted = {"email", self.slots.get("requested_slot")}
            candidates = {
                e["entity"]: e["value"]
                for e in self.latest.get("entities", [])
                if e["entity"] in wanted
            }
        dispatcher = CollectingDispatcher()
        tracker = self.tracker(candidates, form=form)
        events = asyncio.run(action.run(dispatcher, tracker, self.domain))
        for event in events:
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
        self.events.append({"event": "action", "name": action.name()})
        self.events += events
        return Result(events, dispatcher.messages, self.domain)


class _Keep(dict):
    """format_map helper: unknown placeholders stay as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class Result:
    events: List[Dict[str, Any]]
    messages: List[Dict[str, Any]]
    domain: Dict[str, Any]

    @property
    def responses(self) -> List[Optional[str]]:
        return [m.get("response") for m in self.messages]

    @property
    def text(self) -> str:
        """All messages as the shopper reads them (domain responses rendered with their vars)."""
        out = []
        for m in self.messages:
            if m.get("response"):
                template = self.domain["responses"][m["response"]][0]["text"]
                values = {k: v for k, v in m.items() if v is not None}
                out.append(template.format_map(_Keep(values)))
            elif m.get("text"):
                out.append(m["text"])
        return "\n".join(out)

    def slot(self, name: str) -> Any:
        values = [e["value"] for e in self.events if e.get("event") == "slot" and e["name"] == name]
        if not values:
            raise KeyError(name)
        return values[-1]

    def sets(self, name: str) -> bool:
        return any(e.get("event") == "slot" and e["name"] == name for e in self.events)


@pytest.fixture
def convo(domain: Dict[str, Any]) -> Conversation:
    return Conversation(domain)
