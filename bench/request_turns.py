"""Issue 23: latency of the turns the request-understanding layer adds work to, over REST.

    .venv/bin/python bench/request_turns.py [--rounds 3]

Starts the real stack (shop on a seeded temp database, action server, Rasa with models/) and,
per round, opens fresh conversations that identify with two facts and then send one long,
compound request each (products and options named, exceptions, relative choices, several
orders, a request before identification) — the messages the router and the resolvers read in
full. No turn calls the LLM. Nothing is confirmed, so nothing is written and every round sees
the same data. Prints p50 / p95 / max of the request turns and of the identification turns,
and the router's own cost per message (in-process, 2,000 messages).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conversations.harness import remove_stack, start_stack  # noqa: E402

# every simulated shopper comes from 127.0.0.1: the per-client rate limits would refuse the
# load (addons/rate_limits.py); the harness turns them off too, this says it where it matters
NO_RATE_LIMITS = {"rasa": {"RATE_LIMITS": "off"}}

# (identification, request): the project's own shoppers over the seed data
CASES = [
    ("emma.santos7683@example.com, zip 78228",
     "i dont need the kettle or the bookshelf from w1620235 anymore, can u cancle them?"),
    ("emma.santos7683@example.com, zip 78228",
     "i want to return everything from order w3113816 except the office chair, they dont fit "
     "in my office"),
    ("emma.santos7683@example.com, zip 78228",
     "For #W9655299 I want to exchange my earbuds (white, 8 hours) for black ones with 4 "
     "hours"),
    ("emma.santos7683@example.com, zip 78228",
     "swap the blue water bottle in W9903153 for the biggest one you have, same price or "
     "lower"),
    ("olivia.ito5204@example.com, zip 80218",
     "please cancel W5442520 and W7941031, i ordered both by mistake"),
    ("olivia.ito5204@example.com, zip 80218",
     "could you change the default address on my account to my daughter's place, 1200 W "
     "Madison St, Chicago IL 60607?"),
    ("olivia.ito5204@example.com, zip 80218",
     "change the address of W3657213 to 88 Pine St, Denver CO 80203, then cancel W7941031, "
     "dont need it anymore"),
    ("olivia.ito5204@example.com, zip 80218", "what's the status of my last order?"),
]


def percentile(values: list, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def router_cost() -> float:
    """Microseconds per message of the router alone (the texts above, 2,000 calls)."""
    from addons.request_router import RoutingRules
    rules = RoutingRules({})
    texts = [request for _, request in CASES]
    start = time.perf_counter()
    for i in range(2000):
        rules.route(texts[i % len(texts)], "product_info")
    return (time.perf_counter() - start) / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stack = start_stack(overrides=NO_RATE_LIMITS)
    request_times: list = []
    identify_times: list = []
    try:
        for _ in range(args.rounds):
            for identify, request in CASES:
                chat = stack.conversation()
                start = time.perf_counter()
                chat.say(identify)
                identify_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                replies = chat.say(request)
                request_times.append(time.perf_counter() - start)
                assert replies, f"no answer to {request!r}"
    finally:
        remove_stack(stack)
    for name, values in (("request turns", request_times), ("identification", identify_times)):
        print(f"{name:15} n={len(values):3}  p50 {statistics.median(values) * 1000:6.0f} ms  "
              f"p95 {percentile(values, 0.95) * 1000:6.0f} ms  max {max(values) * 1000:6.0f} ms")
    print(f"router alone: {router_cost():.1f} µs per message")


if __name__ == "__main__":
    main()
