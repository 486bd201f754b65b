"""Risk control of order changes (shop/risk.py): false positives, catch rate, cost.

1. **False positives**: every change the store's rules allow on the seed data (shop/data/db.json,
   nothing else), for every customer: cancel each pending order (both reasons), a new shipping
   address and every other payment method for it, every item of it to every other available
   variant with every payment method; return each delivered order's every item alone and all of
   them, to every allowed refund method; exchange every item for every other available variant
   with every method. Each change runs through the same `risk.checked_write` the API runs,
   alone on the seeded database (a transaction rolled back afterwards: the same as a fresh
   copy, which `--http-sample` confirms through the HTTP API on real fresh copies). A change the
   store's rules refuse (a gift card too small, ...) is no legitimate change and is not counted.
   Also: each customer doing *all* their cancels and returns in one sitting (a stress case).
2. **Catch rate**: abuse scenarios scripted here through the HTTP API, one fresh copy of the
   database per scenario, one customer per instance (at most `--instances` each): caught when
   one of its abusive changes is refused with 409 `risk_review_required`.
3. **Cost**: the time `checked_write` adds to the store's rule (same changes, both ways).

Run: .venv-services/bin/python -m bench.risk_eval [--quick] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from shop import risk  # noqa: E402
from shop.app import create_app  # noqa: E402
from shop.config import SEED_FILE, RiskSettings, Settings  # noqa: E402
from shop.db import Order, init_db, make_engine  # noqa: E402
from shop.deps import Store  # noqa: E402
from shop.errors import ShopError  # noqa: E402
from shop.routes.orders import WRITES  # noqa: E402
from shop.schemas import AddressIn, CancelIn, ItemsIn, PaymentIn, ReturnIn  # noqa: E402

DOC = ROOT / "docs" / "risk.md"
START, END = "<!-- risk-eval:start -->", "<!-- risk-eval:end -->"
TOKEN = "risk-eval-token"
RULES = {operation: rule for _s, _n, operation, _m, rule in WRITES}
NEW_ADDRESS = {"address1": "12 Harbour Lane", "address2": "", "city": "Riverside",
               "state": "CA", "country": "USA", "zip": "92501"}
OTHER_ADDRESS = {"address1": "980 Quarry Road", "address2": "Unit 4", "city": "Reno",
                 "state": "NV", "country": "USA", "zip": "89502"}
HIGH = 1000.0  # the default high value, dollars (the scenarios that need one)


def cents(amount: float) -> int:
    return int(round(amount * 100))


# ---------------------------------------------------------------- the seed


class Seed:
    def __init__(self) -> None:
        self.data = json.loads(SEED_FILE.read_text(encoding="utf-8"))
        self.users: dict[str, Any] = self.data["users"]
        self.orders: dict[str, Any] = self.data["orders"]
        self.products: dict[str, Any] = self.data["products"]

    def orders_of(self, user_id: str, status: str) -> list[dict[str, Any]]:
        return [self.orders[o] for o in self.users[user_id]["orders"]
                if o in self.orders and self.orders[o]["status"] == status]

    def methods(self, user_id: str, source: str | None = None) -> list[dict[str, Any]]:
        found = self.users[user_id]["payment_methods"].values()
        return [m for m in found if source is None or m["source"] == source]

    def others(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The other available variants of an item's product."""
        return [v for v in self.products[item["product_id"]]["variants"].values()
                if v["available"] and v["item_id"] != item["item_id"]]

    @staticmethod
    def original(order: dict[str, Any]) -> str:
        return order["payment_history"][0]["payment_method_id"]

    @staticmethod
    def total(order: dict[str, Any]) -> float:
        return round(sum(i["price"] for i in order["items"]), 2)


@dataclass(frozen=True)
class Attempt:
    operation: str
    order_id: str
    user_id: str
    body: BaseModel


