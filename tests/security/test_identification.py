"""Identification attacked from outside: one fact is not enough, guessing is counted where every
conversation and replica sees it, a reply never tells whether an email has an account, a
signed-in shopper's token is the store's signature or nothing, and an identification does not
outlive the session.

Its own stack (real shop, action server, Rasa): the shop's lock is exercised here with small
limits, and each test speaks from its own client address (``X-Forwarded-For`` behind one trusted
proxy hop), so the locks it provokes never touch the other security tests.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import time
from collections.abc import Iterator

import jwt
import pytest

from tests.conversations.harness import Conversation, Stack, remove_stack, start_stack

STORE_SECRET = "the-store-site-and-the-assistant-share-this-secret"
ACCOUNT_LIMIT, CLIENT_LIMIT = 4, 6
_addresses = (f"198.51.100.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack(overrides={
        "shop": {"SHOP_ID_MAX_FAILURES_ACCOUNT": str(ACCOUNT_LIMIT),
                 "SHOP_ID_MAX_FAILURES_CLIENT": str(CLIENT_LIMIT),
                 "SHOP_ID_WINDOW_SECONDS": "900"},
        "rasa": {"TRUSTED_PROXY_HOPS": "1"},
        "actions": {"CUSTOMER_TOKEN_SECRET": STORE_SECRET},
    })
    yield running
    remove_stack(running)


def customer(stack: Stack, offset: int) -> dict:
    """A seed customer of the stack's own shop database (a different one per test)."""
    row = stack.shop_query(
        "SELECT user_id, email, first_name, last_name, zip FROM customers ORDER BY user_id "
        "LIMIT 1 OFFSET ?", (offset,))[0]
    return dict(row)


def chat(stack: Stack, address: str | None = None, **kwargs) -> Conversation:
    """A conversation from its own client address (unless given)."""
    convo = stack.conversation()
    convo.headers = {"X-Forwarded-For": address or next(_addresses)}
    for key, value in kwargs.items():
        setattr(convo, key, value)
    return convo


def wrong_zip(zip_code: str) -> str:
    return f"{(int(zip_code) + 1) % 100000:05d}"


def normalised(text: str) -> str:
    """A reply without the parts that legitimately differ (names, numbers)."""
    return re.sub(r"\d+", "N", text)


def identified(convo: Conversation) -> bool:
    return convo.slots().get("identified") is True


# ------------------------------------------------------------------ two facts, no leak
def test_an_email_alone_identifies_no_one(stack: Stack) -> None:
    who = customer(stack, 3)
    convo = chat(stack)
    convo.text("show me my orders")
    reply = convo.text(who["email"])
    assert not identified(convo)
    assert "zip" in reply.lower()
    assert who["first_name"] not in reply


def test_replies_never_reveal_whether_an_email_has_an_account(stack: Stack) -> None:
    who = customer(stack, 4)
    pairs = []
    for email in (who["email"], "nobody.here8841@example.com"):
        convo = chat(stack)
        convo.text("where is my order")
        asked_zip = convo.text(email)
        failed = convo.text(wrong_zip(who["zip"]))
        pairs.append((normalised(asked_zip), normalised(failed)))
        assert not identified(convo)
    assert pairs[0] == pairs[1]


# ------------------------------------------------------------------ the shop's lock
def test_failed_attempts_count_per_account_across_restarts_and_new_conversations(
    stack: Stack,
) -> None:
    """An attacker guesses zips for one email with /back and /restart in between, then from
    new conversations and addresses: the account pauses, and the right zip is refused too."""
    who = customer(stack, 5)
    guess = wrong_zip(who["zip"])
    first = chat(stack)
    first.text("list my orders")
    first.text(f"{who['email']} {guess}")
    first.say("/back")
    first.say("/restart")
    first.text("list my orders")
    first.text(f"{who['email']} {guess}")
    for _ in range(ACCOUNT_LIMIT - 2):
        convo = chat(stack)  # a new sender id and a new client address each time
        convo.text("list my orders")
        convo.text(f"{who['email']}, zip {guess}")
    owner = chat(stack)
    owner.text("list my orders")
    reply = owner.text(f"{who['email']} {who['zip']}")
    assert not identified(owner), reply
    assert "paused" in reply.lower() and who["first_name"] not in reply


