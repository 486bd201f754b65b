"""Shared helpers of the "real shoppers" conversation tests (issue 23).

Three parts:

- the store data (``shop/data/db.json``, the seed of the shop's database): customers, orders,
  products and variants, so that every test computes what it expects (item ids, variant ids,
  prices, refunds) instead of hard-coding guesses;
- the shop's database while the stack runs: one order or customer row (same shape as
  ``db_order``/``db_customer`` of test_change_flows.py), a snapshot of everything a customer
  owns, handoff tickets;
- a ``Talk``: one shopper's conversation over the REST channel that answers the assistant's
  questions from a script, stops at the read-back, checks it, checks the database is still
  untouched and only then says "yes".

Replies are checked for key facts only (order ids, item names, amounts, a question mark), never
for exact wording: the wording is still being changed.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from tests.conversations.harness import Conversation, Stack

ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = ROOT / "shop" / "data" / "db.json"
JSON_COLUMNS = {"address", "items", "fulfillments", "payment_history", "return_items",
                "exchange_items", "exchange_new_items", "options"}
CANCEL_REASONS = ("no longer needed", "ordered by mistake")
RETURN_KINDS = ("damaged", "wrong size", "not as described", "changed mind", "wrong item",
                "arrived late", "no longer needed")


# --------------------------------------------------------------------------- store data
@cache
def seed() -> dict[str, Any]:
    return json.loads(SEED_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Customer:
    """A customer of the seed data, with the two facts that identify them."""

    user_id: str
    email: str
    first: str
    last: str
    zip: str
    orders: tuple[str, ...]
    methods: Mapping[str, Mapping[str, Any]]
    address: Mapping[str, str]

    def method(self, source: str, brand: str | None = None) -> str:
        """The id of the customer's (only) method of this kind; fails if it is not unique."""
        found = [m["id"] for m in self.methods.values() if m["source"] == source
                 and (brand is None or m.get("brand") == brand)]
        assert len(found) == 1, f"{self.user_id}: {len(found)} methods {source} {brand or ''}"
        return found[0]

    @property
    def last_order(self) -> str:
        """"my last / latest / most recent order": the last of the customer's order list."""
        return self.orders[-1]


def customer(user_id: str) -> Customer:
    user = seed()["users"][user_id]
    return Customer(
        user_id=user_id, email=user["email"], first=user["name"]["first_name"],
        last=user["name"]["last_name"], zip=user["address"]["zip"],
        orders=tuple(user["orders"]), methods=user["payment_methods"],
        address=user["address"],
    )


def seed_order(order_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(seed()["orders"][order_id]))  # a deep copy


def owner(order_id: str) -> str:
    return seed()["orders"][order_id]["user_id"]


def items_named(order_id: str, name: str) -> list[dict[str, Any]]:
    """The order's line items of product ``name`` (one per unit)."""
    found = [i for i in seed_order(order_id)["items"] if i["name"] == name]
    assert found, f"{order_id} has no {name}"
    return found


def item(order_id: str, name: str) -> dict[str, Any]:
    """The one line item of product ``name`` in the order."""
    found = items_named(order_id, name)
    assert len(found) == 1, f"{order_id} has {len(found)} x {name}"
    return found[0]


def item_ids(order_id: str, *names: str, but: Sequence[str] = ()) -> list[str]:
    """Item ids (one per unit, order kept) of the named products, or of every product except
    ``but`` when no name is given."""
    items = seed_order(order_id)["items"]
    if names:
        return [i["item_id"] for i in items if i["name"] in names]
    return [i["item_id"] for i in items if i["name"] not in but]


def names_in(order_id: str) -> list[str]:
    return list(dict.fromkeys(i["name"] for i in seed_order(order_id)["items"]))


def product(product_id: str) -> dict[str, Any]:
    return seed()["products"][product_id]