def legitimate_changes(seed: Seed, quick: bool = False) -> Iterator[Attempt]:
    """Every change the rules allow on the seed (see the module docstring); `quick`: one
    variant and one method per item instead of all."""
    for user_id in seed.users:
        methods = [m["id"] for m in seed.methods(user_id)]
        for order in seed.orders_of(user_id, "pending"):
            oid = order["order_id"]
            for reason in ("no longer needed", "ordered by mistake"):
                yield Attempt("cancel", oid, user_id, CancelIn(reason=reason))
            yield Attempt("order-address", oid, user_id, AddressIn(**NEW_ADDRESS))
            for method in methods:
                if method != seed.original(order):
                    yield Attempt("payment", oid, user_id, PaymentIn(payment_method_id=method))
            for item_id in dict.fromkeys(i["item_id"] for i in order["items"]):
                item = next(i for i in order["items"] if i["item_id"] == item_id)
                for variant in seed.others(item)[: 1 if quick else None]:
                    for method in methods[: 1 if quick else None]:
                        yield Attempt("items", oid, user_id, ItemsIn(
                            item_ids=[item_id], new_item_ids=[variant["item_id"]],
                            payment_method_id=method))
        for order in seed.orders_of(user_id, "delivered"):
            oid = order["order_id"]
            original = seed.original(order)
            refund_to = [original] + [m["id"] for m in seed.methods(user_id, "gift_card")
                                      if m["id"] != original]
            ids = [i["item_id"] for i in order["items"]]
            selections = [[i] for i in dict.fromkeys(ids)] + ([ids] if len(ids) > 1 else [])
            for selection in selections:
                for method in refund_to:
                    yield Attempt("return", oid, user_id, ReturnIn(
                        item_ids=selection, payment_method_id=method, reason="changed mind"))
            for item_id in dict.fromkeys(ids):
                item = next(i for i in order["items"] if i["item_id"] == item_id)
                for variant in seed.others(item)[: 1 if quick else None]:
                    for method in methods[: 1 if quick else None]:
                        yield Attempt("exchange", oid, user_id, ItemsIn(
                            item_ids=[item_id], new_item_ids=[variant["item_id"]],
                            payment_method_id=method))


# ---------------------------------------------------------------- in-process runs


@dataclass
class Outcome:
    kind: str  # allowed | flagged | refused (by the store's rules)
    codes: tuple[str, ...] = ()
    score: int = 0
    seconds: float = 0.0


def settle(store: Store, session: Session, attempt: Attempt, check: bool = True) -> Outcome:
    """One change in the session (its own savepoint); the caller rolls everything back."""
    rule = RULES[attempt.operation]
    started = time.perf_counter()
    savepoint = session.begin_nested()
    try:
        if check:
            _answer, record = risk.decide(session, store, attempt.operation, attempt.order_id,
                                          attempt.user_id, attempt.body, rule)
        else:
            rule(session, attempt.order_id, attempt.user_id, attempt.body)
            record = {"reasons": [], "score": 0}
        session.flush()
        savepoint.commit()
        outcome = Outcome("allowed", tuple(r["code"] for r in record["reasons"]),
                          record["score"])
    except risk.RiskRefused as refusal:
        savepoint.rollback()
        record = refusal.record
        outcome = Outcome("flagged", tuple(r["code"] for r in record["reasons"]),
                          record["score"])
    except ShopError:
        savepoint.rollback()
        outcome = Outcome("refused")
    outcome.seconds = time.perf_counter() - started
    return outcome


def one_by_one(store: Store, attempts: list[Attempt],
               check: bool = True) -> list[tuple[Attempt, Outcome]]:
    """Each change alone on the database as it is (rolled back after it)."""
    results = []
    for attempt in attempts:
        with Session(store.writer, expire_on_commit=False) as session:
            session.begin()
            try:
                results.append((attempt, settle(store, session, attempt, check)))
            finally:
                session.rollback()
    return results


def all_at_once(store: Store, seed: Seed) -> dict[str, list[Outcome]]:
    """Each customer cancels every pending order, then returns every delivered one in full."""
    per_customer: dict[str, list[Outcome]] = {}
    for user_id in seed.users:
        steps = [Attempt("cancel", o["order_id"], user_id, CancelIn(reason="no longer needed"))
                 for o in seed.orders_of(user_id, "pending")]
        steps += [Attempt("return", o["order_id"], user_id, ReturnIn(
            item_ids=[i["item_id"] for i in o["items"]],
            payment_method_id=seed.original(o))) for o in seed.orders_of(user_id, "delivered")]
        if not steps:
            continue
        with Session(store.writer, expire_on_commit=False) as session:
            session.begin()
            try:
                per_customer[user_id] = [settle(store, session, s) for s in steps]
            finally:
                session.rollback()
    return per_customer


# ---------------------------------------------------------------- HTTP on fresh copies


