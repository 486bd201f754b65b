"""ShopClient against a scripted fake server: retries, typed errors, headers, idempotency."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Tuple

import pytest

from actions.shop_client import (
    Conflict,
    IdentificationLocked,
    Invalid,
    NotFound,
    ShopClient,
    ShopUnavailable,
    idempotency_key,
)
from actions.shop_records import Order

pytestmark = pytest.mark.no_shop


class FakeShop:
    """Answers each path with a scripted (status, body, delay) and records the requests."""

    def __init__(self) -> None:
        self.routes: Dict[str, Tuple[int, str, float]] = {}
        self.headers_out: Dict[str, Dict[str, str]] = {}  # extra answer headers per path
        self.requests: List[Tuple[str, str, Dict[str, str], str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                fake.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload, delay = fake.routes.get(
                    self.path.split("?")[0], (404, '{"error":{"code":"nf","message":"nope"}}', 0)
                )
                time.sleep(delay)
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in fake.headers_out.get(self.path.split("?")[0], {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and p.startswith(path_prefix))


@pytest.fixture
def fake() -> Iterator[FakeShop]:
    server = FakeShop()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def client(fake: FakeShop) -> Iterator[ShopClient]:
    c = ShopClient(base_url=fake.url, token="tok", timeout=0.5, connect_timeout=0.5,
                   retries=2, backoff=0.01)
    yield c
    c.close()


ORDER = json.dumps({"order_id": "#W1234567", "status": "pending", "items": []})


def test_idempotency_key_is_stable() -> None:
    assert idempotency_key("a", 1) == idempotency_key("a", 1) != idempotency_key("a", 2)


def test_headers_and_order_id_encoding(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/orders/%23W1234567"] = (200, ORDER, 0)
    order = client.get_order("w1234567", "cust_1")
    assert isinstance(order, Order) and order.status == "pending"
    method, path, headers, _ = fake.requests[-1]
    assert (method, path) == ("GET", "/orders/%23W1234567")
    assert headers["Authorization"] == "Bearer tok"
    assert headers["X-Customer-Id"] == "cust_1"


def test_get_is_retried_on_5xx_then_unavailable(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/products"] = (503, "{}", 0)
    with pytest.raises(ShopUnavailable):
        client.list_products()
    assert fake.count("GET", "/products") == 3  # 1 + 2 retries


def test_get_is_retried_on_read_timeout(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/products"] = (200, "[]", 1.0)
    started = time.monotonic()
    with pytest.raises(ShopUnavailable):
        client.list_products()
    assert fake.count("GET", "/products") == 3
    assert time.monotonic() - started < 6.0  # bounded: 3 × 0.5 s read timeout + backoff


def test_post_is_never_retried_and_carries_an_idempotency_key(
    fake: FakeShop, client: ShopClient
) -> None:
    fake.routes["/orders/%23W1234567/cancel"] = (503, "{}", 0)
    with pytest.raises(ShopUnavailable):
        client.cancel_order("#W1234567", "cust_1", "no longer needed", idem_key="k-1")
    assert fake.count("POST", "/orders/%23W1234567/cancel") == 1
    _, _, headers, body = fake.requests[-1]
    assert headers["Idempotency-Key"] == "k-1"
    assert json.loads(body) == {"reason": "no longer needed"}


def test_post_timeout_is_not_retried(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/handoffs"] = (201, '{"id": "H1"}', 1.0)
    with pytest.raises(ShopUnavailable):
        client.create_handoff("summary")
    assert fake.count("POST", "/handoffs") == 1
    assert fake.requests[-1][2]["Idempotency-Key"]  # generated when not given


@pytest.mark.parametrize(
    "status, error",
    [(404, NotFound), (409, Conflict), (422, Invalid), (400, Invalid)],
)
def test_typed_errors_carry_the_server_message(
    fake: FakeShop, client: ShopClient, status: int, error: type
) -> None:
    fake.routes["/orders/%23W1234567/return"] = (
        status, json.dumps({"error": {"code": "c", "message": f"msg {status}"}}), 0
    )
    with pytest.raises(error) as info:
        client.return_order("#W1234567", "cust_1", ["1"], "gift_card_1", "too big")
    assert info.value.message == f"msg {status}"
    assert info.value.code == "c" and info.value.status == status


def test_malformed_json_is_unavailable(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/products"] = (200, "<html>oops", 0)
    with pytest.raises(ShopUnavailable):
        client.list_products()


@pytest.mark.parametrize("payload", [
    '{"status": "pending"}',  # no order_id
    '{"order_id": "#W1234567", "status": "pending", "items": [{"item_id": "1"}]}',  # no price
    '{"order_id": "#W1234567", "status": "pending", "items": [], "address": "x"}',
    '[1, 2]',
])
def test_an_answer_that_breaks_the_contract_is_unavailable(
    fake: FakeShop, client: ShopClient, payload: str
) -> None:
    """Parsed once, into typed records: a malformed answer fails here, not in an action."""
    fake.routes["/orders/%23W1234567"] = (200, payload, 0)
    with pytest.raises(ShopUnavailable, match="malformed"):
        client.get_order("#W1234567", "cust_1")


def test_auth_failure_is_unavailable(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/products"] = (401, '{"error":{"code":"auth","message":"bad token"}}', 0)
    with pytest.raises(ShopUnavailable):
        client.list_products()
    assert fake.count("GET", "/products") == 1  # 4xx are not retried


def test_connection_refused_is_unavailable() -> None:
    from actions.tests.conftest import free_port

    c = ShopClient(base_url=f"http://127.0.0.1:{free_port()}", token="t", retries=1, backoff=0.01)
    with pytest.raises(ShopUnavailable):
        c.get_product("1")
    with pytest.raises(ShopUnavailable):
        c.cancel_order("#W1234567", "c", "ordered by mistake")
    assert c.health() is False


def test_malformed_order_id_never_reaches_the_shop(fake: FakeShop, client: ShopClient) -> None:
    with pytest.raises(NotFound):
        client.get_order("../customers/x", "cust_1")
    assert fake.requests == []


def test_actions_do_not_block_each_other(fake: FakeShop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking HTTP runs off the event loop: three slow calls overlap instead of queueing."""
    import asyncio

    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.catalog import ActionProductInfo

    product = {"name": "Yoga Mat", "product_id": "1", "variants": {
        "11": {"item_id": "11", "options": {"color": "pink"}, "available": True, "price": 20.0}}}
    fake.routes["/products"] = (200, json.dumps([product]), 1.0)
    monkeypatch.setenv("SHOP_URL", fake.url)
    monkeypatch.setenv("SHOP_RETRIES", "0")
    monkeypatch.setenv("SHOP_TIMEOUT", "5")

    async def three() -> list:
        dispatchers = [CollectingDispatcher() for _ in range(3)]
        message = {"text": "yoga mat", "intent": {"name": "product_info"}, "entities": []}
        trackers = [Tracker("s", {}, message, [], False, None, {}, "action_listen")
                    for _ in range(3)]
        pairs = zip(dispatchers, trackers, strict=True)
        runs = [ActionProductInfo().run(d, t, {}) for d, t in pairs]
        await asyncio.gather(*runs)
        return dispatchers

    started = time.monotonic()
    dispatchers = asyncio.run(three())
    assert time.monotonic() - started < 2.5  # serially it would take 3 s
    assert all(d.messages[0]["text"].startswith("Yoga Mat: 1 of 1") for d in dispatchers)


