"""Finding suitable orders in the seed data, and snapshots to prove that refusals change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

Order = dict[str, Any]


def who(user_id: str) -> dict[str, str]:
    return {"X-Customer-Id": user_id}


def path(order_id: str, action: str = "") -> str:
    return f"/orders/{quote(order_id, safe='')}" + (f"/{action}" if action else "")


def methods(seed: dict[str, Any], user_id: str, source: str | None = None) -> list[dict[str, Any]]:
    found = list(seed["users"][user_id]["payment_methods"].values())
    return [m for m in found if source is None or m["source"] == source]


def variants(seed: dict[str, Any], product_id: str) -> list[dict[str, Any]]:
    return list(seed["products"][product_id]["variants"].values())


def other_variant(
    seed: dict[str, Any], item: dict[str, Any], available: bool = True,
    cheaper: bool | None = None,
) -> dict[str, Any] | None:
    for v in variants(seed, item["product_id"]):
        if v["item_id"] == item["item_id"] or v["available"] != available:
            continue
        if cheaper is True and not v["price"] < item["price"]:
            continue
        if cheaper is False and not v["price"] > item["price"]:
            continue
        return v
    return None


def short_gift_card(seed: dict[str, Any], order: Order
                    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """A gift card of the customer, an item and a dearer variant the card cannot pay for."""
    for gift in methods(seed, order["user_id"], "gift_card"):
        for item in order["items"]:
            new = other_variant(seed, item, cheaper=False)
            if new and gift["balance"] < new["price"] - item["price"]:
                return gift, item, new
    return None


def find_order(seed: dict[str, Any], status: str, pred: Callable[[Order], bool] | None = None,
               skip: int = 0) -> Order:
    for order in seed["orders"].values():
        if order["status"] == status and (pred is None or pred(order)):
            if skip == 0:
                return order
            skip -= 1
    raise LookupError(f"no {status} order matches")


def paid_with(seed: dict[str, Any], order: Order, source: str) -> bool:
    mid = order["payment_history"][0]["payment_method_id"]
    return seed["users"][order["user_id"]]["payment_methods"][mid]["source"] == source


def someone_else(seed: dict[str, Any], user_id: str) -> str:
    return next(u for u in seed["users"] if u != user_id)


def snapshot(client: Any, user_id: str, order_id: str) -> tuple[Any, Any]:
    """Order and customer as the API shows them."""
    order = client.get(path(order_id), headers=who(user_id))
    customer = client.get(f"/customers/{user_id}", headers=who(user_id))
    assert order.status_code == 200 and customer.status_code == 200
    return order.json(), customer.json()


def assert_refused(client: Any, response: Any, status: int, user_id: str, order_id: str,
                   before: tuple[Any, Any], code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    if code:
        assert body["error"]["code"] == code, body
    assert snapshot(client, user_id, order_id) == before


def balance(client: Any, user_id: str, method_id: str) -> float:
    profile = client.get(f"/customers/{user_id}", headers=who(user_id)).json()
    return profile["payment_methods"][method_id]["balance"]
