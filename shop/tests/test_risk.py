"""Risk control of order changes (shop/risk.py, docs/risk.md), on the real app and database.

Both backends (the `db_url` fixture), with a clock the test moves (`Store.clock`, one second
further at every reading so decisions keep their order). A return's date is its order's
`updated_at`, which the store writes with the real time: moving the clock days ahead makes the
changes made so far that many days old.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shop import risk
from shop.config import (
    DEFAULT_RISK_POINTS,
    AgentAccount,
    ConfigError,
    RiskSettings,
    Settings,
    parse_risk_points,
)
from shop.db import (
    AccountEvent,
    IdentificationFailure,
    RiskDecision,
    RiskIdentificationFailure,
    init_db,
    make_engine,
    utcnow,
)
from shop.tests.conftest import AUTH, ServerProcess, make_client
from shop.tests.helpers import assert_refused, path, snapshot, who

AGENT = AgentAccount("alex", "Alex", "alex-secret-pw-1")
NEW_ADDRESS = {"address1": "980 Quarry Road", "address2": "Unit 4", "city": "Reno",
               "state": "NV", "country": "USA", "zip": "89502"}
HIGH = 1000.0


class Clock:
    """Store.clock: starts now, one second further at each reading; `days()` jumps ahead."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def ahead(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def shop(db_url: str) -> Iterator[Callable[..., Any]]:
    """`shop(**risk_settings)`: the app on a fresh database of each backend, with `clock`."""
    opened: list[Any] = []

    def open_shop(**risk_settings: Any) -> Any:
        c = make_client(db_url, agents=(AGENT,), risk=RiskSettings(**risk_settings))
        c.__enter__()
        c.clock = Clock()
        c.app.state.store.clock = c.clock
        opened.append(c)
        return c

    yield open_shop
    for c in opened:
        c.__exit__(None, None, None)


# ---------------------------------------------------------------- seed data and helpers


def total(order: dict[str, Any]) -> float:
    return sum(i["price"] for i in order["items"])


def original(order: dict[str, Any]) -> str:
    return order["payment_history"][0]["payment_method_id"]


def source(seed: dict[str, Any], user_id: str, method_id: str) -> str:
    return seed["users"][user_id]["payment_methods"][method_id]["source"]


def orders_of(seed: dict[str, Any], user_id: str, status: str) -> list[dict[str, Any]]:
    return [seed["orders"][o] for o in seed["users"][user_id]["orders"]
            if seed["orders"][o]["status"] == status]


def cheapest(order: dict[str, Any]) -> dict[str, Any]:
    return min(order["items"], key=lambda i: i["price"])


def namesakes(seed: dict[str, Any], user_id: str) -> list[str]:
    """Other customers with the same first and last name."""
    name = seed["users"][user_id]["name"]
    return [u for u, data in seed["users"].items() if u != user_id
            and data["name"]["first_name"].lower() == name["first_name"].lower()
            and data["name"]["last_name"].lower() == name["last_name"].lower()]


def returner(seed: dict[str, Any], orders: int, gift_card: bool = False,
             least: float = 0, unique_name: bool = False) -> tuple[str, list]:
    """A customer with `orders` delivered orders whose cheapest items cost `least` to $600
    (so under $1,000 each and $3,000 together); with `gift_card`, a gift card of theirs that
    paid none of them; with `unique_name`, a name no other customer has."""
    for user_id, user in seed["users"].items():
        if unique_name and namesakes(seed, user_id):
            continue
        found = [o for o in orders_of(seed, user_id, "delivered")
                 if least <= cheapest(o)["price"] < 600]
        gifts = [m["id"] for m in user["payment_methods"].values()
                 if m["source"] == "gift_card"]
        if gift_card:
            found = [o for o in found if gifts and original(o) != gifts[0]]
        if len(found) >= orders and (gifts or not gift_card):
            return user_id, found[:orders]
    raise LookupError("no such customer in the seed")


def give_back(c: Any, user_id: str, order: dict[str, Any], method: str | None = None,
              **headers: str) -> Any:
    """Return the order's cheapest item (to the original method unless `method`)."""
    return c.post(path(order["order_id"], "return"), headers={**who(user_id), **headers},
                  json={"item_ids": [cheapest(order)["item_id"]],
                        "payment_method_id": method or original(order)})


def pending_order(seed: dict[str, Any], low: float = 0, high: float = HIGH) -> dict[str, Any]:
    return next(o for o in seed["orders"].values()
                if o["status"] == "pending" and low <= total(o) < high)