def test_failed_attempts_count_per_client_across_accounts(stack: Stack) -> None:
    """One client guessing different accounts is paused, even for a real customer's details;
    another client is not."""
    address = next(_addresses)
    for n in range(CLIENT_LIMIT):
        convo = chat(stack, address)
        convo.text("list my orders")
        convo.text(f"guess{n}.someone{n}@example.com 1000{n}")
    who = customer(stack, 6)
    same_client = chat(stack, address)
    same_client.text("list my orders")
    reply = same_client.text(f"{who['email']} {who['zip']}")
    assert not identified(same_client) and "paused" in reply.lower()
    other_client = chat(stack)
    other_client.text("list my orders")
    assert who["first_name"] in other_client.text(f"{who['email']} {who['zip']}")
    assert identified(other_client)


def test_the_client_address_is_the_channels_not_the_clients(stack: Stack) -> None:
    """A client cannot dodge the per-client count by claiming another address in metadata."""
    convo = chat(stack, metadata={"client_address": "10.9.9.9"})
    convo.text("hello")
    rows = stack.tracker_query(
        "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", (convo.sender,))
    metadata = json.loads(rows[-1]["data"]).get("metadata") or {}
    assert metadata.get("client_address") == convo.headers["X-Forwarded-For"]


# ------------------------------------------------------------------ signed-in shoppers
def store_token(user_id: str, secret: str = STORE_SECRET, **claims) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user_id, "aud": "shop-assistant", "iat": now, "exp": now + 600,
                       **claims}, secret, algorithm="HS256")


def test_a_shopper_signed_in_on_the_store_site_is_identified_by_its_token(
    stack: Stack,
) -> None:
    who = customer(stack, 7)
    convo = chat(stack, metadata={"customer_token": store_token(who["user_id"])})
    reply = convo.text("list my orders")
    assert identified(convo) and convo.slots()["customer_id"] == who["user_id"], reply
    assert who["first_name"] in reply


@pytest.mark.parametrize("kind", ["forged", "expired", "unsigned", "other-audience"])
def test_a_forged_or_stale_token_identifies_no_one(stack: Stack, kind: str) -> None:
    who = customer(stack, 8)
    token = {
        "forged": store_token(who["user_id"], secret="an-attacker-guessing-the-secret-here"),
        "expired": store_token(who["user_id"], exp=int(time.time()) - 120),
        "unsigned": jwt.encode({"sub": who["user_id"], "aud": "shop-assistant",
                                "iat": int(time.time()), "exp": int(time.time()) + 600},
                               None, algorithm="none"),
        "other-audience": store_token(who["user_id"], aud="newsletter"),
    }[kind]
    convo = chat(stack, metadata={"customer_token": token})
    reply = convo.text("list my orders")
    assert not identified(convo) and who["first_name"] not in reply
    assert "email" in reply.lower()


# ------------------------------------------------------------------ expiry
def test_identification_expires_after_an_hour_of_silence(stack: Stack) -> None:
    who = customer(stack, 9)
    convo = chat(stack)
    convo.text("list my orders")
    assert who["first_name"] in convo.text(f"{who['email']} {who['zip']}")
    assert identified(convo)
    # the shopper walks away: every event of the conversation moves 61 minutes into the past
    shift = 61 * 60
    con = sqlite3.connect(stack.tracker_db, timeout=30)
    with con:
        con.execute(
            "UPDATE events SET timestamp = timestamp - ?, "
            "data = json_set(data, '$.timestamp', json_extract(data, '$.timestamp') - ?) "
            "WHERE sender_id = ?", (shift, shift, convo.sender))
    con.close()
    reply = convo.text("list my orders")
    assert not identified(convo), reply
    assert "email" in reply.lower() and "#W" not in reply
