"""The item-swapping writes (exchange, item modification) against the real shop backend."""

from __future__ import annotations

from typing import Tuple

from actions.shop_client import ShopClient
from actions.shop_records import Item
from actions.tests.conftest import stored_order

MEI = "mei_martin_4260"  # not used by the other action tests


def other_variant(client: ShopClient, item: Item) -> str:
    """An available variant of the same product, other than ``item``."""
    variants = client.get_product(item.product_id).variants
    return next(v.item_id for v in variants if v.available and v.item_id != item.item_id)


def first_item_and_payment(client: ShopClient, order_id: str) -> Tuple[Item, str]:
    order = client.get_order(order_id, MEI)
    return order.items[0], order.payment_method_ids[0]


def test_exchange_records_old_and_new_items(client: ShopClient) -> None:
    item, method = first_item_and_payment(client, "#W5564375")  # delivered
    new_id = other_variant(client, item)
    order = client.exchange_order("#W5564375", MEI, [item.item_id], [new_id], method)
    assert order.status == "exchange requested"
    stored = stored_order(client, "#W5564375", MEI)
    assert stored["exchange_items"] == [item.item_id]
    assert stored["exchange_new_items"] == [new_id]
    assert stored["exchange_payment_method_id"] == method


def test_item_modification_moves_the_order_to_item_modified(client: ShopClient) -> None:
    item, method = first_item_and_payment(client, "#W7017301")  # pending
    new_id = other_variant(client, item)
    order = client.modify_order_items("#W7017301", MEI, [item.item_id], [new_id], method)
    assert order.status == "pending (item modified)"
    assert new_id in [i.item_id for i in order.items]
