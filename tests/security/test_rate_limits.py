"""Per-client rate limits of the REST channel, attacked from outside (issue 22, item 1).

A stack with the limits on (small ones, so that a burst of a few messages crosses them) and
``TRUSTED_PROXY_HOPS=1``, so that each test can be a client of its own address through
``X-Forwarded-For``; and a stack with the same small limits but ``RATE_LIMITS=off``, as the load
tests run. What a refused message left behind is read in the tracker store (table ``events``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests

from addons.rate_limits import rate_limited_text
from tests.conversations.harness import Stack, remove_stack, start_stack

SMALL_LIMITS = {
    "RATE_LIMIT_TURNS_PER_CONVERSATION": "4/minute",
    "RATE_LIMIT_TURNS_PER_CLIENT": "6/minute",
    "RATE_LIMIT_NEW_CONVERSATIONS_PER_CLIENT": "3/minute",
}


@pytest.fixture(scope="module")
def limited() -> Iterator[Stack]:
    stack = start_stack(overrides={"rasa": {"RATE_LIMITS": "on", "TRUSTED_PROXY_HOPS": "1",
                                            **SMALL_LIMITS}})
    yield stack
    remove_stack(stack)


@pytest.fixture(scope="module")
def unlimited() -> Iterator[Stack]:
    stack = start_stack(overrides={"rasa": {"RATE_LIMITS": "off", **SMALL_LIMITS}})
    yield stack
    remove_stack(stack)


def sender() -> str:
    return f"rate-{uuid.uuid4().hex[:10]}"


def post(stack: Stack, sender_id: str, message: str, client: str | None = None,
         metadata: dict | None = None) -> requests.Response:
    body: dict = {"sender": sender_id, "message": message}
    if metadata is not None:
        body["metadata"] = metadata
    headers = {"X-Forwarded-For": client} if client else {}
    return requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json=body, headers=headers,
                         timeout=60)


def stored_user_events(stack: Stack, sender_id: str) -> list[dict]:
    rows = stack.tracker_query(
        "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
        (sender_id,))
    return [json.loads(row["data"]) for row in rows]


def assert_polite_429(response: requests.Response) -> int:
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    assert response.json() == {"error": "rate_limited", "message": rate_limited_text(retry_after)}
    message = response.json()["message"]
    assert message.startswith("You're sending messages faster than I can answer. Please wait ")
    assert str(retry_after) in message and message.endswith("try again.")
    return retry_after


def test_a_conversation_over_its_turn_limit_gets_429_and_its_extra_messages_are_not_stored(
    limited: Stack,
) -> None:
    client, chat = "203.0.113.10", sender()
    answered = [post(limited, chat, f"hello {i}", client) for i in range(4)]
    assert [r.status_code for r in answered] == [200] * 4 and all(r.json() for r in answered)
    refused = [post(limited, chat, f"hello again {i}", client) for i in range(3)]
    for response in refused:
        assert_polite_429(response)
    texts = [event["text"] for event in stored_user_events(limited, chat)]
    assert texts == [f"hello {i}" for i in range(4)]  # none of the refused ones


def test_a_client_over_its_turn_limit_is_refused_in_all_its_conversations(
    limited: Stack,
) -> None:
    client, chats = "203.0.113.11", [sender() for _ in range(3)]
    for chat in chats:  # 6 turns in 3 conversations: at the client's limit, none over its own
        assert [post(limited, chat, f"hi {n}", client).status_code for n in (1, 2)] == [200, 200]
    assert_polite_429(post(limited, chats[0], "one more", client))
    assert_polite_429(post(limited, sender(), "and in a new one", client))
    assert [e["text"] for e in stored_user_events(limited, chats[0])] == ["hi 1", "hi 2"]
    # another address has a budget of its own
    assert post(limited, sender(), "hi", "203.0.113.12").status_code == 200


def test_a_client_opening_many_new_conversations_is_limited_and_another_address_is_not(
    limited: Stack,
) -> None:
    client, other = "203.0.113.13", "198.51.100.13"
    opened = [sender() for _ in range(3)]
    assert [post(limited, chat, "hi", client).status_code for chat in opened] == [200] * 3
    extra = [sender() for _ in range(3)]
    for chat in extra:
        assert_polite_429(post(limited, chat, "hi", client))
        # nothing at all was stored for it: no session start, no message
        assert limited.tracker_query("SELECT 1 FROM events WHERE sender_id = ?", (chat,)) == []
    # its conversations already open go on
    assert post(limited, opened[0], "where is my order?", client).status_code == 200
    # and another client address starts conversations as usual (one of the refused ids too)
    assert post(limited, sender(), "hi", other).status_code == 200
    assert post(limited, extra[0], "hi", other).status_code == 200


def test_the_stored_client_address_is_the_servers_never_the_clients(limited: Stack,
                                                                    unlimited: Stack) -> None:
    forged = {"client_address": "10.9.8.7", "page": "/help"}
    # behind one trusted proxy: the entry that proxy appended (the client wrote the first one)
    chat = sender()
    response = post(limited, chat, "hi", "6.6.6.6, 203.0.113.20", metadata=forged)
    assert response.status_code == 200
    (event,) = stored_user_events(limited, chat)
    assert event["metadata"]["client_address"] == "203.0.113.20"
    assert event["metadata"]["page"] == "/help"  # the rest of the client's metadata is kept
    # no trusted proxy (the default): the TCP peer, whatever the headers say
    chat = sender()
    assert post(unlimited, chat, "hi", "203.0.113.21", metadata=forged).status_code == 200
    (event,) = stored_user_events(unlimited, chat)
    assert event["metadata"]["client_address"] == "127.0.0.1"


def test_the_metadata_cap_still_counts_what_the_client_sent(limited: Stack) -> None:
    chat = sender()
    too_big = post(limited, chat, "hi", "203.0.113.22", metadata={"blob": "x" * 5000})
    assert too_big.status_code == 413 and too_big.json()["error"] == "metadata_too_large"
    assert limited.tracker_query("SELECT 1 FROM events WHERE sender_id = ?", (chat,)) == []


def test_rate_limits_off_lets_the_same_bursts_through(unlimited: Stack) -> None:
    chat = sender()
    burst = [post(unlimited, chat, f"hello {i}", "203.0.113.30") for i in range(8)]
    assert [r.status_code for r in burst] == [200] * 8
    assert len(stored_user_events(unlimited, chat)) == 8
    opened = [sender() for _ in range(6)]
    assert [post(unlimited, c, "hi", "203.0.113.30").status_code for c in opened] == [200] * 6
    assert all(len(stored_user_events(unlimited, c)) == 1 for c in opened)


def test_the_web_pages_socket_has_the_same_limits(limited: Stack) -> None:
    """Fresh socket sessions cost nothing, so the socket.io channel counts like REST: over the
    per-session limit the page gets the polite sentence, and the message is not stored."""
    from tests.security.test_socket_sessions import ChatSocket  # the page's protocol

    page = ChatSocket(limited, headers={"X-Forwarded-For": "203.0.113.40"})
    try:
        session = page.request_session()
        for i in range(4):
            assert page.say(f"hello {i}"), i
        refused = page.say("hello once more")
        assert any("faster than I can answer" in (r.get("text") or "") for r in refused), refused
        texts = [e["text"] for e in stored_user_events(limited, session)]
        assert texts == [f"hello {i}" for i in range(4)]
    finally:
        page.close()