def variants(product_id: str, available: bool | None = True, **fixed: str) -> list[dict]:
    """Variants of a product whose options have the ``fixed`` values (keys with spaces:
    pass a dict with ``**``)."""
    return [v for v in product(product_id)["variants"].values()
            if (available is None or v["available"] == available)
            and all(v["options"].get(k) == val for k, val in fixed.items())]


def variant_like(line_item: Mapping[str, Any], **changes: str) -> dict[str, Any]:
    """The variant of the item's product with its options, except ``changes``; it must exist
    and be available (else the scenario itself is wrong)."""
    wanted = {**line_item["options"], **changes}
    found = [v for v in product(line_item["product_id"])["variants"].values()
             if v["options"] == wanted]
    assert len(found) == 1, f"no variant {wanted} of {line_item['name']}"
    assert found[0]["available"], f"variant {wanted} of {line_item['name']} is sold out"
    return found[0]


def other_variants(line_item: Mapping[str, Any], **fixed: str) -> list[dict[str, Any]]:
    """The *available* variants of the item's product other than the item itself, with the
    ``fixed`` option values: what the shopper may choose from."""
    return [v for v in variants(line_item["product_id"], **fixed)
            if v["item_id"] != line_item["item_id"]]


def only(found: Sequence[dict[str, Any]], what: str = "variant") -> dict[str, Any]:
    """The one element of ``found`` (the scenario is wrong if there are more or none)."""
    assert len(found) == 1, f"{len(found)} x {what}: {found}"
    return found[0]


def cents(amount: float) -> int:
    return int(round(float(amount) * 100))


def dollars(amount_cents: int) -> float:
    return round(amount_cents / 100, 2)


def money(amount: float) -> str:
    """How the assistant writes an amount: ``$1,234.50``."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def total(order_id: str) -> float:
    return dollars(sum(cents(i["price"]) for i in seed_order(order_id)["items"]))


def cancel_refunds(order_id: str) -> list[dict[str, Any]]:
    """The refund entries a cancel appends: what each method paid, net, in order of first use."""
    net: dict[str, int] = {}
    for entry in seed_order(order_id)["payment_history"]:
        sign = 1 if entry["transaction_type"] == "payment" else -1
        net[entry["payment_method_id"]] = (net.get(entry["payment_method_id"], 0)
                                           + sign * cents(entry["amount"]))
    return [{"transaction_type": "refund", "amount": dollars(c), "payment_method_id": m}
            for m, c in net.items() if c > 0]


def original_method(order_id: str) -> str:
    return next(e["payment_method_id"] for e in seed_order(order_id)["payment_history"]
                if e["transaction_type"] == "payment")


def swapped_items(order_id: str, swaps: Mapping[int, Mapping[str, Any]]) -> list[dict]:
    """The order's items after an item modification: position -> new variant."""
    items = seed_order(order_id)["items"]
    for pos, new in swaps.items():
        old = items[pos]
        items[pos] = {"name": old["name"], "product_id": old["product_id"],
                      "item_id": new["item_id"], "price": new["price"],
                      "options": new["options"]}
    return items


def positions(order_id: str, name: str) -> list[int]:
    return [p for p, i in enumerate(seed_order(order_id)["items"]) if i["name"] == name]


def difference_cents(olds: Iterable[Mapping[str, Any]], news: Iterable[Mapping[str, Any]]) -> int:
    return sum(cents(n["price"]) - cents(o["price"]) for o, n in zip(olds, news, strict=True))