def cheap_exchange(seed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A delivered order paid by card or PayPal and an exchange body under $1,000."""
    for order in seed["orders"].values():
        if order["status"] != "delivered":
            continue
        if source(seed, order["user_id"], original(order)) == "gift_card":
            continue
        for item in order["items"]:
            for v in seed["products"][item["product_id"]]["variants"].values():
                if v["available"] and v["item_id"] != item["item_id"] and v["price"] < 600:
                    return order, {"item_ids": [item["item_id"]], "new_item_ids": [v["item_id"]],
                                   "payment_method_id": original(order)}
    raise LookupError("no cheap exchange in the seed")


def decisions(c: Any) -> list[RiskDecision]:
    with Session(c.app.state.store.engine) as s:
        return list(s.scalars(select(RiskDecision).order_by(RiskDecision.at)))


def count(c: Any, model: Any) -> int:
    with Session(c.app.state.store.engine) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def codes(decision: RiskDecision) -> list[str]:
    return [r["code"] for r in decision.reasons]


def wrong_zip(zip_code: str, n: int) -> str:
    return f"{(int(zip_code) + 7 * n + 1) % 100000:05d}"


def fail_identification(c: Any, seed: dict[str, Any], user_id: str, times: int,
                        by: str = "email") -> None:
    user = seed["users"][user_id]
    facts = ({"email": user["email"]} if by == "email" else
             {"first_name": user["name"]["first_name"], "last_name": user["name"]["last_name"]})
    for n in range(times):
        r = c.get("/customers/lookup", params={**facts, "zip": wrong_zip(user["address"]["zip"],
                                                                         n)})
        assert r.status_code == 404, r.text


def agent_headers(c: Any) -> dict[str, str]:
    r = c.post("/agents/login", json={"agent_id": AGENT.id, "password": AGENT.password})
    assert r.status_code == 200, r.text
    return {"X-Agent-Id": AGENT.id, "X-Agent-Token": r.json()["token"]}


# ---------------------------------------------------------------- low risk: as today


def test_a_low_risk_change_goes_through_and_is_logged(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, (order,) = returner(seed, 1)
    r = give_back(c, user_id, order)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "return requested"
    assert "risk" not in r.text
    (decision,) = decisions(c)
    assert (decision.user_id, decision.order_id, decision.operation) == (
        user_id, order["order_id"], "return")
    assert (decision.decision, decision.refused, decision.score, decision.reasons) == (
        "allowed", False, 0, [])
    assert decision.threshold == 100
    assert decision.value_cents == round(cheapest(order)["price"] * 100)
    assert decision.request["item_ids"] == [cheapest(order)["item_id"]]


def test_every_order_write_is_scored_and_logged(shop: Any, seed: dict[str, Any]) -> None:
    """The six writes of the shopper's path all run the check (none bypasses it)."""
    c = shop()

    def other_method(o: dict[str, Any]) -> str | None:
        return next((m["id"] for m in seed["users"][o["user_id"]]["payment_methods"].values()
                     if m["id"] != original(o) and m["source"] != "gift_card"), None)

    pending = [o for o in seed["orders"].values() if o["status"] == "pending"
               and len(o["payment_history"]) == 1
               and source(seed, o["user_id"], original(o)) != "gift_card"]
    order = next(o for o in pending if other_method(o))
    other = other_method(order)
    assert c.post(path(order["order_id"], "address"), json=NEW_ADDRESS,
                  headers=who(order["user_id"])).status_code == 200
    assert c.post(path(order["order_id"], "payment"), json={"payment_method_id": other},
                  headers=who(order["user_id"])).status_code == 200
    item = order["items"][0]
    variant = next(v for v in seed["products"][item["product_id"]]["variants"].values()
                   if v["available"] and v["item_id"] != item["item_id"])
    assert c.post(path(order["order_id"], "items"), headers=who(order["user_id"]), json={
        "item_ids": [item["item_id"]], "new_item_ids": [variant["item_id"]],
        "payment_method_id": original(order)}).status_code == 200
    second = next(o for o in pending if o["user_id"] != order["user_id"])
    assert c.post(path(second["order_id"], "cancel"), json={"reason": "no longer needed"},
                  headers=who(second["user_id"])).status_code == 200
    exchange_order, body = cheap_exchange(seed)
    assert c.post(path(exchange_order["order_id"], "exchange"), json=body,
                  headers=who(exchange_order["user_id"])).status_code == 200
    user_id, (returned,) = returner(seed, 1)
    assert give_back(c, user_id, returned).status_code == 200
    logged = {d.operation for d in decisions(c)}
    assert logged == set(risk.OPERATIONS)


def test_refusals_of_the_store_rules_stay_what_they_were(shop: Any,
                                                         seed: dict[str, Any]) -> None:
    """A change the rules refuse is not scored: same error as before, no decision."""
    c = shop(threshold=1, high_value_cents=1)
    order = next(o for o in seed["orders"].values() if o["status"] == "processed")
    r = c.post(path(order["order_id"], "cancel"), json={"reason": "no longer needed"},
               headers=who(order["user_id"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_not_pending"
    r = c.post(path(order["order_id"], "cancel"), json={"reason": "no longer needed"},
               headers=who("someone_else_1234"))
    assert r.status_code == 404
    assert decisions(c) == []


# ---------------------------------------------------------------- each rule alone


def test_returns_30d_the_third_return_in_30_days_is_refused(shop: Any,
                                                            seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 3)
    assert give_back(c, user_id, orders[0]).status_code == 200
    assert give_back(c, user_id, orders[1]).status_code == 200
    before = snapshot(c, user_id, orders[2]["order_id"])
    r = give_back(c, user_id, orders[2])
    assert_refused(c, r, 409, user_id, orders[2]["order_id"], before, "risk_review_required")
    error = r.json()["error"]
    assert [x["code"] for x in error["reasons"]] == ["returns_30d"]
    assert error["reasons"][0]["points"] == 100
    assert "3rd return or exchange in 30 days" in error["reasons"][0]["message"]


def test_returns_30d_counts_only_30_days(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 3)
    assert give_back(c, user_id, orders[0]).status_code == 200
    assert give_back(c, user_id, orders[1]).status_code == 200
    c.clock.ahead(days=31)
    assert give_back(c, user_id, orders[2]).status_code == 200
    assert codes(decisions(c)[-1]) == []


def test_returns_90d_alone(shop: Any, seed: dict[str, Any]) -> None:
    c = shop(returns_90d_free=1)
    user_id, orders = returner(seed, 3)
    assert give_back(c, user_id, orders[0]).status_code == 200
    assert give_back(c, user_id, orders[1]).status_code == 200
    c.clock.ahead(days=40)  # two returns 40 days old: none in 30 days, both in 90
    r = give_back(c, user_id, orders[2])
    assert r.status_code == 409, r.text
    assert [(x["code"], x["points"]) for x in r.json()["error"]["reasons"]] == [
        ("returns_90d", 100)]
    assert "3rd return or exchange in 90 days" in r.json()["error"]["reasons"][0]["message"]


def test_refund_value_30d_alone(shop: Any, seed: dict[str, Any]) -> None:
    c = shop(refund_value_30d_cents=5_000)
    user_id, orders = returner(seed, 2, least=25)
    assert give_back(c, user_id, orders[0]).status_code == 200
    assert give_back(c, user_id, orders[1]).status_code == 200
    (first, second) = decisions(c)
    assert "refund_value_30d" in codes(first) + codes(second)
    assert codes(second) == ["refund_value_30d"]
    assert second.reasons[0]["points"] == DEFAULT_RISK_POINTS["refund_value_30d"]


def test_gift_card_refund_alone_then_a_second_one_is_refused(shop: Any,
                                                             seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 2, gift_card=True)
    gift = next(m["id"] for m in seed["users"][user_id]["payment_methods"].values()
                if m["source"] == "gift_card")
    assert give_back(c, user_id, orders[0], gift).status_code == 200
    assert [(r["code"], r["points"]) for r in decisions(c)[0].reasons] == [
        ("gift_card_refund", 30)]
    r = give_back(c, user_id, orders[1], gift)
    assert r.status_code == 409, r.text
    reasons = r.json()["error"]["reasons"]
    assert [(x["code"], x["points"]) for x in reasons] == [
        ("gift_card_refund", 30), ("gift_card_refunds_90d", 70)]
    assert r.json()["error"]["score"] == 100


def test_a_refund_to_the_gift_card_that_paid_is_not_steering(shop: Any,
                                                             seed: dict[str, Any]) -> None:
    c = shop()
    order = next(o for o in seed["orders"].values() if o["status"] == "delivered"
                 and source(seed, o["user_id"], original(o)) == "gift_card"
                 and cheapest(o)["price"] < HIGH)
    assert give_back(c, order["user_id"], order).status_code == 200
    assert codes(decisions(c)[0]) == []


@pytest.mark.parametrize("by", ["email", "name"])
def test_identification_failures_alone(shop: Any, seed: dict[str, Any], by: str) -> None:
    """Failed lookups of the account (email or name key) then a change: refused, even after a
    successful lookup cleared the lock's own count."""
    c = shop()
    user_id, (order,) = returner(seed, 1, unique_name=True)
    user = seed["users"][user_id]
    fail_identification(c, seed, user_id, 3, by)
    assert c.get("/customers/lookup", params={"email": user["email"],
                                              "zip": user["address"]["zip"]}).status_code == 200
    if by == "email":
        assert count(c, IdentificationFailure) == 0  # the lock's count is gone...
    assert count(c, RiskIdentificationFailure) == 3  # ...risk control's copy is not
    before = snapshot(c, user_id, order["order_id"])
    r = give_back(c, user_id, order)
    assert_refused(c, r, 409, user_id, order["order_id"], before, "risk_review_required")
    (reason,) = r.json()["error"]["reasons"]
    assert (reason["code"], reason["points"]) == ("identification_failures", 100)
    assert reason["message"].startswith("3 failed identification attempts")


def test_failed_guesses_at_a_shared_name_count_for_no_one(shop: Any,
                                                          seed: dict[str, Any]) -> None:
    """Wrong zips for a first + last name several customers have: no sign against any of
    them (the lock still counts them, per name)."""
    c = shop()
    user_id = next(u for u in seed["users"] if namesakes(seed, u)
                   and any(cheapest(o)["price"] < 600 for o in orders_of(seed, u, "delivered")))
    order = next(o for o in orders_of(seed, user_id, "delivered") if cheapest(o)["price"] < 600)
    fail_identification(c, seed, user_id, 4, "name")
    assert count(c, RiskIdentificationFailure) == 4
    assert give_back(c, user_id, order).status_code == 200
    assert codes(decisions(c)[0]) == []


def test_identification_failures_few_old_or_before_a_cancel_give_nothing(
        shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 2)
    fail_identification(c, seed, user_id, 2)  # two: below the 3
    assert give_back(c, user_id, orders[0]).status_code == 200
    fail_identification(c, seed, user_id, 1)
    c.clock.ahead(hours=25)  # all three older than 24 h
    assert give_back(c, user_id, orders[1]).status_code == 200
    order = pending_order(seed)
    fail_identification(c, seed, order["user_id"], 4)
    assert c.post(path(order["order_id"], "cancel"), json={"reason": "ordered by mistake"},
                  headers=who(order["user_id"])).status_code == 200
    assert [codes(d) for d in decisions(c)] == [[], [], []]


def test_address_change_alone(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    order, body = cheap_exchange(seed)
    user_id = order["user_id"]
    assert c.put(f"/customers/{user_id}/address", json=NEW_ADDRESS,
                 headers=who(user_id)).status_code == 200
    assert count(c, AccountEvent) == 1
    r = c.post(path(order["order_id"], "exchange"), json=body, headers=who(user_id))
    assert r.status_code == 200, r.text
    (decision,) = decisions(c)
    assert [(x["code"], x["points"]) for x in decision.reasons] == [("address_change", 70)]
    assert decision.reasons[0]["message"].startswith("The default address of the account")
    # the same address again is no change (the window: see the next test but one)
    assert c.put(f"/customers/{user_id}/address", json=NEW_ADDRESS,
                 headers=who(user_id)).status_code == 200
    assert count(c, AccountEvent) == 1


def test_address_change_needs_a_change_that_ships_or_credits(shop: Any,
                                                             seed: dict[str, Any]) -> None:
    c = shop()
    user_id, (order,) = returner(seed, 1)
    assert c.put(f"/customers/{user_id}/address", json=NEW_ADDRESS,
                 headers=who(user_id)).status_code == 200
    assert give_back(c, user_id, order).status_code == 200  # refund to the original method
    assert codes(decisions(c)[0]) == []


def test_an_order_address_change_counts_for_the_next_change(shop: Any,
                                                            seed: dict[str, Any]) -> None:
    c = shop()
    first = next(o for o in seed["orders"].values() if o["status"] == "pending"
                 and total(o) < HIGH and sum(1 for p in orders_of(seed, o["user_id"], "pending")
                                             if total(p) < HIGH) >= 2)
    second = next(p for p in orders_of(seed, first["user_id"], "pending")
                  if total(p) < HIGH and p["order_id"] != first["order_id"])
    user_id = first["user_id"]
    assert c.post(path(first["order_id"], "address"), json=NEW_ADDRESS,
                  headers=who(user_id)).status_code == 200
    c.clock.ahead(hours=2)
    assert c.post(path(second["order_id"], "address"), json=NEW_ADDRESS,
                  headers=who(user_id)).status_code == 200
    c.clock.ahead(hours=25)
    assert c.post(path(second["order_id"], "address"), json={**NEW_ADDRESS, "zip": "89503"},
                  headers=who(user_id)).status_code == 200
    one, two, three = decisions(c)
    assert codes(one) == [] and codes(three) == []
    assert codes(two) == ["address_change"]
    assert f"order {first['order_id']}" in two.reasons[0]["message"]


def test_high_value_alone(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    order = pending_order(seed, HIGH, 1e9)
    r = c.post(path(order["order_id"], "address"), json=NEW_ADDRESS,
               headers=who(order["user_id"]))
    assert r.status_code == 200
    (decision,) = decisions(c)
    assert [(x["code"], x["points"]) for x in decision.reasons] == [("high_value", 30)]
    assert decision.value_cents == round(total(order) * 100)


def test_address_change_then_a_high_value_change_is_refused(shop: Any,
                                                            seed: dict[str, Any]) -> None:
    c = shop()
    order = pending_order(seed, HIGH, 1e9)
    user_id = order["user_id"]
    assert c.put(f"/customers/{user_id}/address", json=NEW_ADDRESS,
                 headers=who(user_id)).status_code == 200
    before = snapshot(c, user_id, order["order_id"])
    events = count(c, AccountEvent)
    r = c.post(path(order["order_id"], "address"), json={**NEW_ADDRESS, "zip": "89501"},
               headers=who(user_id))
    assert_refused(c, r, 409, user_id, order["order_id"], before, "risk_review_required")
    assert [x["code"] for x in r.json()["error"]["reasons"]] == ["address_change", "high_value"]
    assert count(c, AccountEvent) == events  # the refused change recorded no address change


# ---------------------------------------------------------------- the refusal and its log


def test_the_409_body_and_its_logged_decision(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 3)
    for order in orders[:2]:
        assert give_back(c, user_id, order).status_code == 200
    r = give_back(c, user_id, orders[2])
    assert r.status_code == 409
    body = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "decision_id", "score", "threshold", "reasons"}
    assert error["code"] == "risk_review_required"
    assert error["message"] == ("This change needs a review by a colleague before it can be "
                                "done; nothing has been changed.")
    assert error["decision_id"].startswith("rk_") and len(error["decision_id"]) == 19
    assert (error["score"], error["threshold"]) == (100, 100)
    assert all(set(x) == {"code", "points", "message"} for x in error["reasons"])
    logged = decisions(c)[-1]
    assert logged.id == error["decision_id"]
    assert (logged.decision, logged.refused, logged.score, logged.review) == (
        "flagged", True, 100, None)
    assert logged.reasons == error["reasons"]
    assert logged.request == {"item_ids": [cheapest(orders[2])["item_id"]],
                              "payment_method_id": original(orders[2]), "reason": None}


def test_a_flagged_change_with_an_idempotency_key_replays_its_409(
        shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 3)
    for order in orders[:2]:
        assert give_back(c, user_id, order, **{"Idempotency-Key": f"k-{order['order_id']}"}
                         ).status_code == 200
    assert give_back(c, user_id, orders[0], **{"Idempotency-Key": f"k-{orders[0]['order_id']}"}
                     ).headers.get("Idempotent-Replayed") == "true"
    before = snapshot(c, user_id, orders[2]["order_id"])
    first = give_back(c, user_id, orders[2], **{"Idempotency-Key": "flagged-1"})
    assert first.status_code == 409 and "Idempotent-Replayed" not in first.headers
    again = give_back(c, user_id, orders[2], **{"Idempotency-Key": "flagged-1"})
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert snapshot(c, user_id, orders[2]["order_id"]) == before
    logged = decisions(c)
    assert len(logged) == 3  # two allowed, one flagged: replays decide nothing again
    assert [d.decision for d in logged] == ["allowed", "allowed", "flagged"]
    assert logged[-1].id == first.json()["error"]["decision_id"]
    # a new key is a new request: scored (and refused) again
    third = give_back(c, user_id, orders[2], **{"Idempotency-Key": "flagged-2"})
    assert third.status_code == 409
    assert third.json()["error"]["decision_id"] != first.json()["error"]["decision_id"]


def test_monitor_mode_logs_the_flag_and_does_the_change(shop: Any,
                                                        seed: dict[str, Any]) -> None:
    c = shop(mode="monitor")
    user_id, orders = returner(seed, 3)
    for order in orders:
        assert give_back(c, user_id, order).status_code == 200
    last = decisions(c)[-1]
    assert (last.decision, last.refused, codes(last)) == ("flagged", False, ["returns_30d"])


def test_parallel_returns_of_one_customer_are_scored_one_after_another(
        server: ServerProcess, seed: dict[str, Any]) -> None:
    """Three returns of one customer at once against 2 worker processes: each sees the
    others' (the customer's row is locked first), so exactly one is the 3rd and is refused."""
    user_id, orders = returner(seed, 3)
    barrier = threading.Barrier(len(orders))
    answers: list[Any] = [None] * len(orders)

    def run(i: int) -> None:
        order = orders[i]
        with httpx2.Client(base_url=server.base_url, headers=AUTH, timeout=60) as http:
            barrier.wait()
            answers[i] = http.post(path(order["order_id"], "return"), headers=who(user_id),
                                   json={"item_ids": [cheapest(order)["item_id"]],
                                         "payment_method_id": original(order)})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(orders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409).json()["error"]
    assert [r["code"] for r in refused["reasons"]] == ["returns_30d"]
    with httpx2.Client(base_url=server.base_url, headers=AUTH) as http:
        stats = http.get("/risk/stats").json()
    assert stats["decisions"] == {"total": 3, "allowed": 2, "flagged": 1, "refused": 1}


# ---------------------------------------------------------------- stats


def test_stats_count_flags(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    empty = c.get("/risk/stats").json()
    assert empty["decisions"] == {"total": 0, "allowed": 0, "flagged": 0, "refused": 0}
    assert empty["flag_rate"] is None
    user_id, orders = returner(seed, 3)
    for order in orders:
        give_back(c, user_id, order)
    high = pending_order(seed, HIGH, 1e9)
    assert c.post(path(high["order_id"], "address"), json=NEW_ADDRESS,
                  headers=who(high["user_id"])).status_code == 200
    stats = c.get("/risk/stats").json()
    assert stats["mode"] == "enforce" and stats["threshold"] == 100
    assert stats["decisions"] == {"total": 4, "allowed": 3, "flagged": 1, "refused": 1}
    assert stats["flag_rate"] == 0.25
    assert stats["operations"]["return"] == {"total": 3, "flagged": 1, "flag_rate": 0.3333}
    assert stats["operations"]["order-address"] == {"total": 1, "flagged": 0, "flag_rate": 0.0}
    assert stats["operations"]["cancel"] == {"total": 0, "flagged": 0, "flag_rate": None}
    assert stats["reasons"]["returns_30d"] == {"decisions": 1, "flagged": 1}
    assert stats["reasons"]["high_value"] == {"decisions": 1, "flagged": 0}
    assert set(stats["reasons"]) == set(DEFAULT_RISK_POINTS)
    assert stats["reviews"] == {"pending": 1, "approved": 0, "rejected": 0}
    later = (c.clock.now + timedelta(seconds=30)).isoformat()
    assert c.get("/risk/stats", params={"since": later}).json()["decisions"]["total"] == 0
    assert c.get("/risk/stats", params={"since": "2025-01-01T00:00:00"}).status_code == 422


def test_stats_and_decisions_refuse_the_shoppers_path(shop: Any) -> None:
    c = shop()
    r = c.get("/risk/stats", headers=who("someone_1234"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "shopper_not_allowed"
    assert c.get("/risk/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/risk/decisions").status_code == 401  # agent session required
    agent = agent_headers(c)
    assert c.get("/risk/decisions", headers={**agent, **who("x_1")}).status_code == 403
    assert c.get("/risk/decisions", headers=agent).json() == {"decisions": []}


# ---------------------------------------------------------------- review by an agent


def test_an_agent_approves_a_refused_change(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 3)
    for order in orders[:2]:
        give_back(c, user_id, order)
    refused = give_back(c, user_id, orders[2]).json()["error"]["decision_id"]
    target = f"/risk/decisions/{refused}/approve"
    # the shopper's path can never approve: with X-Customer-Id 403, without a session 401
    assert c.post(target, headers=who(user_id)).status_code == 403
    assert c.post(target).status_code == 401
    assert give_back(c, user_id, orders[2]).status_code == 409  # still refused to the shopper
    agent = agent_headers(c)
    pending = c.get("/risk/decisions", params={"review": "pending"}, headers=agent).json()
    assert {d["id"] for d in pending["decisions"]} == {refused, decisions(c)[-1].id}
    r = c.post(target, json={"note": "regular customer, called back"},
               headers={**agent, "Idempotency-Key": "approve-1"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["order"]["status"] == "return requested"
    assert answer["order"]["return_items"] == [cheapest(orders[2])["item_id"]]
    assert (answer["decision"]["review"], answer["decision"]["reviewed_by"]) == (
        "approved", "alex")
    assert answer["decision"]["review_note"] == "regular customer, called back"
    replay = c.post(target, json={"note": "regular customer, called back"},
                    headers={**agent, "Idempotency-Key": "approve-1"})
    assert replay.json() == answer and replay.headers["Idempotent-Replayed"] == "true"
    again = c.post(target, headers=agent)
    assert again.status_code == 409 and again.json()["error"]["code"] == "risk_decision_reviewed"
    assert again.json()["error"]["reviewed_by"] == "alex"
    one = c.get(f"/risk/decisions/{refused}", headers=agent).json()
    assert one["review"] == "approved" and one["reviewed_at"]
    assert c.get("/risk/stats").json()["reviews"] == {"pending": 1, "approved": 1,
                                                      "rejected": 0}


def test_reject_and_the_review_refusals(shop: Any, seed: dict[str, Any]) -> None:
    c = shop()
    user_id, orders = returner(seed, 3)
    for order in orders[:2]:
        give_back(c, user_id, order)
    before = snapshot(c, user_id, orders[2]["order_id"])
    refused = give_back(c, user_id, orders[2]).json()["error"]["decision_id"]
    agent = agent_headers(c)
    r = c.post(f"/risk/decisions/{refused}/reject", json={"note": "serial returner"},
               headers=agent)
    assert r.status_code == 200
    assert r.json()["decision"]["review"] == "rejected" and r.json()["order"] is None
    assert snapshot(c, user_id, orders[2]["order_id"]) == before
    approve = c.post(f"/risk/decisions/{refused}/approve", headers=agent)
    assert approve.status_code == 409
    allowed = decisions(c)[0].id
    r = c.post(f"/risk/decisions/{allowed}/approve", headers=agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "risk_decision_not_refused"
    for bad in ("rk_unknown", "%20", "x" * 80):
        r = c.post(f"/risk/decisions/{bad}/approve", headers=agent)
        assert r.status_code == 404 and r.json()["error"]["code"] == "risk_decision_not_found"
    r = c.post(f"/risk/decisions/{refused}/reject", json={"verdict": "no"}, headers=agent)
    assert r.status_code == 422


def test_approving_re_checks_the_store_rules(shop: Any, seed: dict[str, Any]) -> None:
    """An approval runs the change as the rules allow it now: an order changed since is a
    409 of the rule, and the decision stays pending."""
    c = shop()
    order = pending_order(seed, HIGH, 1e9)
    user_id = order["user_id"]
    assert c.put(f"/customers/{user_id}/address", json=NEW_ADDRESS,
                 headers=who(user_id)).status_code == 200
    refused = c.post(path(order["order_id"], "address"), json=NEW_ADDRESS,
                     headers=who(user_id)).json()["error"]["decision_id"]
    assert c.post(path(order["order_id"], "cancel"), json={"reason": "no longer needed"},
                  headers=who(user_id)).status_code == 200
    agent = agent_headers(c)
    r = c.post(f"/risk/decisions/{refused}/approve", headers=agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_not_pending"
    assert c.get(f"/risk/decisions/{refused}", headers=agent).json()["review"] is None


# ---------------------------------------------------------------- settings and schema


def test_risk_settings_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODE", "THRESHOLD", "POINTS", "HIGH_VALUE", "RETURNS_30D_FREE",
                 "RETURNS_90D_FREE", "REFUND_VALUE_30D", "ID_FAILURES", "ID_FAILURE_HOURS",
                 "ADDRESS_HOURS"):
        monkeypatch.delenv(f"SHOP_RISK_{name}", raising=False)
    assert RiskSettings.from_env() == RiskSettings()
    monkeypatch.setenv("SHOP_RISK_MODE", " Monitor ")
    monkeypatch.setenv("SHOP_RISK_THRESHOLD", "150")
    monkeypatch.setenv("SHOP_RISK_POINTS", " high_value = 0 , returns_30d=120,")
    monkeypatch.setenv("SHOP_RISK_HIGH_VALUE", "750.50")
    monkeypatch.setenv("SHOP_RISK_RETURNS_30D_FREE", "0")
    monkeypatch.setenv("SHOP_RISK_ID_FAILURE_HOURS", "168")
    got = RiskSettings.from_env()
    assert (got.mode, got.threshold, got.high_value_cents, got.returns_30d_free,
            got.id_failure_hours) == ("monitor", 150, 75_050, 0, 168)
    assert got.points == {**DEFAULT_RISK_POINTS, "high_value": 0, "returns_30d": 120}


@pytest.mark.parametrize(("name", "value", "says"), [
    ("SHOP_RISK_MODE", "off", "SHOP_RISK_MODE must be one of enforce, monitor"),
    ("SHOP_RISK_THRESHOLD", "0", "SHOP_RISK_THRESHOLD must be a positive integer"),
    ("SHOP_RISK_THRESHOLD", "ten", "SHOP_RISK_THRESHOLD must be a positive integer"),
    ("SHOP_RISK_POINTS", "serial=50", "SHOP_RISK_POINTS entry 'serial=50' must be code=points"),
    ("SHOP_RISK_POINTS", "high_value", "must be code=points"),
    ("SHOP_RISK_POINTS", "high_value=-5", "the points of high_value must be an integer 0-10000"),
    ("SHOP_RISK_POINTS", "high_value=²", "the points of high_value must be an integer"),
    ("SHOP_RISK_HIGH_VALUE", "$1000", "SHOP_RISK_HIGH_VALUE must be a positive amount"),
    ("SHOP_RISK_HIGH_VALUE", "0", "SHOP_RISK_HIGH_VALUE must be a positive amount"),
    ("SHOP_RISK_REFUND_VALUE_30D", "1e4", "SHOP_RISK_REFUND_VALUE_30D must be a positive"),
    ("SHOP_RISK_RETURNS_30D_FREE", "-1", "SHOP_RISK_RETURNS_30D_FREE must be an integer >= 0"),
    ("SHOP_RISK_ID_FAILURES", "0", "SHOP_RISK_ID_FAILURES must be a positive integer"),
    ("SHOP_RISK_ID_FAILURE_HOURS", "200", "SHOP_RISK_ID_FAILURE_HOURS must be at most 168"),
    ("SHOP_RISK_ADDRESS_HOURS", "1.5", "SHOP_RISK_ADDRESS_HOURS must be a positive integer"),
])
def test_invalid_risk_settings_refuse_to_start(monkeypatch: pytest.MonkeyPatch, name: str,
                                               value: str, says: str) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", "a-real-token-for-this-test")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(says)) as err:
        Settings.from_env()
    assert name in str(err.value)


def test_parse_risk_points_knows_every_code() -> None:
    assert parse_risk_points("") == DEFAULT_RISK_POINTS
    assert set(DEFAULT_RISK_POINTS) == {
        "returns_30d", "returns_90d", "refund_value_30d", "gift_card_refund",
        "gift_card_refunds_90d", "identification_failures", "address_change", "high_value"}


def test_an_existing_database_gains_the_risk_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table in ("risk_decisions", "account_events", "risk_identification_failures"):
            conn.execute(text(f"DROP TABLE {table}"))
    init_db(engine)  # as on start: create_all + upgrade_schema
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(RiskDecision)) == 0
        assert s.scalar(select(func.count()).select_from(AccountEvent)) == 0
    engine.dispose()


def test_the_409_is_documented() -> None:
    spec = make_client("sqlite://").app.openapi()
    for suffix in ("cancel", "address", "payment", "items", "return", "exchange"):
        response = spec["paths"][f"/orders/{{order_id}}/{suffix}"]["post"]["responses"]["409"]
        assert "risk_review_required" in response["description"]
    schema = spec["components"]["schemas"]["RiskRefusalDetail"]
    assert {"decision_id", "score", "threshold", "reasons"} <= set(schema["properties"])
    assert risk.REVIEW_REQUIRED == "risk_review_required"
