"""Idempotency keys and concurrent writes, on SQLite and PostgreSQL.

The concurrency tests run `python -m shop` with two uvicorn worker processes and hit it from many
threads over real sockets, so the database locks (not the GIL) are what keeps writes apart.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import httpx2

from shop.tests.conftest import AUTH, ServerProcess
from shop.tests.helpers import balance, find_order, other_variant, paid_with, path, who

PARALLEL = 12


def cents(x: float) -> int:
    return round(x * 100)


# ---------------------------------------------------------------- idempotency


def test_idempotent_cancel_replays(client: Any, seed: dict[str, Any]) -> None:
    order = find_order(seed, "pending", lambda o: paid_with(seed, o, "gift_card"))
    uid, oid = order["user_id"], order["order_id"]
    gift = order["payment_history"][0]["payment_method_id"]
    start = balance(client, uid, gift)
    key = {"Idempotency-Key": "k-" + uuid.uuid4().hex}
    first = client.post(path(oid, "cancel"), json={"reason": "no longer needed"},
                        headers={**who(uid), **key})
    second = client.post(path(oid, "cancel"), json={"reason": "no longer needed"},
                         headers={**who(uid), **key})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(second.json()["payment_history"]) == 2
    assert cents(balance(client, uid, gift)) == cents(start) + cents(
        order["payment_history"][0]["amount"])
    # a new key is a new request: refused now, nothing changes
    third = client.post(path(oid, "cancel"), json={"reason": "no longer needed"},
                        headers={**who(uid), "Idempotency-Key": "other-" + uuid.uuid4().hex})
    assert third.status_code == 409
    # same key, different body: refused, says why
    reused = client.post(path(oid, "cancel"), json={"reason": "ordered by mistake"},
                         headers={**who(uid), **key})
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_idempotent_refusal_is_replayed(client: Any, seed: dict[str, Any]) -> None:
    order = find_order(seed, "pending")
    uid, oid = order["user_id"], order["order_id"]
    key = {"Idempotency-Key": "r-" + uuid.uuid4().hex}
    first = client.post(path(oid, "cancel"), json={"reason": "bored"}, headers={**who(uid), **key})
    assert first.status_code == 422
    second = client.post(path(oid, "cancel"), json={"reason": "bored"},
                         headers={**who(uid), **key})
    assert (second.status_code, second.json()) == (first.status_code, first.json())


def test_idempotent_handoff_and_address(client: Any, seed: dict[str, Any]) -> None:
    key = {"Idempotency-Key": "h-" + uuid.uuid4().hex}
    a = client.post("/handoffs", json={"summary": "help"}, headers=key)
    b = client.post("/handoffs", json={"summary": "help"}, headers=key)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    uid = next(iter(seed["users"]))
    addr = {"address1": "2 Road", "address2": "", "city": "X", "country": "USA", "state": "CA",
            "zip": "90001"}
    key = {"Idempotency-Key": "a-" + uuid.uuid4().hex}
    a = client.put(f"/customers/{uid}/address", json=addr, headers={**who(uid), **key})
    b = client.put(f"/customers/{uid}/address", json=addr, headers={**who(uid), **key})
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    bad = client.post("/handoffs", json={"summary": "x"}, headers={"Idempotency-Key": "has space"})
    assert bad.status_code == 422


# ---------------------------------------------------------------- concurrency over real sockets


def _burst(srv: ServerProcess, requests: list[tuple[str, str, dict, dict]]) -> list[Any]:
    """Fire all requests at once (a barrier releases the threads together)."""
    results: list[Any] = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(i: int) -> None:
        method, url, body, headers = requests[i]
        with httpx2.Client(base_url=srv.base_url, headers=AUTH, timeout=60) as http:
            barrier.wait()
            results[i] = http.request(method, url, json=body, headers=headers)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_parallel_cancels_apply_once(server: ServerProcess, seed: dict[str, Any]) -> None:
    order = find_order(seed, "pending", lambda o: paid_with(seed, o, "gift_card"))
    uid, oid = order["user_id"], order["order_id"]
    gift = order["payment_history"][0]["payment_method_id"]
    with httpx2.Client(base_url=server.base_url, headers=AUTH) as http:
        start = balance(http, uid, gift)
    reqs = [("POST", path(oid, "cancel"), {"reason": "no longer needed"}, who(uid))] * PARALLEL
    statuses = Counter(r.status_code for r in _burst(server, reqs))
    assert statuses == {200: 1, 409: PARALLEL - 1}, statuses
    with httpx2.Client(base_url=server.base_url, headers=AUTH) as http:
        final = http.get(path(oid), headers=who(uid)).json()
        assert [e["transaction_type"] for e in final["payment_history"]] == ["payment", "refund"]
        assert cents(balance(http, uid, gift)) == cents(start) + cents(
            order["payment_history"][0]["amount"])


def test_parallel_mixed_writes_one_wins(server: ServerProcess, seed: dict[str, Any]) -> None:
    """Cancels and item changes race on one order: after either the other is refused."""
    def ok(o: dict[str, Any]) -> bool:
        return any(other_variant(seed, i) for i in o["items"]) and not paid_with(
            seed, o, "gift_card")
    order = find_order(seed, "pending", ok, skip=3)
    uid, oid = order["user_id"], order["order_id"]
    item = next(i for i in order["items"] if other_variant(seed, i))
    swap = {"item_ids": [item["item_id"]], "new_item_ids": [other_variant(seed, item)["item_id"]],
            "payment_method_id": order["payment_history"][0]["payment_method_id"]}
    reqs = []
    for i in range(PARALLEL):
        if i % 2:
            reqs.append(("POST", path(oid, "cancel"), {"reason": "ordered by mistake"}, who(uid)))
        else:
            reqs.append(("POST", path(oid, "items"), swap, who(uid)))
    results = _burst(server, reqs)
    statuses = Counter(r.status_code for r in results)
    assert statuses[200] == 1 and statuses[409] == PARALLEL - 1, statuses
    with httpx2.Client(base_url=server.base_url, headers=AUTH) as http:
        final = http.get(path(oid), headers=who(uid)).json()
    assert len(final["payment_history"]) == 2
    assert final["status"] in ("cancelled", "pending (item modified)")


def test_parallel_same_idempotency_key(server: ServerProcess, seed: dict[str, Any]) -> None:
    order = find_order(seed, "pending", skip=5)
    uid, oid = order["user_id"], order["order_id"]
    headers = {**who(uid), "Idempotency-Key": "same-" + uuid.uuid4().hex}
    reqs = [("POST", path(oid, "cancel"), {"reason": "no longer needed"}, headers)] * PARALLEL
    results = _burst(server, reqs)
    assert {r.status_code for r in results} == {200}, [r.text for r in results]
    assert len({r.text for r in results}) == 1
    with httpx2.Client(base_url=server.base_url, headers=AUTH) as http:
        final = http.get(path(oid), headers=who(uid)).json()
    assert [e["transaction_type"] for e in final["payment_history"]] == ["payment", "refund"]


def test_parallel_gift_card_not_overspent(server: ServerProcess, seed: dict[str, Any]) -> None:
    """Two orders of one customer pay upgrades with one gift card that covers only one of them."""
    def upgrade(order: dict[str, Any], limit: float) -> tuple[float, str, str] | None:
        best = None
        for item in order["items"]:
            for v in seed["products"][item["product_id"]]["variants"].values():
                diff = v["price"] - item["price"]
                if v["available"] and v["item_id"] != item["item_id"] and 0 < diff <= limit \
                        and (best is None or diff > best[0]):
                    best = (diff, item["item_id"], v["item_id"])
        return best

    def case() -> tuple[str, dict[str, Any], list[tuple[str, tuple[float, str, str]]]]:
        for uid, user in seed["users"].items():
            for gift in (m for m in user["payment_methods"].values()
                         if m["source"] == "gift_card"):
                ups = [(o, u) for o in user["orders"]
                       if seed["orders"][o]["status"] == "pending"
                       and (u := upgrade(seed["orders"][o], gift["balance"]))]
                if len(ups) >= 2 and ups[0][1][0] + ups[1][1][0] > gift["balance"]:
                    return uid, gift, ups[:2]
        raise LookupError("no such customer in the seed")

    uid, gift, ups = case()
    reqs = [("POST", path(oid, "items"), {"item_ids": [old], "new_item_ids": [new],
                                          "payment_method_id": gift["id"]}, who(uid))
            for oid, (_, old, new) in ups] * (PARALLEL // 2)
    results = _burst(server, reqs)
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: 1, 409: PARALLEL - 1}, statuses
    winner = next(r.json() for r in results if r.status_code == 200)
    spent = next(u[0] for o, u in ups if o == winner["order_id"])
    with httpx2.Client(base_url=server.base_url, headers=AUTH) as http:
        assert cents(balance(http, uid, gift["id"])) == cents(gift["balance"]) - cents(spent)
