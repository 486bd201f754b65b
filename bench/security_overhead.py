"""What the REST channel's abuse limits cost per turn, in-process (issue 22).

    .venv/bin/python bench/security_overhead.py [--checks 10000] [--repeats 5]

Measures, with the default limits (addons/rate_limits.py) and ``memory://`` storage:

1. ``RateLimits.check`` for allowed messages: ``--checks`` messages spread over 500 client
   addresses and 2,000 conversations (none over a limit: the path of every normal turn);
2. the same with 20,000 more conversations live in the windows (the storage's expiry thread scans
   every live key each 10 ms, so its share grows with them);
3. ``check`` for refused messages (one client over its limit: what a script costs us);
4. the REST channel's metadata handling of one request: the sender and 4 KB metadata check
   (``refusal``), the client address (``X-Forwarded-For`` with one trusted hop) and the metadata
   with ``client_address`` (``get_metadata``);
5. the whole middleware step (``rate_refusal``, awaited on one event loop) and ``RATE_LIMITS=off``;
6. the memory of the record of seen conversations at its bound (100,000 senders).

Best of ``--repeats`` runs, microseconds per call (setup not timed); for scale, a Rasa turn over
REST takes 100-500 ms on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from addons.channels import RestInput  # noqa: E402
from addons.rate_limits import MAX_SEEN, RateLimits, SeenSenders  # noqa: E402

CLIENTS = 500
CONVERSATIONS = 2000


class Request:
    """What RestInput reads of a Sanic request."""

    def __init__(self, body: Dict[str, Any], forwarded_for: str) -> None:
        self.json = body
        self.method = "POST"
        self.ip = "127.0.0.1"
        self.remote_addr = ""
        self.headers = {"x-forwarded-for": forwarded_for}


def per_call_us(setup: Callable[[], Any], run: Callable[[Any, int], None], n: int,
                repeats: int) -> float:
    """Best time of ``run(setup(), n)`` over ``repeats``, per call; ``setup`` is not timed."""
    best = float("inf")
    for _ in range(repeats):
        state = setup()
        gc.collect()
        start = time.perf_counter()
        run(state, n)
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def client_of(i: int) -> str:
    return f"10.0.{i % CLIENTS // 250}.{i % CLIENTS % 250}"


def limiter(live: int = 0, env: Dict[str, str] | None = None) -> Callable[[], RateLimits]:
    """A fresh limiter (every window empty), with ``live`` other conversations in its windows."""
    def setup() -> RateLimits:
        limits = RateLimits.from_env(env or {})
        for i in range(live):
            limits.check(f"10.1.{i // 250 % 250}.{i % 250}", f"live-{i}")
        return limits
    return setup


def allowed_checks(limits: RateLimits, n: int) -> None:
    for i in range(n):
        conversation = i % CONVERSATIONS
        limits.check(client_of(conversation), f"conv-{conversation}")


def refused_checks(limits: RateLimits, n: int) -> None:
    for i in range(n):
        limits.check("203.0.113.66", f"script-{i % 3}")


def channel(env: Dict[str, str]) -> Callable[[], RestInput]:
    return lambda: RestInput(rate_limits=RateLimits.from_env(env), proxy_hops=1)


def metadata_handling(rest: RestInput, n: int) -> None:
    requests = [Request({"sender": f"conv-{i}", "message": "where is my order?",
                         "metadata": {"page": "/orders", "customer_token": "t" * 200}},
                        f"6.6.6.6, 198.51.100.{i % 250}") for i in range(100)]
    for i in range(n):
        request = requests[i % 100]
        rest.refusal(request)
        rest.get_metadata(request)


def middleware(rest: RestInput, n: int) -> None:
    requests = [Request({"sender": f"conv-{i}", "message": "hi"}, client_of(i))
                for i in range(CONVERSATIONS)]

    async def main() -> None:
        for i in range(n):
            request = requests[i % CONVERSATIONS]
            rest.refusal(request) or await rest.rate_refusal(request)
            rest.get_metadata(request)

    asyncio.run(main())


def seen_record_mib() -> float:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    seen = SeenSenders()
    for i in range(MAX_SEEN):
        seen.remember(f"web-session-{i:012d}.{'x' * 43}")  # a signed web session id, 76 chars
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(seen) == MAX_SEEN
    return size / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, repeats = args.checks, args.repeats
    off = {"RATE_LIMITS": "off"}
    results = {
        "check, allowed (2,000 conversations, 500 clients)": per_call_us(
            limiter(), allowed_checks, n, repeats),
        "check, allowed (20,000 more conversations live)": per_call_us(
            limiter(live=20_000), allowed_checks, n, repeats),
        "check, refused (one client over its limit)": per_call_us(
            limiter(), refused_checks, n, repeats),
        "metadata handling (sender/4 KB check, client address, metadata)": per_call_us(
            channel(off), metadata_handling, n, repeats),
        "middleware + metadata, RATE_LIMITS=on": per_call_us(
            channel({}), middleware, n, repeats),
        "middleware + metadata, RATE_LIMITS=off": per_call_us(
            channel(off), middleware, n, repeats),
    }
    width = max(map(len, results))
    print(f"per call, best of {repeats} runs of {n:,} calls (memory:// storage, default limits)")
    for name, us in results.items():
        print(f"  {name:<{width}}  {us:7.1f} µs")
    mib = seen_record_mib()
    print(f"  {'record of seen conversations at its bound (100,000 senders)':<{width}}  "
          f"{mib:7.1f} MiB")
    print(json.dumps({"us_per_call": {k: round(v, 2) for k, v in results.items()},
                      "seen_record_mib": round(mib, 1), "checks": n}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
