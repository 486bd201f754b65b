"""Simulated shoppers for locust: whole conversations through Rasa's REST channel.

Each simulated shopper is one conversation with its own sender id: greet, ask for an order,
identify (email + zip, or first + last name + zip), the status of one of their orders, tracking, a
product question, an FAQ, goodbye. Every message that Rasa confirmed (HTTP 200 with a JSON list)
is recorded, per sender and in order, and written to ``LOAD_SENT_FILE`` (JSON lines) when the run
ends, so bench/load/run_load.py can count the events of the SQL tracker store against it.

Settings (environment): LOAD_CUSTOMERS (JSON file: list of {email, first, last, zip, orders}),
LOAD_SENT_FILE (where the sent messages go), LOAD_THINK_MIN / LOAD_THINK_MAX (seconds of "think
time" between two messages of a shopper, default 1 and 3), LOAD_TIMEOUT (seconds per request).

Run it with bench/load/run_load.py (starts the stack, rate limits off); alone, against a running
stack started without the per-client rate limits (every simulated shopper is 127.0.0.1, which
they would refuse with 429), e.g. `RATE_LIMITS=off make run`:
  .venv-services/bin/locust -f bench/load/locustfile.py --headless -u 50 -r 5 -t 5m \
      --host http://127.0.0.1:5005
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from pathlib import Path

import gevent
from locust import HttpUser, events, task

CUSTOMERS = json.loads(Path(os.environ["LOAD_CUSTOMERS"]).read_text()) if os.environ.get(
    "LOAD_CUSTOMERS") else [{"email": "mei.martin4637@example.com", "first": "Mei",
                             "last": "Martin", "zip": "32124", "orders": ["#W7017301"]}]
THINK = (float(os.environ.get("LOAD_THINK_MIN", "1")), float(os.environ.get("LOAD_THINK_MAX", "3")))
TIMEOUT = float(os.environ.get("LOAD_TIMEOUT", "120"))

FAQS = ["how long does a refund take?", "what is your return policy?",
        "can I cancel an order that was already shipped?", "which payment methods do you accept?",
        "how do exchanges work?"]
PRODUCTS = ["how much is the office chair?", "do you have the t-shirt in blue?",
            "what sizes does the running shoes come in?", "is the water bottle available?"]
GREETINGS = ["hi", "hello", "hey there", "good morning"]
GOODBYES = ["thanks, bye", "that's all, goodbye", "thank you!"]

# sender id -> the messages Rasa confirmed, in the order sent; plus the flows' own checks
SENT: dict[str, list[str]] = {}
IN_FLIGHT: dict[str, str] = {}
FLOW_STATS = {"flows": 0, "identified": 0, "not_identified": 0, "empty_replies": 0}
_lock = threading.Lock()


class Shopper(HttpUser):
    """One shopper = one conversation per flow (a fresh sender id each time)."""

    def think(self) -> None:
        gevent.sleep(random.uniform(*THINK))

    def say(self, sender: str, text: str, step: str) -> list:
        with _lock:
            IN_FLIGHT[sender] = text
        with self.client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text},
                              name=step, timeout=TIMEOUT, catch_response=True) as response:
            try:
                replies = response.json()
            except ValueError:
                response.failure(f"not JSON: {response.text[:100]!r}")
                return []
            if response.status_code != 200 or not isinstance(replies, list):
                response.failure(f"HTTP {response.status_code}: {response.text[:100]!r}")
                return []
            with _lock:
                SENT.setdefault(sender, []).append(text)
                IN_FLIGHT.pop(sender, None)
                if not replies:
                    FLOW_STATS["empty_replies"] += 1
            response.success()
            return replies

    @staticmethod
    def texts(replies: list) -> str:
        return "\n".join(str(r.get("text", "")) for r in replies if isinstance(r, dict))

    @task
    def whole_flow(self) -> None:
        sender = f"load-{uuid.uuid4().hex[:16]}"
        customer = random.choice(CUSTOMERS)
        order = random.choice(customer["orders"])
        self.say(sender, random.choice(GREETINGS), "1 greet")
        self.think()
        self.say(sender, "where is my order?", "2 ask order")
        self.think()
        if random.random() < 0.8:
            reply = self.say(sender, f"my email is {customer['email']}, zip {customer['zip']}",
                             "3 identify email+zip")
        else:
            name = f"{customer['first']} {customer['last']}"
            reply = self.say(sender, f"{name}, zip {customer['zip']}", "3 identify name+zip")
        with _lock:
            key = "identified" if customer["first"] in self.texts(reply) else "not_identified"
            FLOW_STATS[key] += 1
        self.think()
        self.say(sender, f"what is the status of order {order}", "4 order status")
        self.think()
        self.say(sender, f"track order {order}", "5 tracking")
        self.think()
        self.say(sender, random.choice(PRODUCTS), "6 product")
        self.think()
        self.say(sender, random.choice(FAQS), "7 faq")
        self.think()
        self.say(sender, random.choice(GOODBYES), "8 goodbye")
        with _lock:
            FLOW_STATS["flows"] += 1
        self.think()


@events.quitting.add_listener
def write_sent(environment, **_kwargs) -> None:
    path = os.environ.get("LOAD_SENT_FILE")
    if not path:
        return
    with _lock, open(path, "w", encoding="utf-8") as out:
        for sender in sorted(set(SENT) | set(IN_FLIGHT)):
            out.write(json.dumps({"sender": sender, "sent": SENT.get(sender, []),
                                  "in_flight": IN_FLIGHT.get(sender)}) + "\n")
        out.write(json.dumps({"flow_stats": FLOW_STATS}) + "\n")