# --------------------------------------------------------------------------- shop database
def _row(data: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(data)
    for column in JSON_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row


def _query(stack: Stack, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{stack.shop_db}?mode=ro", uri=True, timeout=30) as db:
        db.row_factory = sqlite3.Row
        return [_row(r) for r in db.execute(sql, params).fetchall()]


def db_order(stack: Stack, order_id: str) -> dict[str, Any]:
    """The order's row, read straight from the shop's database."""
    rows = _query(stack, "SELECT * FROM orders WHERE order_id = ?", (order_id,))
    assert rows, f"no order {order_id} in the shop's database"
    return rows[0]


def db_customer(stack: Stack, user_id: str) -> dict[str, Any]:
    return _query(stack, "SELECT * FROM customers WHERE user_id = ?", (user_id,))[0]


def db_methods(stack: Stack, user_id: str) -> dict[str, dict[str, Any]]:
    rows = _query(stack, "SELECT * FROM payment_methods WHERE user_id = ?", (user_id,))
    return {r["id"]: r for r in rows}


def db_handoffs(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    return _query(stack, "SELECT * FROM handoffs WHERE conversation_id = ?", (conversation_id,))


def db_order_ids(stack: Stack, user_id: str) -> list[str]:
    rows = _query(stack, "SELECT order_id FROM orders WHERE user_id = ?", (user_id,))
    return sorted(r["order_id"] for r in rows)


@dataclass
class Snapshot:
    """Everything a customer owns in the shop's database at one moment."""

    stack: Stack
    user_id: str
    orders: dict[str, dict[str, Any]]
    customer: dict[str, Any]
    methods: dict[str, dict[str, Any]]
    talk: Talk | None = None  # whose transcript explains a failure

    @classmethod
    def take(cls, stack: Stack, user_id: str, talk: Talk | None = None) -> Snapshot:
        order_ids = db_order_ids(stack, user_id)
        return cls(stack, user_id, {o: db_order(stack, o) for o in order_ids},
                   db_customer(stack, user_id), db_methods(stack, user_id), talk)

    def unchanged(self, *, but: Iterable[str] = (), customer: bool = False,
                  methods: bool = False, why: str = "") -> None:
        """Nothing of the customer changed, except the orders in ``but`` (and the customer
        row / the payment methods' balances when allowed)."""
        now = Snapshot.take(self.stack, self.user_id)
        skip = set(but)
        why = f"{why}{self.talk.log if self.talk else ''}"
        assert sorted(now.orders) == sorted(self.orders), f"orders added or removed {why}"
        for order_id, before in self.orders.items():
            if order_id not in skip:
                changed = _changes(before, now.orders[order_id])
                assert not changed, f"order {order_id} changed {why}\nnow: {changed}"
        if not customer:
            assert now.customer == self.customer, f"customer {self.user_id} changed {why}"
        if not methods:
            assert now.methods == self.methods, f"payment methods changed {why}"


def _changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in now.items() if before.get(k) != v and k != "updated_at"}


def fresh(stack: Stack, *order_ids: str) -> None:
    """The scenario needs these orders as in the seed data (no earlier test touched them)."""
    for order_id in order_ids:
        row, data = db_order(stack, order_id), seed_order(order_id)
        assert (row["status"], row["items"], row["payment_history"]) == (
            data["status"], data["items"], data["payment_history"]
        ), f"{order_id} is not as seeded: another test changed it (pick another order)"


def fresh_customer(stack: Stack, user_id: str) -> None:
    address = customer(user_id).address
    row = db_customer(stack, user_id)
    assert {k: row[k] for k in address} == dict(address), f"{user_id} is not as seeded"


# --------------------------------------------------------------------------- conversations
READBACK_RE = re.compile(
    r"please check|shall i go ahead|go ahead\?|shall i proceed|should i proceed|"
    r"do you want me to (go ahead|proceed|do (it|that|this))|is (that|this) (right|correct)\?|"
    r"ok to proceed|can i go ahead|confirm (this|the change|that)",
    re.IGNORECASE,
)
QUESTIONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in (
        ("identity", r"e-?mail address on your account|your e-?mail|first name|last name|"
                     r"identify you|zip code of your|your zip|what's the zip"),
        ("change", r"which change|what would you like to change|what (kind of )?change|"
                   r"what would you like to do with"),
        ("order", r"which (pending )?order|which address would you like|order number|"
                  r"which one of your orders|what order"),
        ("items", r"which items?\b|which one do you mean|which of (the|these|them)|"
                  r"which .* (would you like|do you want) to (return|exchange|change)"),
        ("reason", r"\bwhy\b|\breason\b"),
        ("variant", r"instead of|several options|which one would you like|which (size|colou?r|"
                    r"version|option|variant)|what would you like instead"),
        ("payment", r"payment method|refund go|which card|pay (for )?(it|the difference)|"
                    r"refund(ed)? to|gift card|paypal"),
        ("address", r"address"),
    )
)
CLOSER_RE = re.compile(r"anything else|what else|what can i do for you|what would you like to do"
                       r"\?|how can i help", re.IGNORECASE)
CATALOG_RE = re.compile(r"versions in stock|matching versions|out of stock right now|"
                        r"options are:|price range", re.IGNORECASE)
WHOLE_ORDER_RE = re.compile(
    r"whole order|entire order|all (of )?(the |its |\d+ )?items|every item|everything in|"
    r"the whole thing|all of it|complete order|full order|whole of",
    re.IGNORECASE,
)
HUMAN_RE = re.compile(r"human|agent|person|someone|colleague|team", re.IGNORECASE)


@dataclass
class Reply:
    """What the shopper sees after one message: the texts and the buttons."""

    messages: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "\n".join(m.get("text", "") for m in self.messages if m.get("text"))

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for m in self.messages for b in m.get("buttons") or []]

    @property
    def asks(self) -> bool:
        return "?" in self.text

    @property
    def is_readback(self) -> bool:
        return bool(READBACK_RE.search(self.text))

    def question(self) -> str | None:
        """What the assistant asks for (a key of QUESTIONS), None if it asks nothing (no
        question mark, no buttons) or nothing known. The question sentences decide first."""
        sentences = [s for s in re.findall(r"[^.!?\n]*\?", self.text) if not CLOSER_RE.search(s)]
        asked = " ".join(sentences)
        if not asked and not self.buttons:
            return None  # a statement, or only "anything else I can help you with?"
        for text in (asked, self.text):
            for kind, pattern in QUESTIONS:
                if text and pattern.search(text):
                    return kind
        return None


