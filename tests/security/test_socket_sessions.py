"""A socket only ever talks in the session the server issued it (issue 22, sessions on the socket).

Before: ``session_request`` confirmed whatever id a socket named, so a second socket could join
(and hear the replies of) any conversation whose id it knew, an identified one included; and
``user_uttered`` took the conversation from the message's own ``session_id``, so any socket could
write into any conversation. Now (web/rasa_channel.py) the server issues ids signed with
``WEB_SESSION_SECRET``, keeps a presented id only when its signature verifies, binds the id to the
socket, and processes a message only for the session bound to its socket. ``client_address`` in a
message's metadata is the server's view of the client, never the client's claim.

Against the real stack (tests/security/conftest.py), over socket.io long-polling from the page's
origin, as tests/security/test_socket_origin.py connects.
"""

from __future__ import annotations

import json
import queue
import socket
import time
import uuid
from typing import Any

import pytest
import requests
import socketio
from requests.adapters import HTTPAdapter

from tests.conversations.harness import Stack

TIMEOUT = 30.0  # a reply, on 2 busy cores
QUIET = 4.0  # how long "no reply" is waited for, after a reply of the same socket came back
METADATA_KEY = "customData"  # credentials.yml: metadata_key of the web channel


class SourceAddressAdapter(HTTPAdapter):
    """requests from a chosen local address (another loopback address than 127.0.0.1)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


class ChatSocket:
    """One socket.io client, as the page uses it: session_request, user_uttered, bot_uttered."""

    def __init__(self, stack: Stack, headers: dict[str, str] | None = None,
                 source: str | None = None) -> None:
        http = requests.Session()
        if source:
            adapter = SourceAddressAdapter(source)
            http.mount("http://", adapter)
        self.client = socketio.Client(reconnection=False, http_session=http)
        self.confirmed: queue.Queue[Any] = queue.Queue()
        self.replies: queue.Queue[Any] = queue.Queue()
        self.client.on("session_confirm", self.confirmed.put)
        self.client.on("bot_uttered", self.replies.put)
        self.client.connect(stack.rasa_url, transports=["polling"], socketio_path="/socket.io",
                            headers={"Origin": stack.env["WEB_ORIGIN"], **(headers or {})},
                            wait_timeout=15)
        self.session_id: str | None = None

    def request_session(self, session_id: Any = None) -> str:
        self.client.emit("session_request", {"session_id": session_id})
        confirmed = self.confirmed.get(timeout=TIMEOUT)
        assert isinstance(confirmed, str) and confirmed, confirmed
        self.session_id = confirmed
        return confirmed

    def send(self, text: str, session_id: Any = "bound", metadata: Any = None) -> None:
        data: dict[str, Any] = {"message": text}
        data["session_id"] = self.session_id if session_id == "bound" else session_id
        if metadata is not None:
            data[METADATA_KEY] = metadata
        self.client.emit("user_uttered", data)

    def say(self, text: str, **kwargs: Any) -> list[Any]:
        """Send in the own session and return the replies (the first within TIMEOUT)."""
        self.send(text, **kwargs)
        replies = [self.replies.get(timeout=TIMEOUT)]
        replies += self.drain(1.5)
        return replies

    def drain(self, seconds: float) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.replies.get(timeout=left))
            except queue.Empty:
                break
        return got

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture()
def sockets(stack: Stack) -> Any:
    opened: list[ChatSocket] = []

    def open_socket(**kwargs: Any) -> ChatSocket:
        chat = ChatSocket(stack, **kwargs)
        opened.append(chat)
        return chat

    yield open_socket
    for chat in opened:
        chat.close()


def user_events(stack: Stack, sender: str) -> list[dict[str, Any]]:
    rows = stack.tracker_query(
        "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
        (sender,))
    return [json.loads(row["data"]) for row in rows]


def texts(stack: Stack, sender: str) -> list[str]:
    return [event.get("text") for event in user_events(stack, sender)]


def settled_texts(stack: Stack, sender: str, count: int) -> list[str]:
    """The user texts of a conversation once it holds ``count`` (Rasa stores the tracker after
    the replies went out), or what it holds after 15 s."""
    deadline = time.monotonic() + 15
    while len(found := texts(stack, sender)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def events_mentioning(stack: Stack, marker: str) -> list[str]:
    rows = stack.tracker_query("SELECT sender_id FROM events WHERE data LIKE ?",
                               (f"%{marker}%",))
    return [row["sender_id"] for row in rows]


def letters_marker() -> str:
    """A unique word of letters only: digits in a message may be read as a zip or an order id,
    and a turn the NLU reads that way can legitimately stay silent (the test then hears
    nothing for a reason of its own)."""
    return "".join("abcdefghijklmnop"[int(c, 16)] for c in uuid.uuid4().hex[:10])


def forgeries(session_id: str) -> dict[str, str]:
    """Ids an attacker who learned (or guessed) the first one might present."""
    random_part, _, signature = session_id.partition(".")
    signature = signature or "A" * 43  # (an unsigned id of the old channel: still forgeries)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return {
        "unsigned": random_part,
        "altered signature": f"{random_part}.{flipped}",
        "signature of another id": f"{uuid.uuid4().hex[:32]}.{signature}",
        "chosen name": "victim-conversation",
    }


def test_a_forged_session_id_gets_a_new_session_and_none_of_the_first(
        stack: Stack, sockets: Any) -> None:
    first = sockets()
    first_id = first.request_session()
    assert first.say("hello")  # the conversation exists, with a reply
    for kind, forged in forgeries(first_id).items():
        other = sockets()
        other_id = other.request_session(forged)
        assert other_id not in (first_id, forged), kind
        # The first conversation goes on; the other socket hears nothing of it.
        marker = letters_marker()
        assert first.say(f"hello {marker}")
        assert other.drain(QUIET) == [], kind
        assert other.say("hi")  # its own session works
        assert f"hello {marker}" not in texts(stack, other_id), kind
        assert settled_texts(stack, other_id, 1) == ["hi"], kind
    # A second session_request with a forged id on the same socket does not switch it either.
    again = sockets()
    again.request_session()
    assert again.request_session(forgeries(first_id)["altered signature"]) != first_id


def test_a_message_naming_another_session_writes_nothing_there(
        stack: Stack, sockets: Any) -> None:
    victim = sockets()
    victim_id = victim.request_session()
    assert victim.say("hello")
    before = settled_texts(stack, victim_id, 1)
    attacker = sockets()
    attacker_id = attacker.request_session()
    marker = letters_marker()
    for named in (victim_id, forgeries(victim_id)["unsigned"], "victim-conversation"):
        attacker.send(f"hello {marker}", session_id=named)
    # The attacker's own session still answers (so the injections above were handled by now).
    assert attacker.say("hi")
    assert attacker.drain(QUIET) == []
    assert victim.drain(0.5) == []  # the victim got no reply to anything it did not say
    assert texts(stack, victim_id) == before
    assert events_mentioning(stack, marker) == []  # written into no conversation at all
    assert settled_texts(stack, attacker_id, 1) == ["hi"]
    # The HTTP API (RASA_AUTH_TOKEN) agrees with the tracker database.
    tracker = stack.tracker(victim_id)
    assert [e.get("text") for e in tracker["events"] if e["event"] == "user"] == before


def test_the_pages_own_id_survives_a_reconnect(stack: Stack, sockets: Any) -> None:
    first = sockets()
    session_id = first.request_session()
    assert first.say("hello")
    first.close()
    again = sockets()
    assert again.request_session(session_id) == session_id  # reload: same signed id
    assert again.say("what can you do")
    assert settled_texts(stack, session_id, 2) == ["hello", "what can you do"]
    # A page that asks for a new conversation (no id) gets a new one.
    assert again.request_session(None) != session_id


def test_client_address_is_the_servers_not_the_clients(stack: Stack, sockets: Any) -> None:
    # From 127.0.0.2, so the peer address (not a constant of the socket.io layer) is seen.
    try:
        probe = socket.create_connection(("127.0.0.1", int(stack.env["RASA_PORT"])), timeout=5,
                                         source_address=("127.0.0.2", 0))
        probe.close()
        source, expected = "127.0.0.2", "127.0.0.2"
    except OSError:
        source, expected = None, "127.0.0.1"
    chat = sockets(source=source, headers={"X-Forwarded-For": "198.51.100.66"})
    session_id = chat.request_session()
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl"
    assert chat.say("hello", metadata={"client_address": "6.6.6.6", "customer_token": token})
    assert chat.say("hi", metadata=json.dumps({"client_address": "6.6.6.6"}))
    assert chat.say("hey")
    settled_texts(stack, session_id, 3)
    metadata = [event.get("metadata") or {} for event in user_events(stack, session_id)]
    assert [m.get("client_address") for m in metadata] == [expected] * 3, metadata
    assert metadata[0].get("customer_token") == token  # passed through unchanged
    assert "customer_token" not in metadata[1]


def test_a_message_before_session_request_is_not_processed(stack: Stack, sockets: Any) -> None:
    victim = sockets()
    victim_id = victim.request_session()
    assert victim.say("hello")
    assert settled_texts(stack, victim_id, 1) == ["hello"]
    early = sockets()
    marker = letters_marker()
    early.send(f"hello {marker}", session_id=None)
    early.send(f"hello {marker}", session_id=victim_id)
    early.send(f"hello {marker}", session_id=f"early-{marker}")
    assert early.drain(QUIET) == []
    assert victim.drain(0.5) == []
    assert events_mentioning(stack, marker) == []
    assert texts(stack, victim_id) == ["hello"]
    # Once it asks for a session, the same socket works.
    early.request_session()
    assert early.say("hi")
