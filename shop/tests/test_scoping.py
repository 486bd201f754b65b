"""X-Customer-Id scopes tracking, handoff tickets and the customer a ticket or rating names.

Both backends (`client`); a refused write is checked in the database: no ticket, no rating and
no stored Idempotency-Key.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from shop.db import Handoff, IdempotencyKey, Rating, make_engine
from shop.tests.helpers import find_order, someone_else, who


def count(url: str, model: Any) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar_one()
    finally:
        engine.dispose()


def key() -> dict[str, str]:
    return {"Idempotency-Key": "k-" + uuid.uuid4().hex}


# ---------------------------------------------------------------- tracking


def test_shipment_only_for_the_customer_whose_order_it_carries(
        client: Any, seed: dict[str, Any]) -> None:
    order = find_order(seed, "delivered")
    uid, tid = order["user_id"], order["fulfillments"][0]["tracking_id"][0]
    mine = client.get(f"/shipments/{tid}", headers=who(uid))
    assert mine.status_code == 200 and mine.json()["order_id"] == order["order_id"]
    stranger = someone_else(seed, uid)
    theirs = client.get(f"/shipments/{tid}", headers=who(stranger))
    unknown = client.get("/shipments/000000000000", headers=who(stranger))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.content == unknown.content
    assert theirs.json()["error"]["code"] == "shipment_not_found"
    nobody = client.get(f"/shipments/{tid}")  # the header is required, as on every scoped read
    assert nobody.status_code == 422 and "X-Customer-Id" in nobody.json()["error"]["message"]


# ---------------------------------------------------------------- handoff tickets


def test_handoff_is_read_only_by_its_customer(client: Any, seed: dict[str, Any]) -> None:
    uid = next(iter(seed["users"]))
    stranger = someone_else(seed, uid)
    ticket = client.post("/handoffs", json={"summary": "help", "user_id": uid},
                         headers=who(uid)).json()
    anonymous = client.post("/handoffs", json={"summary": "a person please"}).json()
    assert client.get(f"/handoffs/{ticket['id']}", headers=who(uid)).json() == ticket
    unknown = client.get("/handoffs/ho_0000000000000000", headers=who(stranger))
    assert unknown.status_code == 404
    for tid in (ticket["id"], anonymous["id"]):
        r = client.get(f"/handoffs/{tid}", headers=who(stranger))
        assert (r.status_code, r.content) == (404, unknown.content)
    r = client.get(f"/handoffs/{anonymous['id']}", headers=who(uid))
    assert (r.status_code, r.content) == (404, unknown.content)
    r = client.get(f"/handoffs/{ticket['id']}")
    assert r.status_code == 422 and "X-Customer-Id" in r.json()["error"]["message"]


@pytest.mark.parametrize("body_customer,header,status,code", [
    ("other", "me", 404, "customer_mismatch"),   # someone else, named in my ticket
    ("other", None, 422, "customer_id_required"),  # on behalf of a customer, no header
    (None, "me", 404, "customer_mismatch"),      # a header but the body names no one
    ("nobody_999", "me", 404, "customer_mismatch"),  # unknown: the same, nothing revealed
])
def test_handoff_naming_another_customer_is_refused_and_nothing_written(
        client: Any, db_url: str, seed: dict[str, Any], body_customer: str | None,
        header: str | None, status: int, code: str) -> None:
    me = next(iter(seed["users"]))
    names = {"me": me, "other": someone_else(seed, me), None: None}
    body: dict[str, Any] = {"summary": "please help", "conversation_id": "conv-x"}
    if body_customer is not None:
        body["user_id"] = names.get(body_customer, body_customer)
    headers = {**key(), **(who(names[header]) if header else {})}
    before = count(db_url, Handoff), count(db_url, IdempotencyKey)
    r = client.post("/handoffs", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]["code"] == code
    assert (count(db_url, Handoff), count(db_url, IdempotencyKey)) == before
    # the refusal was not stored under the key: the corrected request may use it
    fixed = {**body, "user_id": me}
    assert client.post("/handoffs", json=fixed, headers={**headers, **who(me)}).status_code == 201


def test_anonymous_handoff_and_rating_stay_allowed(client: Any) -> None:
    assert client.post("/handoffs", json={"summary": "a human please"}).status_code == 201
    r = client.post("/ratings", json={"conversation_id": "anon-1", "rating": 4})
    assert r.status_code == 201 and r.json()["customer_id"] is None


# ---------------------------------------------------------------- ratings


@pytest.mark.parametrize("body_customer,header,status,code", [
    ("other", "me", 404, "customer_mismatch"),
    ("other", None, 422, "customer_id_required"),
    (None, "me", 404, "customer_mismatch"),
])
def test_rating_naming_another_customer_is_refused_and_nothing_written(
        client: Any, db_url: str, seed: dict[str, Any], body_customer: str | None,
        header: str | None, status: int, code: str) -> None:
    me = next(iter(seed["users"]))
    names = {"me": me, "other": someone_else(seed, me), None: None}
    body: dict[str, Any] = {"conversation_id": "conv-r", "rating": 1}
    if body_customer is not None:
        body["customer_id"] = names[body_customer]
    headers = {**key(), **(who(names[header]) if header else {})}
    before = count(db_url, Rating), count(db_url, IdempotencyKey)
    r = client.post("/ratings", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert (count(db_url, Rating), count(db_url, IdempotencyKey)) == before
    assert client.get("/ratings").json()["summary"]["count"] == 0  # the report needs no header
    ok = client.post("/ratings", json={**body, "customer_id": me},
                     headers={**headers, **who(me)})
    assert ok.status_code == 201 and ok.json()["customer_id"] == me