class Shop:
    """The app over HTTP (TestClient) on a fresh copy of the seeded database."""

    def __init__(self, template: Path, workdir: Path, risk_settings: RiskSettings) -> None:
        self.path = workdir / f"shop-{random.getrandbits(40):010x}.db"
        shutil.copy(template, self.path)
        settings = Settings(database_url=f"sqlite:///{self.path}", api_token=TOKEN,
                            risk=risk_settings)
        self.client = TestClient(create_app(settings))
        self.client.headers["Authorization"] = f"Bearer {TOKEN}"
        self.client.__enter__()
        self.store: Store = self.client.app.state.store  # type: ignore[attr-defined]

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.path.unlink(missing_ok=True)

    def change(self, user_id: str, operation: str, order_id: str, body: dict[str, Any]) -> Any:
        suffix = "address" if operation == "order-address" else operation
        return self.client.post(f"/orders/{quote(order_id, safe='')}/{suffix}", json=body,
                                headers={"X-Customer-Id": user_id})

    def default_address(self, user_id: str, address: dict[str, str]) -> Any:
        return self.client.put(f"/customers/{user_id}/address", json=address,
                               headers={"X-Customer-Id": user_id})

    def lookup(self, **facts: str) -> int:
        return self.client.get("/customers/lookup", params=facts).status_code

    def past_returns(self, seed: Seed, user_id: str, days_ago: list[int]) -> None:
        """Scripted history: returned orders of the customer dated `days_ago` (copies of one of
        their orders under new ids, as if returned then; the seed has no returns)."""
        template = seed.orders[seed.users[user_id]["orders"][0]]
        now = datetime.now(timezone.utc)
        with Session(self.store.writer) as session, session.begin():
            for n, days in enumerate(days_ago):
                session.execute(insert(Order).values(
                    order_id=f"#H{random.getrandbits(30):09d}{n}", user_id=user_id,
                    position=100 + n, status="return requested", address=template["address"],
                    items=template["items"], fulfillments=[],
                    payment_history=template["payment_history"],
                    return_items=sorted(i["item_id"] for i in template["items"]),
                    return_payment_method_id=seed.original(template),
                    updated_at=now - timedelta(days=days)))


def http_agrees(template: Path, workdir: Path, risk_settings: RiskSettings,
                sample: list[tuple[Attempt, Outcome]]) -> int:
    """How many sampled changes get the same decision through the API on a fresh copy."""
    agree = 0
    for attempt, outcome in sample:
        shop = Shop(template, workdir, risk_settings)
        try:
            answer = shop.change(attempt.user_id, attempt.operation, attempt.order_id,
                                 attempt.body.model_dump(mode="json"))
        finally:
            shop.close()
        kind = ("allowed" if answer.status_code == 200 else "flagged"
                if answer.json()["error"]["code"] == risk.REVIEW_REQUIRED else "refused")
        agree += kind == outcome.kind
    return agree


# ---------------------------------------------------------------- abuse scenarios


@dataclass
class Scenario:
    name: str
    what: str
    eligible: Callable[[Seed, str], Any]  # the plan for a customer, or None
    run: Callable[[Shop, Seed, str, Any], list[Any]]  # the abusive changes' answers
    blind_spot: bool = False  # abuse with none of the signals the rules know
    unique_name: bool = False  # guesses by name: only customers no one shares a name with
    results: list[bool] = field(default_factory=list)  # caught, per instance
    done: int = 0  # abusive changes that went through (200)
    tried: int = 0  # abusive changes asked


def _is_flag(answer: Any) -> bool:
    return answer.status_code == 409 and answer.json()["error"]["code"] == risk.REVIEW_REQUIRED


def _full_return(order: dict[str, Any], method: str) -> dict[str, Any]:
    return {"item_ids": [i["item_id"] for i in order["items"]], "payment_method_id": method,
            "reason": "changed mind"}


def _returns(shop: Shop, user_id: str, orders: list[dict[str, Any]],
             method: Callable[[dict[str, Any]], str]) -> list[Any]:
    answers = []
    for order in orders:
        answer = shop.change(user_id, "return", order["order_id"],
                             _full_return(order, method(order)))
        answers.append(answer)
        if _is_flag(answer):
            break
    return answers


def _wrong_zip(zip_code: str, n: int) -> str:
    return f"{(int(zip_code) + 17 * n + 1) % 100000:05d}"


