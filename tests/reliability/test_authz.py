"""Authorization: an identified shopper asking about other customers' orders gets nothing of
them (typed questions and typed `/order_status{...}` payloads), and identification attempts are
rate-limited per conversation (the shop is not asked again once a conversation is locked)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.reliability.conftest import MEI, Reliability, identify, record

SAMPLE = 200
CONVERSATIONS = 8


def other_orders(rel: Reliability, n: int = SAMPLE) -> list[dict]:
    """``n`` orders of other customers, spread over the table, with what would identify them."""
    rows = rel.stack.shop_query(
        "SELECT o.order_id, o.status, o.items, o.fulfillments, o.address, c.first_name, "
        "c.last_name, c.email, c.user_id FROM orders o JOIN customers c ON c.user_id = o.user_id "
        "WHERE o.user_id != ? ORDER BY o.order_id", (MEI["user_id"],))
    step = max(1, len(rows) // n)
    picked = rows[::step][:n]
    mei_items = {i["name"] for r in rel.stack.shop_query(
        "SELECT items FROM orders WHERE user_id = ?", (MEI["user_id"],))
        for i in json.loads(r["items"])}
    out = []
    for row in picked:
        items = json.loads(row["items"])
        address = json.loads(row["address"])
        secrets = {row["first_name"], row["last_name"], row["email"], row["user_id"],
                   address.get("address1", ""), address.get("zip", "")}
        secrets |= {str(t) for f in json.loads(row["fulfillments"]) for t in
                    f.get("tracking_id", [])}
        secrets |= {str(i["item_id"]) for i in items}
        secrets |= {i["name"] for i in items if i["name"] not in mei_items}
        secrets |= {f"${i['price']:,.2f}" for i in items}
        out.append({"order_id": row["order_id"], "secrets": {s for s in secrets if len(s) > 3}})
    return out


def test_other_customers_orders_reveal_nothing(rel: Reliability) -> None:
    rel.shop_proxy.set("pass")
    orders = other_orders(rel)
    assert len(orders) >= SAMPLE
    batches = [orders[i::CONVERSATIONS] for i in range(CONVERSATIONS)]
    leaks: list[str] = []
    asked = []

    def ask(batch: list[dict]) -> None:
        chat = identify(rel.stack)
        for i, order in enumerate(batch):
            oid = order["order_id"]
            questions = [f"what is the status of order {oid}",
                         "/order_status" + json.dumps({"order_id": oid})]
            if i % 4 == 0:
                questions.append("/track_order" + json.dumps({"order_id": oid}))
            for question in questions:
                reply = json.dumps(chat.say(question), ensure_ascii=False)
                asked.append(question)
                found = [s for s in order["secrets"] if s in reply]
                if found:
                    leaks.append(f"{question!r} -> {found} in {reply[:300]}")
        assert chat.slots()["customer_id"] == MEI["user_id"]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(ask, batches))
    record("authorization", orders=len(orders), questions=len(asked), leaks=len(leaks))
    assert not leaks, leaks[:5]


def test_identification_attempts_are_rate_limited(rel: Reliability) -> None:
    rel.shop_proxy.set("pass")
    rel.shop_proxy.clear()
    chat = rel.stack.conversation()
    chat.text("list my orders")
    chat.text("nobody1@example.com 10001")
    chat.text("Mei Martin, zip 00000")  # a wrong name + zip is a strike too
    chat.text("nobody3@example.com 10001")
    lookups = len(rel.shop_proxy.requests_to("GET", "/customers/lookup"))
    assert lookups == 3
    # locked: even the right identity is refused, and the shop is not even asked
    for attempt in (f"{MEI['email']} {MEI['zip']}", f"{MEI['first']} {MEI['last']} {MEI['zip']}",
                    f"{MEI['email']}, zip {MEI['zip']}"):
        chat.text("list my orders")
        reply = chat.text(attempt)
        assert "Mei" not in reply
    assert len(rel.shop_proxy.requests_to("GET", "/customers/lookup")) == lookups
    assert chat.slots()["identified"] is False
    # per conversation: another conversation is not affected
    assert identify(rel.stack).slots()["customer_id"] == MEI["user_id"]