# ------------------------------------------------------------------ identification and scoping
LOCKED = json.dumps({"error": {"code": "identification_locked",
                               "message": "Too many failed identification attempts."}})


def query(path: str) -> Dict[str, List[str]]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(path).query)


def test_lookup_sends_email_zip_and_the_client_id(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/customers/lookup"] = (200, '{"user_id": "u_1"}', 0)
    assert client.lookup_customer(email=" A@B.C ", zip_code=" 12345 ",
                                  client_id="203.0.113.9") == "u_1"
    _, path, headers, _ = fake.requests[-1]
    assert query(path) == {"email": ["A@B.C"], "zip": ["12345"]}
    assert headers["X-Client-Id"] == "203.0.113.9"
    assert client.lookup_customer(first_name="Mei", last_name="Martin", zip_code="32124") == "u_1"
    _, path, headers, _ = fake.requests[-1]
    assert query(path) == {"first_name": ["Mei"], "last_name": ["Martin"], "zip": ["32124"]}
    assert "X-Client-Id" not in headers  # no client id: only the account counts


@pytest.mark.parametrize("facts", [
    {"email": "a@b.c"}, {"email": "a@b.c", "zip_code": " "}, {"zip_code": "12345"},
    {"first_name": "Mei", "last_name": "Martin"}, {"first_name": "Mei", "zip_code": "1"}, {},
])
def test_lookup_without_two_facts_never_reaches_the_shop(
    fake: FakeShop, client: ShopClient, facts: Dict[str, str]
) -> None:
    with pytest.raises(Invalid) as info:
        client.lookup_customer(**facts, client_id="c")
    assert info.value.code == "lookup_parameters"
    assert fake.requests == []


def test_lookup_is_keyword_only(client: ShopClient) -> None:
    with pytest.raises(TypeError):
        client.lookup_customer("a@b.c", None, None, "12345")  # type: ignore[misc]


def test_odd_client_ids_are_sent_hashed(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/customers/lookup"] = (200, '{"user_id": "u_1"}', 0)
    for odd in ["x" * 129, "caf\u00e9", "a\tb"]:
        client.lookup_customer(email="a@b.c", zip_code="1", client_id=odd)
        sent = fake.requests[-1][2]["X-Client-Id"]
        assert sent.startswith("sha256:") and len(sent) <= 128
    client.lookup_customer(email="a@b.c", zip_code="1", client_id="2001:db8::1")
    assert fake.requests[-1][2]["X-Client-Id"] == "2001:db8::1"


def test_locked_identification_is_typed_and_not_retried(fake: FakeShop,
                                                        client: ShopClient) -> None:
    fake.routes["/customers/lookup"] = (429, LOCKED, 0)
    fake.headers_out["/customers/lookup"] = {"Retry-After": "42"}
    with pytest.raises(IdentificationLocked) as info:
        client.lookup_customer(email="a@b.c", zip_code="12345", client_id="c")
    assert info.value.retry_after == 42 and info.value.status == 429
    assert info.value.code == "identification_locked"
    assert info.value.message == "Too many failed identification attempts."
    assert fake.count("GET", "/customers/lookup") == 1
    fake.headers_out["/customers/lookup"] = {}  # no header: still a positive wait
    with pytest.raises(IdentificationLocked) as info:
        client.lookup_customer(email="a@b.c", zip_code="12345")
    assert info.value.retry_after == 1


def test_scoped_reads_and_writes_carry_the_customer(fake: FakeShop, client: ShopClient) -> None:
    fake.routes["/shipments/123"] = (200, json.dumps({
        "tracking_id": "123", "carrier": "UPS", "status": "in_transit", "order_id": "#W1",
        "item_ids": [], "events": []}), 0)
    fake.routes["/handoffs/ho_1"] = (200, '{"id": "ho_1", "status": "open"}', 0)
    fake.routes["/handoffs"] = (201, '{"id": "ho_2"}', 0)
    fake.routes["/ratings"] = (201, '{"id": 1, "rating": 5}', 0)
    client.get_shipment("123", "cust_1")
    client.get_handoff("ho_1", "cust_1")
    client.create_handoff("help", customer_id="cust_1")
    client.create_rating("conv", 5, customer_id="cust_1")
    sent = [(m, p, h.get("X-Customer-Id"), b) for m, p, h, b in fake.requests]
    assert [(m, p, c) for m, p, c, _ in sent] == [
        ("GET", "/shipments/123", "cust_1"), ("GET", "/handoffs/ho_1", "cust_1"),
        ("POST", "/handoffs", "cust_1"), ("POST", "/ratings", "cust_1")]
    assert json.loads(sent[2][3])["user_id"] == "cust_1"
    assert json.loads(sent[3][3])["customer_id"] == "cust_1"
    client.create_handoff("help")
    client.create_rating("conv-2", 4)
    for _, _, headers, body in fake.requests[-2:]:  # anonymous: no customer anywhere
        assert "X-Customer-Id" not in headers
        assert "user_id" not in json.loads(body) and "customer_id" not in json.loads(body)