def _guess(shop: Shop, seed: Seed, user_id: str, times: int, by: str = "email") -> None:
    user = seed.users[user_id]
    for n in range(times):
        facts = ({"email": user["email"]} if by == "email" else
                 {"first_name": user["name"]["first_name"], "last_name": user["name"]["last_name"]})
        status = shop.lookup(**facts, zip=_wrong_zip(user["address"]["zip"], n))
        assert status == 404, (user_id, by, n, status)
    assert shop.lookup(email=user["email"], zip=user["address"]["zip"]) == 200


def _pending_worth(seed: Seed, user_id: str, low: float, high: float) -> dict[str, Any] | None:
    return next((o for o in seed.orders_of(user_id, "pending")
                 if low <= seed.total(o) < high), None)


def _dear_exchange(seed: Seed, user_id: str) -> dict[str, Any] | None:
    """A delivered item and an available variant worth >= $1,000, settled by card or PayPal."""
    methods = [m["id"] for m in seed.methods(user_id) if m["source"] != "gift_card"]
    if not methods:
        return None
    for order in seed.orders_of(user_id, "delivered"):
        for item in order["items"]:
            for variant in seed.others(item):
                if variant["price"] >= HIGH:
                    return {"order": order, "body": {
                        "item_ids": [item["item_id"]], "new_item_ids": [variant["item_id"]],
                        "payment_method_id": methods[0]}}
    return None


def _exchanges(n: int, below: float = 1e9) -> Callable[[Seed, str], Any]:
    """One exchange per delivered order (an item for another variant under `below`, settled by
    card or PayPal), when the customer has `n` such orders."""
    def eligible(seed: Seed, user_id: str) -> Any:
        methods = [m["id"] for m in seed.methods(user_id) if m["source"] != "gift_card"]
        plans = []
        for order in seed.orders_of(user_id, "delivered") if methods else []:
            swap = next(((item, v) for item in order["items"] for v in seed.others(item)
                         if v["price"] < below), None)
            if swap:
                plans.append({"order": order, "body": {
                    "item_ids": [swap[0]["item_id"]], "new_item_ids": [swap[1]["item_id"]],
                    "payment_method_id": methods[0]}})
        return plans if len(plans) >= n else None
    return eligible


def _steerable(seed: Seed, user_id: str) -> tuple[str, list[dict[str, Any]]] | None:
    gifts = seed.methods(user_id, "gift_card")
    if not gifts:
        return None
    orders = [o for o in seed.orders_of(user_id, "delivered") if seed.original(o) != gifts[0]["id"]]
    return (gifts[0]["id"], orders) if len(orders) >= 2 else None


def _gift_return(seed: Seed, user_id: str) -> tuple[str, dict[str, Any]] | None:
    gifts = seed.methods(user_id, "gift_card")
    for order in seed.orders_of(user_id, "delivered"):
        if gifts and seed.original(order) != gifts[0]["id"]:
            return gifts[0]["id"], order
    return None