@dataclass
class Talk:
    """One shopper's whole conversation; every reply and the transcript for failure messages."""

    stack: Stack
    who: Customer | None = None
    chat: Conversation = field(init=False)
    replies: list[Reply] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.chat = self.stack.conversation()

    @property
    def sender(self) -> str:
        return self.chat.sender

    @property
    def log(self) -> str:
        lines = []
        for said, answer in self.chat.transcript:
            lines.append(f"  shopper: {said}")
            lines.extend(f"  bot:     {t}" for t in answer)
        return "\nconversation:\n" + "\n".join(lines)

    def snapshot(self) -> Snapshot:
        """Everything the shopper owns in the shop's database now."""
        assert self.who is not None
        return Snapshot.take(self.stack, self.who.user_id, self)

    def say(self, message: str) -> Reply:
        reply = Reply(self.chat.say(message))
        self.replies.append(reply)
        assert reply.messages, f"no answer to {message!r}{self.log}"
        return reply

    # ------------------------------------------------------------------ identification
    def two_facts(self, style: str = "email") -> str:
        who = self.who
        assert who is not None
        return {
            "email": f"{who.email}, zip {who.zip}",
            "email_words": f"my email is {who.email} and my zip code is {who.zip}",
            "name": f"{who.first} {who.last}, zip code {who.zip}",
            "name_lower": f"{who.first.lower()} {who.last.lower()} {who.zip}",
        }[style]

    def identify(self, style: str = "email", opener: str | None = None) -> Reply:
        """Identify with two facts (in the opener, e.g. "hi, I'm ..."), check the greeting."""
        message = f"{opener} {self.two_facts(style)}" if opener else self.two_facts(style)
        reply = self.say(message)
        reply = self.finish_identification(reply, style)
        return reply

    def finish_identification(self, reply: Reply, style: str = "email") -> Reply:
        """Answer what is still asked (the zip after an email, a last name...) and check the
        assistant found the account."""
        who = self.who
        assert who is not None
        for _ in range(3):
            if who.first.lower() in reply.lower and reply.question() != "identity":
                break
            ask = reply.lower
            if "zip" in ask and "email" not in ask:
                reply = self.say(who.zip)
            elif "last name" in ask and "first" not in ask:
                reply = self.say(who.last)
            elif reply.question() == "identity":
                reply = self.say(self.two_facts(style))
            else:
                break
        assert who.first.lower() in reply.lower, f"{who.first} was not identified{self.log}"
        return reply

    # ------------------------------------------------------------------ the change flows
    def until_readback(self, reply: Reply, answers: Mapping[str, str | Sequence[str]] | None
                       = None, limit: int = 6) -> Reply:
        """Answer the assistant's questions from ``answers`` (question kind -> the shopper's
        answer, or several for repeated questions) until it reads the change back.

        A question the script has no answer for fails the test: the shopper had already said
        it (or it is not what this conversation is about)."""
        left = {k: [v] if isinstance(v, str) else list(v) for k, v in (answers or {}).items()}
        for _ in range(limit):
            if reply.is_readback:
                return reply
            kind = reply.question()
            assert kind is not None, (
                f"no read-back: the assistant asked nothing the shopper could answer{self.log}")
            assert left.get(kind), (
                f"no read-back: the assistant asked for {kind}, which the shopper had already "
                f"said or which doesn't belong to this change{self.log}")
            reply = self.say(left[kind].pop(0))
        raise AssertionError(f"no read-back after {limit} answers{self.log}")

    def check_readback(self, reply: Reply, has: Iterable[str] = (), lacks: Iterable[str] = (),
                       whole_order: bool = False) -> None:
        """The read-back says what will be done; a wrong one must never get a "yes"."""
        assert reply.is_readback, f"expected a read-back{self.log}"
        for fact in has:
            assert fact.lower() in reply.lower, f"read-back lacks {fact!r}{self.log}"
        for fact in lacks:
            assert fact.lower() not in reply.lower, f"read-back has {fact!r}{self.log}"
        if whole_order:
            assert WHOLE_ORDER_RE.search(reply.text), (
                f"the read-back doesn't say the whole order is cancelled{self.log}")

    def yes(self, before: Snapshot, message: str = "yes") -> Reply:
        """Say yes to the read-back — after checking nothing was written before it."""
        before.unchanged(why="before the shopper said yes")
        return self.say(message)

    def takes_back(self, message: str) -> Reply:
        """The shopper changes their mind: the assistant drops the change (no read-back again),
        and a lone "yes" afterwards changes nothing."""
        reply = self.say(message)
        assert not reply.is_readback, f"read the change back again after {message!r}{self.log}"
        self.say("yes")
        return reply

    def not_catalog(self, reply: Reply) -> None:
        assert not CATALOG_RE.search(reply.text), f"answered like the catalog{self.log}"

    def offers_human(self, reply: Reply) -> None:
        human = [b for b in reply.buttons if "request_human" in b.get("payload", "")
                 or HUMAN_RE.search(b.get("title", ""))]
        assert human, f"no button for a human agent{self.log}"


