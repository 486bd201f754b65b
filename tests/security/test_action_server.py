"""The action server answers only Rasa: a forged tracker from anyone else reads and changes
nothing (issue 22, item 4). It holds the shop token, so it is the door to every shopper's data."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import requests

from tests.conversations.harness import ROOT, VENV_BIN, Stack
from tests.support import free_port

MEI = "mei_martin_4260"


def forged_call(action: str, customer_id: str = MEI) -> dict:
    """What an attacker would POST: a tracker that says someone is identified."""
    return {
        "next_action": action,
        "sender_id": "attacker",
        "tracker": {
            "sender_id": "attacker",
            "slots": {"customer_id": customer_id, "identified": True, "customer_name": "x"},
            "latest_message": {"text": "my orders", "intent": {"name": "list_orders"},
                               "entities": []},
            "events": [], "paused": False, "followup_action": None, "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": {},
        "version": "3.6.0",
    }


def webhook(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['ACTIONS_PORT']}/webhook"


def test_a_forged_tracker_without_the_secret_gets_nothing(stack: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer guess"},
                    {"Authorization": f"Bearer {stack.env['ACTIONS_TOKEN']}x"},
                    {"Authorization": stack.env["ACTIONS_TOKEN"]}):
        response = requests.post(webhook(stack), json=forged_call("action_list_orders"),
                                 headers=headers, timeout=10)
        assert response.status_code == 401, headers
        assert "#W" not in response.text and "order" not in response.text.lower()


def test_a_forged_confirmed_change_writes_nothing(stack: Stack) -> None:
    call = forged_call("action_submit_change")
    call["tracker"]["slots"].update(change_type="cancel", change_order_id="#W7017301",
                                    cancel_reason="ordered by mistake", change_confirmed=True,
                                    change_readback="0" * 16)
    before = stack.shop_query("SELECT status FROM orders WHERE order_id = ?", ("#W7017301",))
    response = requests.post(webhook(stack), json=call, timeout=10)
    assert response.status_code == 401
    after = stack.shop_query("SELECT status FROM orders WHERE order_id = ?", ("#W7017301",))
    assert [dict(r) for r in after] == [dict(r) for r in before] == [{"status": "pending"}]


def test_the_health_check_stays_open_and_says_nothing(stack: Stack) -> None:
    response = requests.get(f"http://127.0.0.1:{stack.env['ACTIONS_PORT']}/health", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_rasa_itself_gets_through(stack: Stack) -> None:
    """The secret is in endpoints.yml: the assistant's own calls work (an order-status turn)."""
    chat = stack.conversation()
    chat.text("hi, where is my order?")
    reply = chat.text("mei.martin4637@example.com, zip 32124")
    assert chat.slots().get("identified") is True, reply


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses something LISTENs on at ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_action_server_listens_on_loopback_only(stack: Stack) -> None:
    addresses = listening_addresses(int(stack.env["ACTIONS_PORT"]))
    assert addresses == {"0100007F"}, addresses  # 127.0.0.1, not 0.0.0.0 or ::
    outside = [a for a in socket.gethostbyname_ex(socket.gethostname())[2]
               if not a.startswith("127.")]
    for address in outside:  # and from this machine's other interfaces nobody gets in
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, int(stack.env["ACTIONS_PORT"]))) != 0, address


def test_the_action_server_does_not_start_without_its_secret(tmp_path: Path) -> None:
    for token in ("", "change-me-actions-token"):
        env = {k: v for k, v in os.environ.items() if k != "ACTIONS_TOKEN"}
        env.update(ACTIONS_TOKEN=token, SANIC_HOST="127.0.0.1", SHOP_URL="http://127.0.0.1:9")
        result = subprocess.run(
            [str(VENV_BIN / "rasa"), "run", "actions", "--actions", "actions",
             "--port", str(free_port())],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode != 0
        assert "ACTIONS_TOKEN" in result.stdout + result.stderr
