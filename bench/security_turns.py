"""What the abuse checks cost a whole turn on the REST channel: the same stack and turns with the
per-client limits on and off.

    .venv/bin/python bench/security_turns.py [--rounds 40]

Starts the real stack (shop, action server, Rasa) twice: with ``RATE_LIMITS=on`` (limits raised
so that this one client is never refused: the checks run, nothing is throttled) and with
``RATE_LIMITS=off``. Each round, on a new conversation: a greeting (NLU only), the two facts of
identification (a shop lookup with the failure count), an order status (shop reads). Prints the
median and p95 per kind of turn, both ways, and the difference; the in-process cost of the
checks alone is bench/security_overhead.py. Nothing is asserted: the numbers go to
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conversations.harness import Stack, remove_stack, start_stack  # noqa: E402

HIGH_LIMITS = {"RATE_LIMIT_TURNS_PER_CONVERSATION": "100000/minute",
               "RATE_LIMIT_TURNS_PER_CLIENT": "100000/minute",
               "RATE_LIMIT_NEW_CONVERSATIONS_PER_CLIENT": "100000/minute"}


def customers(stack: Stack, n: int) -> list[dict]:
    rows = stack.shop_query(
        "SELECT c.email, c.zip, c.first_name, o.order_id FROM customers c JOIN orders o "
        "ON o.user_id = c.user_id GROUP BY c.user_id ORDER BY c.user_id LIMIT ?", (n,))
    return [dict(r) for r in rows]


def timed(chat, text: str) -> float:
    start = time.perf_counter()
    chat.say(text)
    return (time.perf_counter() - start) * 1000


def run(limits: str, rounds: int) -> dict[str, list[float]]:
    overrides = {"rasa": {"RATE_LIMITS": limits, **(HIGH_LIMITS if limits == "on" else {})}}
    stack = start_stack(overrides=overrides)
    try:
        people = customers(stack, rounds + 3)
        times: dict[str, list[float]] = {"greeting": [], "identification": [], "order status": []}
        for i, who in enumerate(people):
            chat = stack.conversation()
            greet = timed(chat, "hello")
            chat.say("where is my order?")
            ident = timed(chat, f"{who['email']} {who['zip']}")
            status = timed(chat, f"what's the status of {who['order_id']}")
            if i >= 3:  # warm-up rounds
                times["greeting"].append(greet)
                times["identification"].append(ident)
                times["order status"].append(status)
        return times
    finally:
        remove_stack(stack)


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    results = {mode: run(mode, args.rounds) for mode in ("on", "off")}
    print(f"REST turn latency, ms (median / p95), {args.rounds} rounds each")
    print(f"{'turn':<16}{'limits on':>18}{'limits off':>18}{'median diff':>14}")
    out = {}
    for kind in results["on"]:
        on, off = summary(results["on"][kind]), summary(results["off"][kind])
        out[kind] = {"on": on, "off": off}
        print(f"{kind:<16}{on[0]:>9.1f} /{on[1]:>6.1f}{off[0]:>11.1f} /{off[1]:>6.1f}"
              f"{on[0] - off[0]:>+13.1f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