def scenarios() -> list[Scenario]:
    def serial(shop: Shop, seed: Seed, user_id: str, orders: Any) -> list[Any]:
        return _returns(shop, user_id, orders, seed.original)

    def with_history(days: list[int]) -> Callable[[Shop, Seed, str, Any], list[Any]]:
        def run(shop: Shop, seed: Seed, user_id: str, order: Any) -> list[Any]:
            shop.past_returns(seed, user_id, days)
            return _returns(shop, user_id, [order], seed.original)
        return run

    def steer(shop: Shop, seed: Seed, user_id: str, plan: Any) -> list[Any]:
        gift, orders = plan
        return _returns(shop, user_id, orders, lambda _o: gift)

    def address_then_exchange(shop: Shop, seed: Seed, user_id: str, plan: Any) -> list[Any]:
        assert shop.default_address(user_id, OTHER_ADDRESS).status_code == 200
        return [shop.change(user_id, "exchange", plan["order"]["order_id"], plan["body"])]

    def address_then_redirect(shop: Shop, seed: Seed, user_id: str, order: Any) -> list[Any]:
        assert shop.default_address(user_id, OTHER_ADDRESS).status_code == 200
        return [shop.change(user_id, "order-address", order["order_id"], OTHER_ADDRESS)]

    def address_then_gift_refund(shop: Shop, seed: Seed, user_id: str, plan: Any) -> list[Any]:
        gift, order = plan
        assert shop.default_address(user_id, OTHER_ADDRESS).status_code == 200
        return _returns(shop, user_id, [order], lambda _o: gift)

    def guesses_then(by: str, change: Callable[[Shop, Seed, str, Any], list[Any]]
                     ) -> Callable[[Shop, Seed, str, Any], list[Any]]:
        def run(shop: Shop, seed: Seed, user_id: str, plan: Any) -> list[Any]:
            _guess(shop, seed, user_id, 4, by)
            return change(shop, seed, user_id, plan)
        return run

    def redirect(shop: Shop, seed: Seed, user_id: str, order: Any) -> list[Any]:
        return [shop.change(user_id, "order-address", order["order_id"], OTHER_ADDRESS)]

    def exchange(shop: Shop, seed: Seed, user_id: str, plan: Any) -> list[Any]:
        return [shop.change(user_id, "exchange", plan["order"]["order_id"], plan["body"])]

    def gift_refund(shop: Shop, seed: Seed, user_id: str, plan: Any) -> list[Any]:
        gift, order = plan
        return _returns(shop, user_id, [order], lambda _o: gift)

    def serial_exchange(shop: Shop, seed: Seed, user_id: str, plans: Any) -> list[Any]:
        answers = []
        for plan in plans:
            answers.append(shop.change(user_id, "exchange", plan["order"]["order_id"],
                                       plan["body"]))
            if _is_flag(answers[-1]):
                break
        return answers

    def address_then_exchanges(shop: Shop, seed: Seed, user_id: str, plans: Any) -> list[Any]:
        assert shop.default_address(user_id, OTHER_ADDRESS).status_code == 200
        return serial_exchange(shop, seed, user_id, plans[:3])

    def delivered(n: int) -> Callable[[Seed, str], Any]:
        return lambda seed, u: (seed.orders_of(u, "delivered")
                                if len(seed.orders_of(u, "delivered")) >= n else None)

    def first_delivered(seed: Seed, user_id: str) -> Any:
        found = seed.orders_of(user_id, "delivered")
        return found[0] if found else None

    return [
        Scenario("serial_returns", "3-4 delivered orders returned in full one after another "
                 "(original payment method)", delivered(3), serial),
        Scenario("serial_returns_history", "3 returns in the last 25 days (scripted history), "
                 "then one more", first_delivered, with_history([5, 12, 25])),
        Scenario("slow_serial_returns", "4 returns 35-80 days ago (scripted history), then one "
                 "more", first_delivered, with_history([35, 50, 65, 80])),
        Scenario("gift_card_steering", "2+ delivered orders paid by card/PayPal, each refunded "
                 "to the gift card", _steerable, steer),
        Scenario("address_then_high_value_exchange", "new default address, then an exchange "
                 "for a variant worth $1,000+", _dear_exchange, address_then_exchange),
        Scenario("address_then_high_value_redirect", "new default address, then a pending "
                 "order worth $1,000+ sent there", lambda s, u: _pending_worth(s, u, HIGH, 1e9),
                 address_then_redirect),
        Scenario("address_then_gift_card_refund", "new default address, then a return "
                 "refunded to a gift card", _gift_return, address_then_gift_refund),
        Scenario("guesses_then_high_value_redirect", "4 wrong zips for the email, identified, "
                 "then a pending order worth $1,000+ redirected",
                 lambda s, u: _pending_worth(s, u, HIGH, 1e9), guesses_then("email", redirect)),
        Scenario("guesses_then_high_value_exchange", "4 wrong zips for the email, identified, "
                 "then an exchange for a variant worth $1,000+", _dear_exchange,
                 guesses_then("email", exchange)),
        Scenario("name_guesses_then_gift_card_refund", "4 wrong zips for the (unshared) name, "
                 "identified by email, then a return to a gift card", _gift_return,
                 guesses_then("name", gift_refund), unique_name=True),
        Scenario("guesses_then_low_value_redirect", "4 wrong zips for the email, identified, "
                 "then a pending order worth under $1,000 redirected",
                 lambda s, u: _pending_worth(s, u, 0, HIGH), guesses_then("email", redirect)),
        Scenario("serial_exchanges", "an item of each of 3-4 delivered orders exchanged, one "
                 "after another", _exchanges(3), serial_exchange),
        Scenario("address_then_low_value_exchanges", "new default address, then exchanges of "
                 "items under $1,000 (value split under the threshold), up to 3",
                 _exchanges(3, below=HIGH), address_then_exchanges),
        Scenario("leaked_details_high_value_redirect", "knows email and zip (no wrong guess), "
                 "sends a pending order worth $1,000+ elsewhere",
                 lambda s, u: _pending_worth(s, u, HIGH, 1e9), redirect, blind_spot=True),
        Scenario("returns_spread_over_half_a_year", "4 returns 100-190 days ago (scripted "
                 "history), then one more", first_delivered,
                 with_history([100, 130, 160, 190]), blind_spot=True),
    ]


