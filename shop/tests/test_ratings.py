"""POST/GET /ratings: one satisfaction rating per conversation, listed newest first with a summary.

Runs on SQLite and PostgreSQL (the `client` fixture), since the uniqueness of a conversation's
rating is enforced by the schema as well as by the service.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from starlette.testclient import TestClient

from shop.tests.conftest import make_client


def rate(client: Any, conversation_id: str, rating: Any, key: str | None = None,
         caller: str | None = None, **extra: Any) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    if caller:
        headers["X-Customer-Id"] = caller
    return client.post("/ratings", json={"conversation_id": conversation_id, "rating": rating,
                                         **extra}, headers=headers)


def test_rating_is_stored_and_listed(client: Any) -> None:
    r = rate(client, "conv-1", 5, comment="Quick and friendly", customer_id="mohamed_li_1979",
             caller="mohamed_li_1979")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] >= 1 and body["rating"] == 5 and body["comment"] == "Quick and friendly"
    assert body["customer_id"] == "mohamed_li_1979" and body["conversation_id"] == "conv-1"
    assert body["created_at"].endswith("Z")

    listed = client.get("/ratings").json()
    assert listed["ratings"] == [body]
    assert listed["summary"] == {"count": 1, "average": 5.0,
                                 "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}


def test_list_is_newest_first_with_limit_and_summary_over_all(client: Any) -> None:
    for i, value in enumerate([1, 4, 4, 5, 2]):
        assert rate(client, f"c{i}", value).status_code == 201
    page = client.get("/ratings", params={"limit": 2}).json()
    assert [r["conversation_id"] for r in page["ratings"]] == ["c4", "c3"]
    assert page["summary"]["count"] == 5
    assert page["summary"]["average"] == 3.2
    assert page["summary"]["distribution"] == {"1": 1, "2": 1, "3": 0, "4": 2, "5": 1}


def test_empty_summary(client: Any) -> None:
    assert client.get("/ratings").json() == {
        "ratings": [],
        "summary": {"count": 0, "average": None,
                    "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}},
    }


def test_second_rating_of_a_conversation_is_a_conflict(client: Any) -> None:
    assert rate(client, "conv-2", 3).status_code == 201
    again = rate(client, "conv-2", 1)
    assert again.status_code == 409
    assert again.json() == {"error": {"code": "already_rated",
                                      "message": "This conversation has already been rated."}}
    assert [r["rating"] for r in client.get("/ratings").json()["ratings"]] == [3]


def test_same_idempotency_key_replays_the_first_answer(client: Any) -> None:
    first = rate(client, "conv-3", 4, key="rate-conv-3")
    replay = rate(client, "conv-3", 4, key="rate-conv-3")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert client.get("/ratings").json()["summary"]["count"] == 1
    other = rate(client, "conv-3", 2, key="rate-conv-3")  # same key, different request
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("body,code", [
    ({"conversation_id": "c", "rating": 0}, "validation_error"),
    ({"conversation_id": "c", "rating": 6}, "validation_error"),
    ({"conversation_id": "c", "rating": "5"}, "validation_error"),
    ({"conversation_id": "c", "rating": 4.5}, "validation_error"),
    ({"conversation_id": "c", "rating": True}, "validation_error"),
    ({"conversation_id": "c"}, "validation_error"),
    ({"rating": 3}, "validation_error"),
    ({"conversation_id": "   ", "rating": 3}, "validation_error"),
    ({"conversation_id": "c" * 201, "rating": 3}, "validation_error"),
    ({"conversation_id": "c", "rating": 3, "comment": "x" * 1001}, "validation_error"),
    ({"conversation_id": "c", "rating": 3, "comment": "bad\x00text"}, "validation_error"),
    ({"conversation_id": "c", "rating": 3, "stars": 3}, "validation_error"),
    ({"conversation_id": "c", "rating": 3, "customer_id": "nobody_here"}, "customer_id_required"),
    ({"conversation_id": "c", "rating": 3, "customer_id": "two words"}, "validation_error"),
])
def test_bad_input_is_a_422_with_the_error_shape(sqlite_client: Any, body: dict[str, Any],
                                                 code: str) -> None:
    r = sqlite_client.post("/ratings", json=body)
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]["code"] == code
    assert sqlite_client.get("/ratings").json()["summary"]["count"] == 0


def test_unknown_customer_with_its_header_is_a_422(sqlite_client: Any) -> None:
    r = rate(sqlite_client, "c", 3, customer_id="nobody_here", caller="nobody_here")
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_not_found"
    assert sqlite_client.get("/ratings").json()["summary"]["count"] == 0


def test_comment_is_optional_and_kept_up_to_1000_chars(sqlite_client: Any) -> None:
    assert rate(sqlite_client, "a", 2).json()["comment"] is None
    assert rate(sqlite_client, "b", 2, comment="").json()["comment"] is None
    assert rate(sqlite_client, "c", 2, comment="é" * 1000).json()["comment"] == "é" * 1000


@pytest.mark.parametrize("limit", [0, 1001, -1, "many"])
def test_bad_limit(sqlite_client: Any, limit: Any) -> None:
    r = sqlite_client.get("/ratings", params={"limit": limit})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_token_required(sqlite_client: Any) -> None:
    sqlite_client.headers.pop("Authorization")
    assert sqlite_client.get("/ratings").status_code == 401
    assert rate(sqlite_client, "x", 3).status_code == 401


def test_concurrent_ratings_of_one_conversation_store_one(db_url: str) -> None:
    """Racing POSTs (no idempotency key): exactly one 201, the others 409, never a 500."""
    statuses: list[int] = []
    with make_client(db_url) as client:
        apps: list[TestClient] = [client] * 6

        def post(c: TestClient, i: int) -> None:
            statuses.append(rate(c, "raced", 1 + i % 5).status_code)

        threads = [threading.Thread(target=post, args=(c, i)) for i, c in enumerate(apps)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
        assert client.get("/ratings").json()["summary"]["count"] == 1


def test_openapi_documents_the_endpoints(sqlite_client: Any) -> None:
    spec = sqlite_client.get("/openapi.json").json()
    assert {"post", "get"} <= set(spec["paths"]["/ratings"])
    assert "409" in spec["paths"]["/ratings"]["post"]["responses"]
