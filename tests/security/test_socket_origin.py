"""A page of another site cannot open the assistant's socket (issue 22, item 2: the WebSocket
upgrade accepted any Origin, so a page a shopper visits could chat in their name)."""

from __future__ import annotations

import asyncio

import pytest
import socketio
import websockets

from tests.conversations.harness import Stack


def connect_polling(stack: Stack, origin: str | None) -> bool:
    """Whether a socket.io client (long-polling) sending ``Origin`` gets a session."""
    client = socketio.Client(reconnection=False)
    try:
        client.connect(stack.rasa_url, headers={"Origin": origin} if origin else {},
                       transports=["polling"], socketio_path="/socket.io", wait_timeout=15)
    except socketio.exceptions.ConnectionError:
        return False
    connected = client.connected
    client.disconnect()
    return connected


def connect_websocket(stack: Stack, origin: str | None) -> bool:
    """The same over a WebSocket, spoken by hand (the socket.io client's WebSocket transport
    needs a newer aiohttp than Rasa pins): engine.io open, then socket.io CONNECT "40",
    answered "40{sid}" when accepted and "44{error}" when refused."""

    async def attempt() -> bool:
        url = stack.rasa_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(url, origin=origin, open_timeout=15) as ws:
            opened = await asyncio.wait_for(ws.recv(), 15)
            assert str(opened).startswith("0"), opened  # engine.io OPEN
            await ws.send("40")
            answer = str(await asyncio.wait_for(ws.recv(), 15))
        return answer.startswith("40")

    return asyncio.run(attempt())


CONNECT = {"polling": connect_polling, "websocket": connect_websocket}


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_socket_from_another_origin_is_refused(stack: Stack, transport: str) -> None:
    for origin in ("https://evil.example", "http://localhost:8081", "null"):
        assert not CONNECT[transport](stack, origin), origin


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_page_origin_connects(stack: Stack, transport: str) -> None:
    origin = stack.env["WEB_ORIGIN"]
    assert CONNECT[transport](stack, origin)
    assert CONNECT[transport](stack, origin.replace("localhost", "127.0.0.1"))
