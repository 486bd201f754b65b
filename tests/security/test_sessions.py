"""REST requests must name their own conversation (issue 22, items 1 and 5).

Without a ``sender`` Rasa serves its fixed ``default`` conversation to everyone who omits it:
an identified shopper's orders were shown to another client. And ``metadata`` is stored with
every message and re-sent to the action server on every turn, so it is bounded.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.conversations.harness import Stack

MEI_EMAIL = "mei.martin4637@example.com 32124"  # two facts: email + zip


def post(stack: Stack, body: dict) -> requests.Response:
    return requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json=body, timeout=60)


@pytest.mark.parametrize("body", [
    {"message": "show my orders"},
    {"sender": "", "message": "show my orders"},
    {"sender": None, "message": "show my orders"},
    {"sender": 12, "message": "show my orders"},
    {"sender": "x" * 129, "message": "show my orders"},
    {"sender": "two words", "message": "show my orders"},
    {"sender": "default\n", "message": "show my orders"},
], ids=["missing", "empty", "null", "number", "too-long", "space", "newline"])
def test_a_request_without_its_own_sender_is_refused_with_a_reason(stack: Stack,
                                                                   body: dict) -> None:
    response = post(stack, body)
    assert response.status_code == 400
    assert response.json()["error"] == "sender_required"
    assert "sender" in response.json()["message"]


def test_two_clients_without_a_sender_never_share_a_conversation(stack: Stack) -> None:
    first = post(stack, {"message": "hi, where is my order?"})
    identified = post(stack, {"message": MEI_EMAIL})
    second = post(stack, {"message": "show my orders"})
    assert {first.status_code, identified.status_code, second.status_code} == {400}
    assert "#W" not in second.text
    # and nothing was stored under Rasa's shared "default" conversation
    assert stack.tracker_query("SELECT 1 FROM events WHERE sender_id = 'default'") == []


def test_oversized_metadata_is_refused_and_not_stored(stack: Stack) -> None:
    sender = "metadata-attack-1"
    response = post(stack, {"sender": sender, "message": "hello",
                            "metadata": {"blob": "x" * 512_000}})
    assert response.status_code == 413 and response.json()["error"] == "metadata_too_large"
    assert stack.tracker_query("SELECT 1 FROM events WHERE sender_id = ?", (sender,)) == []
    small = post(stack, {"sender": sender, "message": "hello", "metadata": {"page": "/help"}})
    assert small.status_code == 200 and small.json()


def test_the_web_pages_conversations_cannot_be_continued_over_rest(stack: Stack) -> None:
    """A web session id that leaked (a log, a shared screen) is no way in from outside the page:
    the REST channel refuses every sender of that shape, and stores nothing."""
    leaked = "A" * 32 + "." + "b" * 43
    response = post(stack, {"sender": leaked, "message": "show my orders"})
    assert response.status_code == 403 and response.json()["error"] == "web_session"
    assert stack.tracker_query("SELECT 1 FROM events WHERE sender_id = ?", (leaked,)) == []


def test_an_oversized_request_body_is_refused_before_it_is_read(stack: Stack) -> None:
    """Sanic's own cap is 100 MB; the channels cap bodies at 1 MiB (RASA_MAX_BODY_BYTES)."""
    sender = "body-attack-1"
    body = json.dumps({"sender": sender, "message": "hi", "padding": "x" * 2_000_000})
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", data=body,
                             headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413
    assert stack.tracker_query("SELECT 1 FROM events WHERE sender_id = ?", (sender,)) == []
