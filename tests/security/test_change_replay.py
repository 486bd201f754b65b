"""A confirmed change whose reply was lost is resent exactly (same key, same body), never redone.

Before: the shopper's next "yes" was a new turn with a new idempotency key, so a write the shop
had already done could be attempted again. The fault is injected on purpose (the reliability
suite's proxy between the action server and the real shop: it forwards the write, the shop does
it, and the answer is lost); everything else is real.
"""

from __future__ import annotations

import json

from tests.reliability.conftest import MEI, identify, proxies_reset, rel  # noqa: F401 - fixtures


def refunds(rel, order_id: str) -> int:  # noqa: F811 - the fixture's name
    row = rel.stack.shop_query("SELECT payment_history FROM orders WHERE order_id = ?",
                               (order_id,))[0]
    return sum(1 for p in json.loads(row["payment_history"])
               if p.get("transaction_type") == "refund")


def test_a_lost_reply_is_replayed_with_the_same_key_and_done_once(
    proxies_reset,  # noqa: F811 - the fixture
) -> None:
    rel = proxies_reset  # noqa: F811 - the fixture
    order = MEI["pending"]
    chat = identify(rel.stack)
    readback = chat.text(f"cancel order {order}, I ordered it by mistake")
    assert "cancel" in readback.lower() and order in readback, readback
    before = refunds(rel, order)

    rel.shop_proxy.clear()
    rel.shop_proxy.set("lose_reply", only_method="POST")  # the shop cancels; the answer is lost
    lost = chat.text("yes")
    rel.shop_proxy.set("pass")
    assert "answer" in lost.lower() and "twice" in lost.lower(), lost
    status = rel.stack.shop_query("SELECT status FROM orders WHERE order_id = ?", (order,))
    assert status[0]["status"] == "cancelled"  # it did happen
    assert chat.slots().get("change_pending"), "the unanswered write must be kept"

    done = chat.text("yes")
    posts = rel.shop_proxy.requests_to("POST", "/cancel")
    assert len(posts) == 2 and posts[0].idem_key == posts[1].idem_key, posts
    assert posts[0].path == posts[1].path
    assert "cancelled" in done.lower(), done
    assert "couldn't" not in done.lower()
    # one cancel's refunds, not two; and the conversation forgot the write
    after = refunds(rel, order)
    assert after > before
    assert rel.stack.shop_query("SELECT COUNT(*) AS n FROM orders WHERE order_id = ?",
                                (order,))[0]["n"] == 1
    slots = chat.slots()
    assert slots.get("change_pending") is None and slots.get("change_outcome_unknown") is False
    again = chat.text("yes")  # a later "yes" resends nothing
    assert len(rel.shop_proxy.requests_to("POST", "/cancel")) == 2, again
    assert refunds(rel, order) == after