def assert_cancelled(stack: Stack, order_id: str, reason: str, talk: Talk | None = None) -> None:
    row = db_order(stack, order_id)
    log = talk.log if talk else ""
    assert row["status"] == "cancelled", f"{order_id} is {row['status']}{log}"
    assert row["cancel_reason"] == reason, f"{order_id} reason {row['cancel_reason']!r}{log}"
    expected = seed_order(order_id)["payment_history"] + cancel_refunds(order_id)
    assert row["payment_history"] == expected, f"{order_id} refunds {row['payment_history']}"
    assert row["items"] == seed_order(order_id)["items"]


def assert_returned(stack: Stack, order_id: str, returned: Sequence[str], method_id: str,
                    reason: str | None = None, reason_has: Sequence[str] = (),
                    talk: Talk | None = None) -> dict[str, Any]:
    row = db_order(stack, order_id)
    log = talk.log if talk else ""
    assert row["status"] == "return requested", f"{order_id} is {row['status']}{log}"
    assert row["return_items"] == sorted(returned), f"returned {row['return_items']}{log}"
    assert row["return_payment_method_id"] == method_id, row["return_payment_method_id"]
    if reason is not None:
        assert row["return_reason"] == reason, f"reason {row['return_reason']!r}{log}"
    for words in reason_has:
        assert words.lower() in (row["return_reason"] or "").lower(), (
            f"reason {row['return_reason']!r} lacks {words!r}{log}")
    assert row["items"] == seed_order(order_id)["items"]
    assert row["payment_history"] == seed_order(order_id)["payment_history"]
    return row


