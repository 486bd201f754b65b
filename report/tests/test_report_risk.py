"""The report's "Risk control (order changes)" section, from a real shop of its own.

The shop starts on a fresh database (seeded from shop/data/db.json, no decision yet), so the
numbers are exact. Its decisions are made for real through the shopper's API (returns and a
cancel with X-Customer-Id, bearer token and Idempotency-Key, as the action server sends them:
the third return of a customer in 30 days is flagged and refused, docs/risk.md), and reviewed
by the shared agent "desk" of AGENT_TOKEN (approve, reject); the section must show what a
direct ``GET /risk/stats`` says.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest
import requests

from report.__main__ import _risk_stats
from report.metrics import Metrics
from report.render import render, risk_rows
from report.tests.test_report import (  # noqa: F401 - tracker_db is a fixture
    OwnShop,
    cell,
    own_shop,
    run_report,
    tracker_db,
)
from tests.support import ROOT

SEED = ROOT / "shop" / "data" / "db.json"


RiskShop = OwnShop


@pytest.fixture(scope="module")
def risk_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnShop]:
    with own_shop(tmp_path_factory, "risk-shop") as started:
        yield started


@pytest.fixture(scope="module")
def seed() -> Dict[str, Any]:
    return json.loads(SEED.read_text(encoding="utf-8"))


def cheapest(order: Dict[str, Any]) -> Dict[str, Any]:
    return min(order["items"], key=lambda i: i["price"])


def original(order: Dict[str, Any]) -> str:
    return order["payment_history"][0]["payment_method_id"]


def gift_cards(seed: Dict[str, Any], user_id: str) -> List[str]:
    return [m["id"] for m in seed["users"][user_id]["payment_methods"].values()
            if m["source"] == "gift_card"]


def returner(seed: Dict[str, Any], orders: int, taken: List[str],
             gift_card: bool = False) -> Tuple[str, List[Dict[str, Any]]]:
    """A customer not in ``taken`` with ``orders`` delivered orders whose cheapest item costs
    under $600 (so no return is high value, and their refunds stay under $3,000: only the
    returns' count gives points); with ``gift_card``, orders a gift card of theirs did not pay."""
    for user_id, user in seed["users"].items():
        if user_id in taken:
            continue
        found = [seed["orders"][o] for o in user["orders"]
                 if seed["orders"][o]["status"] == "delivered"
                 and cheapest(seed["orders"][o])["price"] < 600]
        if gift_card:
            cards = gift_cards(seed, user_id)
            found = [o for o in found if cards and original(o) != cards[0]]
        if len(found) >= orders:
            taken.append(user_id)
            return user_id, found[:orders]
    raise LookupError("no such customer in the seed")


class Shopper:
    """The shopper's order writes as the action server sends them, and the desk agent's review
    (docs/risk.md "Endpoints")."""

    def __init__(self, risk_shop: RiskShop) -> None:
        self.url = risk_shop.url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {risk_shop.token}"
        r = self.http.post(f"{self.url}/agents/login", timeout=10,
                           json={"agent_id": "desk", "password": risk_shop.agent_token})
        assert r.status_code == 200, r.text
        self.agent = {"X-Agent-Id": "desk", "X-Agent-Token": r.json()["token"]}

    def write(self, user_id: str, order_id: str, action: str, body: Dict[str, Any],
              key: Optional[str] = None) -> requests.Response:
        return self.http.post(f"{self.url}/orders/{quote(order_id, safe='')}/{action}",
                              json=body, timeout=10,
                              headers={"X-Customer-Id": user_id,
                                       "Idempotency-Key": key or uuid.uuid4().hex})

    def give_back(self, user_id: str, order: Dict[str, Any], method: Optional[str] = None,
                  key: Optional[str] = None) -> requests.Response:
        """Return the order's cheapest item (to the original payment method unless ``method``)."""
        return self.write(user_id, order["order_id"], "return",
                          {"item_ids": [cheapest(order)["item_id"]],
                           "payment_method_id": method or original(order)}, key)

    def flagged(self, r: requests.Response, *codes: str) -> str:
        """The decision id of a 409 ``risk_review_required`` with these reasons."""
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "risk_review_required", error
        assert [reason["code"] for reason in error["reasons"]] == list(codes), error
        return error["decision_id"]

    def review(self, decision_id: str, verdict: str) -> Dict[str, Any]:
        r = self.http.post(f"{self.url}/risk/decisions/{decision_id}/{verdict}", timeout=10,
                           json={"note": f"{verdict} in the report's test"}, headers=self.agent)
        assert r.status_code == 200, (verdict, r.text)
        return r.json()

    def stats(self) -> Dict[str, Any]:
        r = self.http.get(f"{self.url}/risk/stats", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


def section(page: str) -> str:
    return page[page.index("<h2>Risk control (order changes)</h2>"):page.index("<h2>Sentiment")]


def operation_row(name: str, total: int, flagged: int, rate: str) -> str:
    return f"<tr><td>{name}</td><td>{total}</td><td>{flagged}</td><td>{rate}</td></tr>"


def reason_row(code: str, decisions: int, flagged: int) -> str:
    return f"<tr><td>{code}</td><td>{decisions}</td><td>{flagged}</td></tr>"


def test_risk_section_from_the_shop(tracker_db: str, risk_shop: RiskShop,  # noqa: F811
                                    seed: Dict[str, Any], tmp_path: Path) -> None:
    # no decision yet: zeros, every flag rate n/a, no rule gave points
    page, data = run_report(tracker_db, risk_shop.url, risk_shop.token, tmp_path, "empty")
    empty = section(page)
    assert data["risk"]["decisions"] == {"total": 0, "allowed": 0, "flagged": 0, "refused": 0}
    for c in (cell("Mode", "enforce (a flagged change is not done; an agent reviews it)"),
              cell("Threshold", "100 points"), cell("Decisions", 0),
              cell("Flag rate", "n/a (no decisions)"), cell("Reviews pending", 0)):
        assert c in empty, c
    for name in ("cancel", "order-address", "payment", "items", "return", "exchange"):
        assert operation_row(name, 0, 0, "n/a") in empty, name
    assert "<tr><td colspan=3>no rule gave points</td></tr>" in empty
    assert "No points from: returns_30d, returns_90d," in empty

    shopper, taken = Shopper(risk_shop), []
    # A: two returns allowed, the third in 30 days flagged; replaying it decides nothing again
    a_user, a_orders = returner(seed, 4, taken)
    for order in a_orders[:2]:
        assert shopper.give_back(a_user, order).status_code == 200
    key = uuid.uuid4().hex
    a_third = shopper.flagged(shopper.give_back(a_user, a_orders[2], key=key), "returns_30d")
    replay = shopper.give_back(a_user, a_orders[2], key=key)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert shopper.flagged(replay, "returns_30d") == a_third
    # B: the same, and an agent rejects the third
    b_user, b_orders = returner(seed, 3, taken)
    for order in b_orders[:2]:
        assert shopper.give_back(b_user, order).status_code == 200
    b_third = shopper.flagged(shopper.give_back(b_user, b_orders[2]), "returns_30d")
    assert shopper.review(b_third, "reject")["order"] is None
    # an agent approves A's third (done now); A's fourth return is flagged on two rules, pending
    assert shopper.review(a_third, "approve")["order"]["status"] == "return requested"
    shopper.flagged(shopper.give_back(a_user, a_orders[3]), "returns_30d", "returns_90d")
    # C: one return to a gift card that did not pay the order: 30 points, allowed
    c_user, (c_order,) = returner(seed, 1, taken, gift_card=True)
    assert shopper.give_back(c_user, c_order, gift_cards(seed, c_user)[0]).status_code == 200
    # D: a pending order cancelled: scored, no rule gives a cancel points
    pending = next(o for o in seed["orders"].values()
                   if o["status"] == "pending" and o["user_id"] not in taken)
    assert shopper.write(pending["user_id"], pending["order_id"], "cancel",
                         {"reason": "no longer needed"}).status_code == 200

    page, data = run_report(tracker_db, risk_shop.url, risk_shop.token, tmp_path, "risk")
    stats = data["risk"]
    assert stats == shopper.stats()  # the report shows what the shop says, nothing changed since
    # A 4 decisions (the replay is none, the approval adds none), B 3, C 1, D 1
    assert stats["decisions"] == {"total": 9, "allowed": 6, "flagged": 3, "refused": 3}
    assert stats["flag_rate"] == 0.3333
    assert stats["operations"]["return"] == {"total": 8, "flagged": 3, "flag_rate": 0.375}
    assert stats["operations"]["cancel"] == {"total": 1, "flagged": 0, "flag_rate": 0.0}
    assert stats["reviews"] == {"pending": 1, "approved": 1, "rejected": 1}
    given = {code: counts for code, counts in stats["reasons"].items() if counts["decisions"]}
    assert given == {"returns_30d": {"decisions": 3, "flagged": 3},
                     "returns_90d": {"decisions": 1, "flagged": 1},
                     "gift_card_refund": {"decisions": 1, "flagged": 0}}

    shown = section(page)
    decisions, reviews = stats["decisions"], stats["reviews"]
    for c in (cell("Mode", "enforce (a flagged change is not done; an agent reviews it)"),
              cell("Threshold", f"{stats['threshold']} points"),
              cell("Decisions", decisions["total"]), cell("Allowed", decisions["allowed"]),
              cell("Flagged (score at or over the threshold)", decisions["flagged"]),
              cell("Refused (sent to an agent&#x27;s review)", decisions["refused"]),
              cell("Flag rate", f"{stats['flag_rate'] * 100:.1f}% "
                                f"({decisions['flagged']} of {decisions['total']} decisions)"),
              cell("Reviews pending", reviews["pending"]),
              cell("Reviews approved", reviews["approved"]),
              cell("Reviews rejected", reviews["rejected"])):
        assert c in shown, c
    assert cell("Flag rate", "33.3% (3 of 9 decisions)") in shown
    for name, counts in stats["operations"].items():
        rate = "n/a" if counts["flag_rate"] is None else f"{counts['flag_rate'] * 100:.1f}%"
        assert operation_row(name, counts["total"], counts["flagged"], rate) in shown, name
    assert operation_row("return", 8, 3, "37.5%") in shown
    assert operation_row("cancel", 1, 0, "0.0%") in shown
    assert operation_row("exchange", 0, 0, "n/a") in shown
    rows = [reason_row(code, c["decisions"], c["flagged"]) for code, c in given.items()]
    assert all(row in shown for row in rows), rows
    assert shown.index(rows[0]) < shown.index(rows[1]) < shown.index(rows[2])  # shop's order
    quiet = [code for code in stats["reasons"] if code not in given]
    assert f"No points from: {', '.join(quiet)}." in shown
    assert "all decisions" in shown and "unavailable" not in shown
    # the rest of the report is unchanged by it
    assert cell("Conversations", 4) in page and "<h2>Human handoffs (agent desk)</h2>" in page


def test_risk_section_when_the_shop_refuses(tracker_db: str, risk_shop: RiskShop,  # noqa: F811
                                            tmp_path: Path) -> None:
    page, data = run_report(tracker_db, risk_shop.url, "not-the-token", tmp_path, "refused")
    assert data["risk"] is None and data["desk"] is None
    assert "The risk control&#x27;s numbers are unavailable" not in page  # written plainly
    assert ("<p class='none' id='risk'>The risk control's numbers are unavailable "
            "(shop answered 401: shop auth failed: " in page), page
    assert "<table id='risk" not in page
    assert cell("Conversations", 4) in page and "Traceback" not in page


def test_risk_section_of_a_shop_without_risk_control() -> None:
    """A shop that answers but has no /risk/stats (an older one: 404), or sends something else:
    one plain line, the report still renders."""

    class Client:
        def __init__(self, payload: Any) -> None:
            self.payload = payload

        def _get(self, path: str) -> Any:
            assert path == "/risk/stats"
            return self.payload

    from actions.shop_client import ShopUnavailable

    for payload in ([], {"decisions": {}}, {"mode": "enforce", "threshold": 100,
                                            "decisions": {}, "operations": {}, "reasons": {},
                                            "reviews": None}):
        with pytest.raises(ShopUnavailable, match="unexpected /risk/stats payload"):
            _risk_stats(Client(payload))
    page = render(Metrics(), "sqlite:///x.db",
                  risk_note="(shop answered 404: Not Found)")
    assert ("<p class='none' id='risk'>The risk control's numbers are unavailable "
            "(shop answered 404: Not Found).</p>") in page


def test_risk_rows_of_the_docs_example_and_monitor_mode() -> None:
    # the example of docs/risk.md "Endpoints", with the operations and rules it leaves out
    stats = {"since": "2026-12-01T00:00:00Z", "mode": "monitor", "threshold": 120,
             "decisions": {"total": 3, "allowed": 2, "flagged": 1, "refused": 0},
             "flag_rate": 0.3333,
             "operations": {"cancel": {"total": 0, "flagged": 0, "flag_rate": None},
                            "return": {"total": 3, "flagged": 1, "flag_rate": 0.3333}},
             "reasons": {"returns_30d": {"decisions": 1, "flagged": 1},
                         "high_value": {"decisions": 0, "flagged": 0}},
             "reviews": {"pending": 0, "approved": 0, "rejected": 0}}
    tables = risk_rows(stats)
    assert tables["summary"] == [
        ["Mode", "monitor (a flagged change is logged and done anyway)"],
        ["Threshold", "120 points"], ["Decisions", 3], ["Allowed", 2],
        ["Flagged (score at or over the threshold)", 1],
        ["Refused (sent to an agent's review)", 0], ["Flag rate", "33.3% (1 of 3 decisions)"],
        ["Reviews pending", 0], ["Reviews approved", 0], ["Reviews rejected", 0]]
    assert tables["operations"] == [
        ["cancel", 0, 0, "n/a"], ["order-address", 0, 0, "n/a"], ["payment", 0, 0, "n/a"],
        ["items", 0, 0, "n/a"], ["return", 3, 1, "33.3%"], ["exchange", 0, 0, "n/a"]]
    assert tables["reasons"] == [["returns_30d", 1, 1]]
    page = render(Metrics(risk=stats), "sqlite:///x.db")
    assert "decisions since 2026-12-01T00:00:00Z" in page
    assert "No points from: high_value." in page
