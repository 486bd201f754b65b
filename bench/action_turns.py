"""Time and shop calls of the action server's work per turn, for order and change turns.

    .venv/bin/python bench/action_turns.py [--rounds 30] [--repo DIR]

Starts the real shop (seeded temp SQLite) and runs the actions in-process, the way Rasa calls
them for one user message: ``validate_change_form`` then the question of the requested slot,
or ``action_order_status``. Each round is one shopper returning items (long first message,
payment method, read-back, "no", stop) and two order-status turns; nothing is written, so
every round sees the same data. Prints the median and p95 per kind of turn and the shop
requests per turn. ``--repo`` runs the actions of another checkout (e.g. the commit before a
change: ``git worktree add /tmp/before <rev>``) against the same shop, for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]


def load_actions(repo: Path) -> Dict[str, Any]:
    sys.path.insert(0, str(repo))
    try:  # the change form's questions moved to actions.change_actions
        questions = importlib.import_module("actions.change_actions")
    except ModuleNotFoundError:
        questions = importlib.import_module("actions.changes")
    return {
        "form": importlib.import_module("actions.changes").ValidateChangeForm(),
        "status": importlib.import_module("actions.orders").ActionOrderStatus(),
        "ask": {a.slot: a for a in (cls() for name, cls in vars(questions).items()
                                    if name.startswith("ActionAsk")) if hasattr(a, "slot")},
        "stop": questions.ActionStopChange(),
    }


class Shopper:
    """One conversation: slots and events as Rasa would send them to the action server."""

    def __init__(self, domain: Dict[str, Any]) -> None:
        from rasa_sdk import Tracker  # noqa: F401 - imported here, after sys.path is set

        self.slots: Dict[str, Any] = {k: v.get("initial_value") for k, v in domain["slots"].items()}
        self.slots.update(customer_id="olivia_ito_3591", customer_name="Olivia", identified=True,
                          requested_slot=None)
        self.events: List[Dict[str, Any]] = []
        self.latest: Dict[str, Any] = {}
        self.sender = "bench-" + secrets.token_hex(4)
        self.form_active = False

    def say(self, text: str, intent: str = "inform", **entities: str) -> None:
        ents = [{"entity": k, "value": v} for k, v in entities.items()]
        self.latest = {"text": text, "intent": {"name": intent, "confidence": 1.0},
                       "entities": ents}
        self.events.append({"event": "user", "timestamp": time.time(), "text": text,
                            "parse_data": self.latest})
        for ent in ents:
            if ent["entity"] == "order_id":
                self.slots["order_id"] = ent["value"]

    def run(self, action: Any) -> List[Dict[str, Any]]:
        from rasa_sdk import Tracker
        from rasa_sdk.executor import CollectingDispatcher

        loop = {"name": "change_form"} if self.form_active else {}
        tracker = Tracker(self.sender, dict(self.slots), dict(self.latest), list(self.events),
                          False, None, loop, "action_listen")
        events = asyncio.run(action.run(CollectingDispatcher(), tracker, {}))
        for event in events:
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
        self.events += [{"event": "action", "name": action.name()}, *events]
        return events


def form_turn(acts: Dict[str, Any], shopper: Shopper) -> None:
    """What Rasa does for one message inside change_form: validate, then ask the next slot."""
    shopper.run(acts["form"])
    if not shopper.form_active:
        shopper.form_active = True
        shopper.events.append({"event": "active_loop", "name": "change_form"})
    asked = acts["ask"].get(shopper.slots.get("requested_slot") or "")
    if asked is not None:
        shopper.run(asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose actions run")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.support import free_port, start_shop

    tmp = Path(tempfile.mkdtemp(prefix="action-turns-"))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "SHOP_PORT": str(port), "SHOP_API_TOKEN": token,
           "SHOP_DATABASE_URL": f"sqlite:///{tmp / 'shop.db'}"}
    shop = start_shop(env, tmp / "shop.log")
    os.environ.update(SHOP_URL=f"http://127.0.0.1:{port}", SHOP_API_TOKEN=token)
    try:
        import requests
        import yaml

        calls = {"n": 0}
        original = requests.Session.request

        def counted(self: Any, *a: Any, **kw: Any) -> Any:
            calls["n"] += 1
            return original(self, *a, **kw)

        requests.Session.request = counted  # type: ignore[method-assign]
        acts = load_actions(args.repo.resolve())
        domain = yaml.safe_load((args.repo / "domain.yml").read_text())
        times: Dict[str, List[float]] = defaultdict(list)
        requests_per: Dict[str, List[int]] = defaultdict(list)

        def timed(kind: str, step: Any) -> None:
            before, started = calls["n"], time.perf_counter()
            step()
            times[kind].append((time.perf_counter() - started) * 1000)
            requests_per[kind].append(calls["n"] - before)

        for _ in range(args.rounds):
            s = Shopper(domain)
            s.say("hi, i'd like to return the sneakers from order w5866402, they're too small",
                  "return_order", order_id="W5866402", return_reason="too small")
            timed("change: first message", lambda s=s: form_turn(acts, s))
            s.say("to my gift card please")
            timed("change: answer", lambda s=s: form_turn(acts, s))
            s.say("no", "deny")
            timed("change: answer", lambda s=s: form_turn(acts, s))
            s.say("stop", "stop")
            timed("change: stop", lambda s=s: s.run(acts["stop"]))
            s.say("what's the status of #W5442520", "order_status", order_id="#W5442520")
            timed("order status", lambda s=s: s.run(acts["status"]))
            s.say("and w5866402?", "order_status", order_id="w5866402")
            timed("order status", lambda s=s: s.run(acts["status"]))
        print(f"actions of {args.repo.resolve()} ({args.rounds} rounds, real shop on SQLite)")
        print(f"{'turn':24} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'shop requests':>14}")
        for kind, values in times.items():
            p95 = statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)
            reqs = statistics.mean(requests_per[kind])
            print(f"{kind:24} {len(values):4d} {statistics.median(values):8.1f} {p95:8.1f} "
                  f"{reqs:14.1f}")
    finally:
        shop.terminate()
        shop.wait(timeout=10)


if __name__ == "__main__":
    main()
