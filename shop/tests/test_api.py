"""Reads, auth, scoping, lookups, catalog, tracking, bad input (SQLite; the SQL is the same)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from shop.config import REPO_ROOT, ConfigError, Settings
from shop.tests.conftest import AUTH
from shop.tests.helpers import find_order, path, someone_else, who


def test_health_needs_no_token(sqlite_client: Any) -> None:
    r = sqlite_client.get("/health", headers={"Authorization": ""})
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize("method,url", [
    ("GET", "/customers/lookup?email=a@b.c&zip=12345"), ("GET", "/customers/x"),
    ("GET", "/orders/%23W1"),
    ("GET", "/products"), ("GET", "/products/1"), ("GET", "/shipments/1"),
    ("GET", "/handoffs/1"), ("POST", "/handoffs"), ("POST", "/orders/%23W1/cancel"),
    ("PUT", "/customers/x/address"), ("GET", "/openapi.json"), ("GET", "/docs"),
])
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", AUTH["Authorization"] + "x"])
def test_token_required(sqlite_client: Any, method: str, url: str, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    sqlite_client.headers.pop("Authorization", None)
    r = sqlite_client.request(method, url, headers=headers, json={})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_refuses_to_start_without_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SHOP_API_TOKEN"}
    with pytest.raises(ConfigError):
        old = os.environ.pop("SHOP_API_TOKEN", None)
        try:
            Settings.from_env()
        finally:
            if old is not None:
                os.environ["SHOP_API_TOKEN"] = old
    result = subprocess.run([sys.executable, "-m", "shop"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "SHOP_API_TOKEN" in result.stderr


def test_openapi_lists_the_contract(sqlite_client: Any) -> None:
    spec = sqlite_client.get("/openapi.json").json()
    for p in ["/health", "/customers/lookup", "/customers/{user_id}",
              "/customers/{user_id}/address", "/orders/{order_id}", "/orders/{order_id}/cancel",
              "/orders/{order_id}/address", "/orders/{order_id}/payment",
              "/orders/{order_id}/items", "/orders/{order_id}/return",
              "/orders/{order_id}/exchange", "/products", "/products/{product_id}",
              "/shipments/{tracking_id}", "/handoffs", "/handoffs/{handoff_id}"]:
        assert p in spec["paths"], p


# ---------------------------------------------------------------- lookups and profiles


def test_lookup(sqlite_client: Any, seed: dict[str, Any]) -> None:
    """Two facts identify (folded); fewer are a 422; more cases in test_identification.py."""
    user = next(iter(seed["users"].values()))
    zip_code = user["address"]["zip"]
    r = sqlite_client.get("/customers/lookup",
                          params={"email": f"  {user['email'].upper()} ", "zip": f" {zip_code}"})
    assert r.status_code == 200 and r.json() == {"user_id": user["user_id"]}
    r = sqlite_client.get("/customers/lookup", params={
        "first_name": user["name"]["first_name"].lower(),
        "last_name": user["name"]["last_name"].upper(), "zip": zip_code})
    assert r.json() == {"user_id": user["user_id"]}
    for params in [{"email": "nobody@example.com", "zip": zip_code},
                   {"email": user["email"], "zip": "00000"},
                   {"first_name": user["name"]["first_name"], "last_name": user["name"][
                       "last_name"], "zip": "00000"},
                   {"email": "' OR 1=1 --", "zip": "' OR 1=1 --"}]:
        r = sqlite_client.get("/customers/lookup", params=params)
        assert r.status_code == 404 and r.json()["error"]["code"] == "customer_not_found"
    for params in [{}, {"first_name": "a"}, {"email": ""}, {"email": user["email"]},
                   {"email": user["email"], "zip": " "}, {"zip": zip_code}]:
        r = sqlite_client.get("/customers/lookup", params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "lookup_parameters", params


def test_profile_scoped_and_cards_masked(sqlite_client: Any, seed: dict[str, Any]) -> None:
    uid = next(u for u, d in seed["users"].items()
               if any(m["source"] == "credit_card" for m in d["payment_methods"].values()))
    r = sqlite_client.get(f"/customers/{uid}", headers=who(uid))
    assert r.status_code == 200
    body = r.json()
    user = seed["users"][uid]
    assert body["name"] == user["name"] and body["email"] == user["email"]
    assert body["address"] == user["address"] and body["orders"] == user["orders"]
    for mid, method in body["payment_methods"].items():
        allowed = {"source", "id", "brand", "last_four", "balance"}
        assert set(method) <= allowed and method["id"] == mid
        if method["source"] == "credit_card":
            assert len(method["last_four"]) == 4 and method["brand"]
    stranger = someone_else(seed, uid)
    theirs = sqlite_client.get(f"/customers/{stranger}", headers=who(uid))
    unknown = sqlite_client.get("/customers/nobody_123", headers=who(uid))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    assert sqlite_client.get(f"/customers/{uid}").status_code == 422  # no X-Customer-Id


def test_order_ids_and_scoping(sqlite_client: Any, seed: dict[str, Any]) -> None:
    order = find_order(seed, "processed")
    uid, oid = order["user_id"], order["order_id"]
    digits = oid[2:]
    for variant in [oid, "W" + digits, "w" + digits, digits, " " + oid]:
        r = sqlite_client.get(path(variant), headers=who(uid))
        assert r.status_code == 200, variant
        assert r.json() == {k: order[k] for k in order}
    stranger = someone_else(seed, uid)
    theirs = sqlite_client.get(path(oid), headers=who(stranger))
    unknown = sqlite_client.get(path("#W0000000"), headers=who(stranger))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    r = sqlite_client.post(path(oid, "cancel"), json={"reason": "no longer needed"},
                           headers=who(stranger))
    assert r.status_code == 404 and r.json() == unknown.json()


# ---------------------------------------------------------------- catalog and tracking


def test_products(sqlite_client: Any, seed: dict[str, Any]) -> None:
    r = sqlite_client.get("/products")
    assert r.status_code == 200
    products = r.json()
    assert len(products) == 50
    assert sum(len(p["variants"]) for p in products) == 591
    first = next(iter(seed["products"].values()))
    r = sqlite_client.get(f"/products/{first['product_id']}")
    assert r.json() == first
    assert sqlite_client.get("/products/0000").status_code == 404


def test_shipments_agree_with_status(sqlite_client: Any, seed: dict[str, Any]) -> None:
    def get(status: str) -> tuple[dict[str, Any], dict[str, Any]]:
        order = find_order(seed, status)
        tid = order["fulfillments"][0]["tracking_id"][0]
        r = sqlite_client.get(f"/shipments/{tid}", headers=who(order["user_id"]))
        assert r.status_code == 200
        again = sqlite_client.get(f"/shipments/{tid}", headers=who(order["user_id"]))
        assert again.json() == r.json()  # deterministic
        return order, r.json()

    order, ship = get("processed")
    assert ship["status"] == "in_transit" and ship["carrier"]
    assert [e["status"] for e in ship["events"]] == ["label_created", "picked_up", "in_transit"]
    assert ship["estimated_delivery"] > ship["events"][-1]["time"][:10]
    assert ship["item_ids"] == order["fulfillments"][0]["item_ids"]
    times = [e["time"] for e in ship["events"]]
    assert times == sorted(times)

    order, ship = get("delivered")
    assert ship["status"] == "delivered" and ship["events"][-1]["status"] == "delivered"
    place = f"{order['address']['city']}, {order['address']['state']}"
    assert ship["events"][-1]["location"] == place and ship["delivered_at"]
    times = [e["time"] for e in ship["events"]]
    assert times == sorted(times)

    _, ship = get("cancelled")
    assert ship["status"] == "cancelled"

    pending = find_order(seed, "pending")
    assert pending["fulfillments"] == []  # nothing shipped yet: no tracking id to ask about
    assert sqlite_client.get("/shipments/000000000000",
                             headers=who(pending["user_id"])).status_code == 404


# ---------------------------------------------------------------- bad input


BAD_IDS = ["' OR '1'='1", "1; DROP TABLE orders;--", "%00", "%F0%9F%92%A9", "x" * 500,
           "%E2%80%AE", "%C0%AF", "..%2F..%2Fetc"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_odd_ids_are_404(sqlite_client: Any, seed: dict[str, Any], bad: str) -> None:
    uid = next(iter(seed["users"]))
    for url in [f"/orders/{bad}", f"/customers/{bad}", f"/products/{bad}",
                f"/shipments/{bad}", f"/handoffs/{bad}"]:
        r = sqlite_client.get(url, headers=who(uid))
        assert r.status_code in (404, 422), (url, r.status_code)
        assert "error" in r.json()


def test_bad_bodies(sqlite_client: Any, seed: dict[str, Any]) -> None:
    order = find_order(seed, "pending")
    uid, oid = order["user_id"], order["order_id"]
    url = path(oid, "cancel")
    cases = [
        (b"{not json", 422, "malformed_json"),
        (b'{"reason": 5}', 422, "validation_error"),
        (b'{"reason": "no longer needed", "x": 1}', 422, "validation_error"),
        (b'["no longer needed"]', 422, "validation_error"),
        (b'{"reason": "no\\u0000 longer"}', 422, "validation_error"),
        (b'{"reason": "\\ud800"}', 422, "validation_error"),
        (b"\xff\xfe", 422, None),
        (b"", 422, None),
    ]
    for raw, status, code in cases:
        r = sqlite_client.post(url, content=raw, headers={**who(uid),
                                                          "Content-Type": "application/json"})
        assert r.status_code == status, (raw, r.text)
        assert set(r.json()) == {"error"}
        if code:
            assert r.json()["error"]["code"] == code
    r = sqlite_client.post(url, content=b"x" * 100_000,
                           headers={**who(uid), "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit still holds
        for _ in range(100):
            yield b"x" * 1024

    r = sqlite_client.post(url, content=chunks(), headers={**who(uid),
                                                          "Content-Type": "application/json"})
    assert r.status_code == 413
    assert sqlite_client.get(path(oid), headers=who(uid)).json()["status"] == "pending"


def test_odd_unicode_is_stored_faithfully(client: Any, seed: dict[str, Any]) -> None:
    """Runs on both backends: emoji, RTL, combining marks round-trip."""
    order = find_order(seed, "pending")
    uid, oid = order["user_id"], order["order_id"]
    address = {"address1": "٣ شارع 🏠 e\u0301", "address2": "", "city": "Zürich",
               "country": "CH", "state": "ZH", "zip": "8001"}
    r = client.post(path(oid, "address"), json=address, headers=who(uid))
    assert r.status_code == 200 and r.json()["address"] == address
    r = client.post(path(oid, "address"), json={**address, "city": "a\u0000b"}, headers=who(uid))
    assert r.status_code == 422
    r = client.get(path("\u0000"), headers=who(uid))
    assert r.status_code in (404, 422)
    r = client.get("/customers/lookup", params={"email": "a\u0000@b.c", "zip": "12345"})
    assert r.status_code == 422


def test_unknown_route_and_method(sqlite_client: Any) -> None:
    r = sqlite_client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = sqlite_client.delete("/products")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