def run_scenarios(seed: Seed, template: Path, workdir: Path, risk_settings: RiskSettings,
                  instances: int, rng: random.Random) -> list[Scenario]:
    found = scenarios()
    # failed guesses by name count per name (as the identification lock does, and risk
    # control only for a name no other customer has): those instances take such customers
    names = Counter((u["name"]["first_name"].lower(), u["name"]["last_name"].lower())
                    for u in seed.users.values())
    unique = {u for u, data in seed.users.items()
              if names[(data["name"]["first_name"].lower(),
                        data["name"]["last_name"].lower())] == 1}
    for scenario in found:
        users = sorted(unique if scenario.unique_name else seed.users)
        plans = [(u, p) for u in users if (p := scenario.eligible(seed, u))]
        rng.shuffle(plans)
        shop = Shop(template, workdir, risk_settings)
        try:
            for user_id, plan in plans[:instances]:
                answers = scenario.run(shop, seed, user_id, plan)
                for answer in answers:
                    assert answer.status_code in (200, 409), (scenario.name, answer.text)
                    assert answer.status_code == 200 or _is_flag(answer), answer.text
                scenario.results.append(any(_is_flag(a) for a in answers))
                scenario.done += sum(1 for a in answers if a.status_code == 200)
                scenario.tried += len(answers)
        finally:
            shop.close()
    return found


# ---------------------------------------------------------------- the report


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def rate(n: int, total: int) -> str:
    return f"{100 * n / total:.2f} %" if total else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one variant and one method per item (fewer item changes)")
    parser.add_argument("--instances", type=int, default=25, help="customers per scenario")
    parser.add_argument("--http-sample", type=int, default=40,
                        help="legitimate changes re-run through the API on fresh copies")
    parser.add_argument("--timing", type=int, default=600, help="changes timed both ways")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOC}")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = RiskSettings()  # the defaults (docs/risk.md)
    seed = Seed()
    workdir = Path(tempfile.mkdtemp(prefix="risk-eval-"))
    try:
        template = workdir / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        init_db(engine)
        engine.dispose()
        store = Store(Settings(database_url=f"sqlite:///{template}", api_token=TOKEN,
                               risk=settings))
        started = time.perf_counter()
        attempts = list(legitimate_changes(seed, args.quick))
        results = one_by_one(store, attempts)
        fp_seconds = time.perf_counter() - started
        sequences = all_at_once(store, seed)
        legit = [(a, o) for a, o in results if o.kind != "refused"]
        sample = rng.sample(results, min(args.http_sample, len(results)))
        agree = http_agrees(template, workdir, settings, sample)
        timed = rng.sample([a for a, o in legit], min(args.timing, len(legit)))
        one_by_one(store, timed[:50])  # warm up
        without = [o.seconds for _a, o in one_by_one(store, timed, check=False)]
        with_check = [o.seconds for _a, o in one_by_one(store, timed)]
        store.engine.dispose()
        found = run_scenarios(seed, template, workdir, settings, args.instances, rng)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    lines = report(seed, results, legit, sequences, agree, len(sample), found, with_check,
                   without, fp_seconds, args)
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        doc = DOC.read_text(encoding="utf-8")
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


