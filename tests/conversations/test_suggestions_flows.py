"""Issue 21: suggestions where a shopper needs them, through REST with the real shop.

A sold-out option in an exchange gets the closest available variants of the same product,
each explained; nothing is written before the shopper picks one and says yes.
"""

from __future__ import annotations

from typing import Any

from tests.conversations.harness import Conversation, Stack
from tests.conversations.shoppers import db_order, db_order_ids

OMAR = {"email": "omar.khan3563@example.com", "zip": "75203", "user_id": "omar_khan_2363"}
HOSE_ORDER = "#W6304490"  # delivered; a Garden Hose 25ft, rubber, green (item 5753502325)
HOSE_VARIANTS = {  # the catalog's Garden Hose: item id -> available
    "5753502325": False, "8249784860": False, "8481719475": True, "9829827210": True,
    "1518544029": False, "3369928769": True, "4024196380": True, "4764314102": False,
    "3230708338": True, "5206946487": True,
}
FIFTY_FEET_AVAILABLE = {"4024196380", "5206946487"}  # latex black, vinyl black


def identified(stack: Stack, who: dict[str, str], first: str) -> Conversation:
    chat = stack.conversation()
    assert first in chat.text(f"hi its {who['email']} zip {who['zip']}")
    return chat


def buttons(replies: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [b for r in replies for b in r.get("buttons") or []]


def text_of(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies if r.get("text"))


def offered_items(replies: list[dict[str, Any]]) -> list[str]:
    import json

    out = []
    for b in buttons(replies):
        payload = b["payload"]
        if payload.startswith("/inform{") and "item_id" in payload:
            out.append(json.loads(payload[len("/inform"):])["item_id"])
    return out


def test_a_sold_out_option_gets_the_closest_available_variants(stack: Stack) -> None:
    chat = identified(stack, OMAR, "Omar")
    others_before = {o: db_order(stack, o)["status"] for o in db_order_ids(stack, OMAR["user_id"])}
    replies = chat.say(f"i want to exchange the garden hose from {HOSE_ORDER.lower()} "
                       "for the 50ft one, same colour")
    if "which item" in text_of(replies).lower():  # a five-item order
        replies = chat.say("the garden hose")
    if "instead of" in text_of(replies):  # asked what it should become
        replies = chat.say("the 50ft one in green")
    text = text_of(replies)
    assert "sold out" in text and "closest" in text, text
    offered = offered_items(replies)
    assert offered and len(offered) <= 3, text  # the offers are the question, nothing more
    assert all(HOSE_VARIANTS.get(i) is True for i in offered), offered  # same product, available
    assert set(offered) & FIFTY_FEET_AVAILABLE, offered  # the asked length kept first
    assert offered[0] in FIFTY_FEET_AVAILABLE, offered
    assert "50ft" in text and "$" in text  # explained: what changes, the price
    assert db_order(stack, HOSE_ORDER)["status"] == "delivered"  # nothing written yet
    picked = offered[0]
    replies = chat.say(f'/inform{{"item_id":"{picked}"}}')
    methods = [b for b in buttons(replies) if "payment_method_id" in b["payload"]]
    readback = chat.text(methods[0]["payload"]) if methods else text_of(replies)
    assert "Garden Hose" in readback and "→" in readback, readback
    assert db_order(stack, HOSE_ORDER)["status"] == "delivered"
    chat.say("yes")
    row = db_order(stack, HOSE_ORDER)
    assert row["status"] == "exchange requested"
    assert row["exchange_items"] == ["5753502325"] and row["exchange_new_items"] == [picked]
    for order_id, status in others_before.items():  # the other orders untouched
        if order_id != HOSE_ORDER:
            assert db_order(stack, order_id)["status"] == status


HARPER = {"email": "harper.kim4003@example.com", "zip": "78222", "user_id": "harper_kim_2998"}
HARPER_BOOTS = 260.56  # Hiking Boots size 12, leather, not waterproof (#W3433080, delivered)
PRICE_RE = r"\$(\d+(?:,\d{3})*\.\d{2})"


def suggested(stack: Stack, replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The suggested lines of a recommendation, each checked against the shop's database:
    a product of the catalog, in stock at the price said."""
    import json
    import re

    from tests.conversations.shoppers import _query

    text = text_of(replies)
    lines = [line for line in text.splitlines() if line.startswith("• ")]
    found = []
    for line in lines:
        name = line[2:].split(" (", 1)[0]
        match = re.search(PRICE_RE, line)
        assert match, f"no price in {line!r}:\n{text}"
        price = float(match.group(1).replace(",", ""))
        rows = _query(stack, "SELECT v.* FROM variants v JOIN products p USING (product_id) "
                      "WHERE p.name = ? AND v.price_cents = ?", (name, round(price * 100)))
        assert rows, f"{line!r} is not a variant of the catalog at that price"
        assert any(r["available"] for r in rows), f"{line!r} is sold out"
        found.append({"name": name, "price": price,
                      "options": [json.loads(r["options"]) if isinstance(r["options"], str)
                                  else r["options"] for r in rows]})
    return found


def test_like_my_boots_but_cheaper(stack: Stack) -> None:
    chat = identified(stack, HARPER, "Harper")
    before = db_order(stack, "#W3433080")
    replies = chat.say("do you have anything like my hiking boots but cheaper?")
    found = suggested(stack, replies)
    assert 1 <= len(found) <= 3, text_of(replies)
    assert all(f["price"] < HARPER_BOOTS for f in found), found  # cheaper than hers
    assert found[0]["name"] == "Hiking Boots", found  # like her boots: boots first
    assert "less than yours" in text_of(replies)
    titles = [b["title"] for b in buttons(replies)]
    assert any("Hiking Boots" in t for t in titles), titles
    assert db_order(stack, "#W3433080") == before  # asking never writes


def test_a_recommendation_for_a_stranger_keeps_the_stated_limits(stack: Stack) -> None:
    import json

    from tests.conversations.shoppers import _query

    def waterproof(options: dict[str, Any]) -> bool:
        return any("water" in f"{k} {v}".lower() and str(v).lower() not in ("no", "none")
                   for k, v in options.items())

    in_stock = [json.loads(r["options"]) if isinstance(r["options"], str) else r["options"]
                for r in _query(stack, "SELECT options FROM variants WHERE available = 1 "
                                "AND price_cents < 15000")]
    assert not any(waterproof(o) for o in in_stock)  # the catalog has none under $150
    chat = stack.conversation()
    reply = chat.text("what would you recommend for a rainy hike? something waterproof "
                      "under $150")
    assert "couldn't find anything in stock that fits" in reply, reply  # true, not invented
    replies = chat.say("ok what would you recommend for a rainy hike that's waterproof and "
                       "under $300")
    found = suggested(stack, replies)
    assert found, text_of(replies)
    assert all(f["price"] < 300 for f in found), found
    assert "for you" not in text_of(replies)  # no history: nothing personal claimed
    for f in found:
        assert any(waterproof(o) for o in f["options"]), f
