"""Free-form questions cannot starve order turns (issue 22, item 2: the LLM's own bounded pool).

A fault injected on purpose: the action server's LLM_BASE_URL is a fake OpenAI-compatible
server in this process that answers each chat completion only after SLOW_SECONDS. While more
free-form questions than the action server has default-executor threads wait on it, each on
its own conversation, an identified shopper's order-status question on another conversation
must be answered before any of the slow ones (an ordering, not a timing), the LLM must never see
more than LLM_CONCURRENCY requests at once, and the questions that get no slot within
LLM_QUEUE_WAIT seconds get the polite "can't answer that right now / human agent" reply.

Which questions reach the LLM depends on the trained NLU (most store questions match an intent
or an FAQ), so the test first asks a list of candidates with the fake answering at once and keeps
those that reached it; the burst repeats them, each on a conversation of its own.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from actions.grounding import ERROR_REPLY
from addons.channels import SOMETHING_WENT_WRONG
from tests.conversations.harness import Stack, remove_stack, start_stack

SLOW_SECONDS = 8.0
CONCURRENCY = 2
QUEUE_WAIT = 3.0
# more than asyncio's default executor has threads on 2 cores (min(32, cores + 4) = 6): before
# the pool, these alone held every thread the order actions' shop calls run on (the test fails
# there: the order turn came back after the slow answers)
QUESTIONS_AT_ONCE = 8
DIFFERENT_QUESTIONS = 3
CANDIDATES = [
    "who are you owned by?", "is the laptop good for gaming",
    "How long does it take to get my money back on a credit card?",
    "If I get refunded to a gift card, when will I see the money?",
    "I paid with paypal, how long until the refund shows up?",
    "Can I cancel because I found it cheaper somewhere else?",
    "Can I return an item from an order that hasn't arrived yet?",
    "Does an exchange create a new order?",
    "How many times can I return items from the same order?",
    "Can I change items in my order twice?",
    "who pays the price difference when I exchange an item for a pricier one",
    "is the e-reader good for reading at night", "what is the warranty on electronics?",
    "my neighbour took my parcel what now", "who do i talk to about a damaged box",
    "how do i know which size of the hiking boots fits me",
    "Can I pay for my order with a gift card that doesn't have enough money?",
    "what happens to my order after I modify an item",
    "is the smart watch waterproof enough for swimming",
    "does the office chair come assembled",
]


@dataclass
class SlowLLM:
    """An OpenAI-compatible chat-completions endpoint that takes ``delay`` seconds per answer."""

    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    in_flight: int = 0
    peak: int = 0
    answered_at: list[float] = field(default_factory=list)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        handler.rfile.read(length)
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay)
            # "I don't know" is always a usable reply: the action quotes the best help passage
            body = json.dumps({"choices": [{"message": {"role": "assistant",
                                                         "content": "I don't know."}}]}).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.answered_at.append(time.monotonic())

    def reset(self, delay: float) -> None:
        with self.lock:
            self.delay, self.requests, self.peak = delay, 0, self.in_flight
            self.answered_at.clear()


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[tuple[SlowLLM, str]]:
    llm = SlowLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            llm.handle(self)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield llm, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(slow_llm: tuple[SlowLLM, str]) -> Iterator[Stack]:
    _, url = slow_llm
    running = start_stack(overrides={"actions": {
        "LLM_BASE_URL": url, "LLM_TIMEOUT": str(SLOW_SECONDS * 3),
        "LLM_CONCURRENCY": str(CONCURRENCY), "LLM_QUEUE_WAIT": str(QUEUE_WAIT),
    }})
    yield running
    remove_stack(running)


def say(stack: Stack, sender: str, message: str) -> str:
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook",
                             json={"sender": sender, "message": message}, timeout=120)
    assert response.status_code == 200, response.text
    return "\n".join(m.get("text", "") for m in response.json() if m.get("text"))


def questions_that_reach_the_llm(stack: Stack, llm: SlowLLM) -> list[str]:
    llm.reset(delay=0.0)
    reaching = []
    for question in CANDIDATES:
        before = llm.requests
        say(stack, f"probe-{uuid.uuid4().hex[:10]}", question)
        if llm.requests > before:
            reaching.append(question)
        if len(reaching) == DIFFERENT_QUESTIONS:
            break
    return reaching


def a_shopper_with_an_order(stack: Stack) -> tuple[str, str, str, str]:
    (row,) = stack.shop_query(
        "SELECT c.email, c.zip, c.first_name, o.order_id FROM customers c "
        "JOIN orders o ON o.user_id = c.user_id WHERE o.status = 'processed' "
        "ORDER BY c.user_id LIMIT 1")
    return row["email"], row["zip"], row["first_name"], row["order_id"]


def test_an_order_turn_is_answered_while_slow_llm_questions_wait(
    stack: Stack, slow_llm: tuple[SlowLLM, str],
) -> None:
    llm, _ = slow_llm
    reaching = questions_that_reach_the_llm(stack, llm)
    assert reaching, "no candidate question reaches the LLM with this model"
    questions = [reaching[i % len(reaching)] for i in range(QUESTIONS_AT_ONCE)]

    email, zip_code, first_name, order_id = a_shopper_with_an_order(stack)
    shopper = f"order-{uuid.uuid4().hex[:10]}"
    say(stack, shopper, "hi, where is my order?")
    assert first_name in say(stack, shopper, f"my email is {email} and my zip is {zip_code}")

    llm.reset(delay=SLOW_SECONDS)
    finished: dict[str, tuple[float, str]] = {}

    def ask(key: str, sender: str, message: str) -> None:
        text = say(stack, sender, message)
        finished[key] = (time.monotonic(), text)

    with ThreadPoolExecutor(len(questions) + 1) as pool:
        asked = [pool.submit(ask, f"q{i}", f"slow-{i}-{uuid.uuid4().hex[:8]}", question)
                 for i, question in enumerate(questions)]
        deadline = time.monotonic() + 60
        while llm.in_flight < CONCURRENCY and time.monotonic() < deadline:
            time.sleep(0.05)  # every LLM slot is taken by a slow question
        assert llm.in_flight >= CONCURRENCY
        # and the other questions reach the action server (where they wait for a slot; before
        # the pool, each took a thread of the default executor)
        time.sleep(1.0)
        order = pool.submit(ask, "order", shopper, f"what is the status of order {order_id}?")
        for future in [*asked, order]:
            future.result()

    order_done, order_text = finished["order"]
    assert order_id.lstrip("#") in order_text, order_text
    slow = {k: v for k, v in finished.items() if k != "order" and v[1] != ERROR_REPLY}
    busy = {k: v for k, v in finished.items() if k != "order" and v[1] == ERROR_REPLY}
    # the order turn came back before any answer that waited on the slow LLM
    assert slow and all(order_done < done for done, _ in slow.values())
    # the LLM was asked CONCURRENCY questions at once, never more; the rest got no slot
    assert llm.peak == CONCURRENCY and len(slow) == CONCURRENCY
    assert len(busy) == len(questions) - CONCURRENCY
    # every shopper got a polite reply, none an error
    for _, text in finished.values():
        assert text and SOMETHING_WENT_WRONG not in text
    for _, text in busy.values():
        assert "can't answer that right now" in text and "human agent" in text