def assert_exchanged(stack: Stack, order_id: str, olds: Sequence[Mapping[str, Any]],
                     news: Sequence[Mapping[str, Any]], method_id: str,
                     talk: Talk | None = None) -> None:
    row = db_order(stack, order_id)
    log = talk.log if talk else ""
    assert row["status"] == "exchange requested", f"{order_id} is {row['status']}{log}"
    assert row["exchange_items"] == sorted(o["item_id"] for o in olds), row["exchange_items"]
    assert row["exchange_new_items"] == sorted(n["item_id"] for n in news), (
        f"new items {row['exchange_new_items']}{log}")
    assert row["exchange_payment_method_id"] == method_id, row["exchange_payment_method_id"]
    assert row["exchange_price_difference_cents"] == difference_cents(olds, news)
    assert row["items"] == seed_order(order_id)["items"]  # no new order, items as delivered


def assert_modified(stack: Stack, order_id: str, swaps: Mapping[int, Mapping[str, Any]],
                    method_id: str, talk: Talk | None = None) -> None:
    row = db_order(stack, order_id)
    log = talk.log if talk else ""
    assert row["status"] == "pending (item modified)", f"{order_id} is {row['status']}{log}"
    assert row["items"] == swapped_items(order_id, swaps), f"items {row['items']}{log}"
    seeded = seed_order(order_id)["items"]
    diff = difference_cents([seeded[p] for p in swaps], list(swaps.values()))
    entry = {"transaction_type": "payment" if diff > 0 else "refund",
             "amount": dollars(abs(diff)), "payment_method_id": method_id}
    assert row["payment_history"] == seed_order(order_id)["payment_history"] + [entry], (
        f"payment history {row['payment_history']}{log}")


def assert_address(actual: Mapping[str, Any], address1: str, city: str, state: str, zip_: str,
                   address2: str | None = None) -> None:
    assert actual["address1"].lower() == address1.lower(), actual
    assert actual["city"].lower() == city.lower(), actual
    assert actual["state"].upper() == state.upper(), actual
    assert actual["zip"] == zip_, actual
    if address2 is not None:
        assert (actual.get("address2") or "").lower() == address2.lower(), actual


def assert_paid_with(stack: Stack, order_id: str, new_method: str) -> None:
    row = db_order(stack, order_id)
    history = seed_order(order_id)["payment_history"]
    assert len(history) == 1
    old, amount = history[0]["payment_method_id"], history[0]["amount"]
    assert row["payment_history"] == history + [
        {"transaction_type": "payment", "amount": amount, "payment_method_id": new_method},
        {"transaction_type": "refund", "amount": amount, "payment_method_id": old},
    ], row["payment_history"]
    assert row["status"] == "pending"