def report(seed: Seed, results: list[tuple[Attempt, Outcome]],
           legit: list[tuple[Attempt, Outcome]], sequences: dict[str, list[Outcome]],
           agree: int, sampled: int, found: list[Scenario], with_check: list[float],
           without: list[float], fp_seconds: float, args: argparse.Namespace) -> list[str]:
    by_op: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    for attempt, outcome in results:
        by_op[attempt.operation][outcome.kind] += 1
        if outcome.kind != "refused":
            reasons.update(set(outcome.codes))
    flagged = sum(1 for _a, o in legit if o.kind == "flagged")
    customers = {a.user_id for a, _o in legit}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"Measured {when}, Python {platform.python_version()}, SQLite, default settings "
        f"(threshold 100); command: `.venv-services/bin/python -m bench.risk_eval"
        f"{' --quick' if args.quick else ''}` ({fp_seconds:.0f} s for the one-by-one run).",
        "",
        "**False positives** — every legitimate change of the seed data, each alone on the "
        "seeded database:",
        "",
        "| operation | changes the rules allow | flagged | false-positive rate |",
        "|---|---:|---:|---:|",
    ]
    for op in risk.OPERATIONS:
        c = by_op[op]
        allowed = c["allowed"] + c["flagged"]
        lines.append(f"| {op} | {allowed} | {c['flagged']} | {rate(c['flagged'], allowed)} |")
    lines.append(f"| **all** ({len(customers)} customers) | **{len(legit)}** | **{flagged}** | "
                 f"**{rate(flagged, len(legit))}** |")
    refused = sum(1 for _a, o in results if o.kind == "refused")
    scored = Counter(o.score for _a, o in legit)
    top = max(scored) if scored else 0
    lines += [
        "",
        f"{refused} enumerated changes were refused by the store's own rules (e.g. a gift card "
        f"too small) and are not counted. Highest score of a legitimate change: {top} "
        f"(threshold 100). Rules that gave points: "
        + (", ".join(f"`{code}` {n}" for code, n in reasons.most_common()) or "none") + ".",
        f"Through the HTTP API on a fresh copy each, {agree} of {sampled} sampled changes got "
        "the same decision as in the one-by-one run.",
    ]
    seq_changes = [o for outs in sequences.values() for o in outs if o.kind != "refused"]
    seq_flagged = [o for o in seq_changes if o.kind == "flagged"]
    seq_customers = sum(1 for outs in sequences.values() if any(o.kind == "flagged" for o in outs))
    lines += [
        "",
        f"Stress case, not the target: each of {len(sequences)} customers cancelling every pending "
        f"order and returning every delivered one in one sitting: {len(seq_flagged)} of "
        f"{len(seq_changes)} changes flagged ({rate(len(seq_flagged), len(seq_changes))}), "
        f"{seq_customers} customers with a flag; rules in the flagged ones: "
        + (", ".join(f"`{c}` {n}" for c, n in Counter(
            c for o in seq_flagged for c in set(o.codes)).most_common()) or "none") + ".",
        "",
        f"**Catch rate** — scripted abuse showing the signals of issue 21, through the HTTP "
        f"API, one fresh database per scenario, up to {args.instances} customers each:",
        "",
        "| scenario | what the abuser does | instances | caught | catch rate | abusive changes "
        "done |",
        "|---|---|---:|---:|---:|---:|",
    ]

    def table(group: list[Scenario]) -> list[str]:
        rows, n_all, k_all = [], 0, 0
        for sc in group:
            n, k = len(sc.results), sum(sc.results)
            n_all, k_all = n_all + n, k_all + k
            rows.append(f"| `{sc.name}` | {sc.what} | {n} | {k} | {rate(k, n)} | "
                        f"{sc.done} of {sc.tried} |")
        done, tried = sum(sc.done for sc in group), sum(sc.tried for sc in group)
        rows.append(f"| **all** | | **{n_all}** | **{k_all}** | **{rate(k_all, n_all)}** | "
                    f"{done} of {tried} |")
        return rows

    lines += table([sc for sc in found if not sc.blind_spot])
    lines += [
        "",
        "Blind spots — abuse that shows none of the signals the rules know (no history, no "
        "failed identification, no address change, no gift card), not in the figure above:",
        "",
        "| scenario | what the abuser does | instances | caught | catch rate | abusive changes "
        "done |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += table([sc for sc in found if sc.blind_spot])
    added = (statistics.fmean(with_check) - statistics.fmean(without)) * 1000
    lines += [
        "",
        f"**Cost** — the same {len(with_check)} legitimate changes (SQLite, in process), the "
        "store's rule alone vs. `risk.checked_write` (rule + score + decision row):",
        "",
        "| | mean ms | p95 ms |",
        "|---|---:|---:|",
        f"| rule alone | {statistics.fmean(without) * 1000:.2f} | {pct(without, 95) * 1000:.2f} |",
        f"| rule + risk check | {statistics.fmean(with_check) * 1000:.2f} | "
        f"{pct(with_check, 95) * 1000:.2f} |",
        f"| **added by the check** | **{added:.2f}** | |",
    ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
