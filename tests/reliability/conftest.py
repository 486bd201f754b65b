"""Fixtures of the reliability suite: one running stack whose action server reaches the shop and
the LLM through fault-injecting proxies (tests/reliability/fault_proxy.py).

The shop, the action server and the Rasa server are the real ones (harness.py); the proxies
pass everything through unless a test switches a fault on. The LLM proxy has no upstream: the
suite runs with the LLM down (as tests/conversations does) except where a test injects an LLM
fault on purpose. Test modules run in file order; test_persistence.py kills and restarts
processes and runs last.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conversations.harness import ROOT, Stack, remove_stack, start_stack
from tests.reliability.fault_proxy import FaultProxy

MEI = {"user_id": "mei_martin_4260", "email": "mei.martin4637@example.com", "first": "Mei",
       "last": "Martin", "zip": "32124", "pending": "#W7017301", "processed": "#W3288665",
       "delivered": "#W5564375"}
OMAR = {"user_id": "omar_silva_9907", "zip": "98141", "pending": "#W6151519"}

# What a shopper must never see: internals of the processes behind the assistant.
INTERNALS = re.compile(
    r"Traceback|Exception|Error:|\bhttps?://|127\.0\.0\.1|localhost|:\d{4,5}\b|\.py\b|/work/|"
    r"site-packages|\bFile \"|requests\.|urllib3|sqlite|SQL|Idempotency|Bearer|\bNone\b|\{'",
)
# A polite reply says what to do next.
NEXT_STEP = re.compile(r"try again|again (later|in a|shortly)|later|human|agent|person",
                       re.IGNORECASE)


RESULTS = ROOT / "results" / "reliability" / "measurements.jsonl"


def leaks_internals(text: str) -> list[str]:
    return INTERNALS.findall(text)


def record(kind: str, **values: object) -> None:
    """Append one measurement (for docs/reliability.md) to results/reliability/."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"kind": kind, "at": time.time(), **values}) + "\n")


def known_bug(reason: str):
    """A test that shows a bug in code this suite does not own (reported to its owner).

    Expected to fail (strict xfail: it turns red once the bug is fixed, so the marker goes);
    RELIABILITY_STRICT=1 runs it as a plain test.
    """
    if os.environ.get("RELIABILITY_STRICT"):
        return lambda test: test
    return pytest.mark.xfail(strict=True, reason=f"known bug: {reason}")


@dataclass
class Reliability:
    stack: Stack
    shop_proxy: FaultProxy
    llm_proxy: FaultProxy

    def healthy(self) -> None:
        """Rasa answers its status and a greeting; the proxies are back to normal."""
        self.shop_proxy.set("pass")
        self.llm_proxy.set("refuse")
        chat = self.stack.conversation()
        assert chat.say("hello"), "no reply to a greeting"

    def user_events(self, sender: str) -> list[str]:
        """The texts of the user events stored for ``sender`` in the tracker store, in order."""
        rows = self.stack.tracker_query(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
            (sender,))
        return [json.loads(r["data"]).get("text") for r in rows]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Persistence (restarts processes) and then the oversized messages (stall Rasa) run last."""
    late = {"test_persistence.py": 1, "test_oversized.py": 2}
    items.sort(key=lambda item: late.get(item.path.name, 0))


# Rasa's start (and restart after SIGKILL) takes 1-2 min here, more while a model trains.
os.environ.setdefault("HARNESS_RASA_TIMEOUT", "420")


@pytest.fixture(scope="session")
def rel() -> Iterator[Reliability]:
    shop_proxy = FaultProxy(None).start()
    llm_proxy = FaultProxy(None)
    llm_proxy.set("refuse")
    overrides = {"actions": {"SHOP_URL": shop_proxy.url, "LLM_BASE_URL": f"{llm_proxy.url}/v1",
                             "LLM_TIMEOUT": os.environ.get("LLM_TIMEOUT", "8")},
                 # a test may be a client of its own address (X-Forwarded-For through one
                 # trusted proxy), as the bad-input storm is: its failed identifications lock
                 # that client in the shop, not every test after it
                 "rasa": {"TRUSTED_PROXY_HOPS": "1"}}
    stack = start_stack(overrides=overrides)
    shop_proxy.upstream = stack.shop_url
    try:
        yield Reliability(stack, shop_proxy, llm_proxy)
    finally:
        remove_stack(stack)
        shop_proxy.stop()
        llm_proxy.stop()


@pytest.fixture()
def proxies_reset(rel: Reliability) -> Iterator[Reliability]:
    """Each fault test starts and ends with the shop passing through and the LLM down."""
    rel.shop_proxy.set("pass")
    rel.llm_proxy.set("refuse")
    rel.shop_proxy.clear()
    rel.llm_proxy.clear()
    yield rel
    rel.shop_proxy.set("pass")
    rel.llm_proxy.set("refuse")


def identify(stack: Stack, who: dict = MEI):
    """A conversation identified as ``who`` by email + zip (or name + zip for Omar)."""
    chat = stack.conversation()
    chat.text("hi, where is my order?")
    if "email" in who:
        reply = chat.text(f"{who['email']}, zip {who['zip']}")
    else:
        reply = chat.text(f"Omar Silva, zip {who['zip']}")
    assert chat.slots().get("identified") is True, reply
    return chat
