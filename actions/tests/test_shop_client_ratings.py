"""ShopClient.create_rating / list_ratings against the real shop backend (see conftest.py)."""

from __future__ import annotations

import secrets

import pytest

from actions.shop_client import Conflict, Invalid, ShopClient, ShopUnavailable
from actions.tests.conftest import MOHAMED


def conversation() -> str:
    return "rating-client-" + secrets.token_hex(4)


def test_create_and_list(client: ShopClient) -> None:
    conv = conversation()
    stored = client.create_rating(conv, 4, comment="Helpful", customer_id=MOHAMED["user_id"])
    assert stored["rating"] == 4 and stored["comment"] == "Helpful"
    assert stored["customer_id"] == MOHAMED["user_id"] and stored["conversation_id"] == conv
    listed = client.list_ratings(limit=1000)
    assert stored in listed["ratings"]
    summary = listed["summary"]
    assert summary["count"] >= 1 and set(summary["distribution"]) == {"1", "2", "3", "4", "5"}
    assert listed["ratings"][0]["id"] >= stored["id"]  # newest first


def test_repeating_the_same_rating_is_idempotent(client: ShopClient) -> None:
    conv = conversation()
    first = client.create_rating(conv, 5)
    assert client.create_rating(conv, 5) == first  # same derived Idempotency-Key: replayed
    with pytest.raises(Conflict):
        client.create_rating(conv, 2)  # another rating of the same conversation


def test_invalid_rating_is_refused(client: ShopClient) -> None:
    with pytest.raises(Invalid):
        client.create_rating(conversation(), 9)
    with pytest.raises(Invalid):
        client.create_rating(conversation(), 3, customer_id="nobody_like_this")


def test_limit_is_respected(client: ShopClient) -> None:
    for value in (1, 2):
        client.create_rating(conversation(), value)
    assert len(client.list_ratings(limit=1)["ratings"]) == 1


@pytest.mark.no_shop
def test_shop_down_is_unavailable(shop_down: str) -> None:
    client = ShopClient(retries=0)
    with pytest.raises(ShopUnavailable):
        client.create_rating(conversation(), 3)
    with pytest.raises(ShopUnavailable):
        client.list_ratings()
