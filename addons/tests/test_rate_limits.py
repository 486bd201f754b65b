"""Per-client rate limits (addons/rate_limits.py) and how the REST channel applies them."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional

import pytest
from limits import parse
from limits.errors import StorageError

from addons.channels import CLIENT_ADDRESS_KEY, RestInput
from addons.rate_limits import (
    DEFAULT_NEW_CONVERSATIONS_PER_CLIENT,
    DEFAULT_TURNS_PER_CLIENT,
    DEFAULT_TURNS_PER_CONVERSATION,
    RATE_LIMITED_TEXT,
    LimitSettings,
    RateLimits,
    SeenSenders,
    client_address,
    client_key,
    normalize_address,
    rate_limited_text,
    trusted_proxy_hops,
)
from tests.support import free_port


def limiter(per_conversation: str = "off", per_client: str = "off", new: str = "off",
            **env: str) -> RateLimits:
    return RateLimits.from_env({"RATE_LIMIT_TURNS_PER_CONVERSATION": per_conversation,
                                "RATE_LIMIT_TURNS_PER_CLIENT": per_client,
                                "RATE_LIMIT_NEW_CONVERSATIONS_PER_CLIENT": new, **env})


# ---------------------------------------------------------------- settings
def test_defaults_are_on_with_the_documented_limits() -> None:
    limits = RateLimits.from_env({})
    assert limits.enabled and limits.storage_uri == "memory://"
    assert limits.settings == LimitSettings(
        (parse(DEFAULT_TURNS_PER_CONVERSATION),), (parse(DEFAULT_TURNS_PER_CLIENT),),
        (parse(DEFAULT_NEW_CONVERSATIONS_PER_CLIENT),))
    assert (DEFAULT_TURNS_PER_CONVERSATION, DEFAULT_TURNS_PER_CLIENT,
            DEFAULT_NEW_CONVERSATIONS_PER_CLIENT) == ("20/minute", "60/minute", "20/10minute")


@pytest.mark.parametrize("value, enabled", [
    ("on", True), ("", True), ("ON", True), ("true", True), ("off", False), ("0", False),
])
def test_rate_limits_on_or_off(value: str, enabled: bool) -> None:
    assert RateLimits.from_env({"RATE_LIMITS": value}).enabled is enabled


def test_off_lets_everything_through() -> None:
    limits = limiter("1/minute", "1/minute", "1/minute", RATE_LIMITS="off")
    assert [limits.check("10.0.0.1", f"s{i % 2}") for i in range(50)] == [None] * 50


@pytest.mark.parametrize("env", [
    {"RATE_LIMITS": "maybe"}, {"RATE_LIMIT_TURNS_PER_CLIENT": "lots"},
    {"RATE_LIMIT_TURNS_PER_CONVERSATION": "0/minute"}, {"RATE_LIMIT_STORAGE": "nosuch://x"},
])
def test_a_bad_setting_stops_the_start(env: Dict[str, str]) -> None:
    with pytest.raises(Exception) as raised:
        RateLimits.from_env(env)
    assert isinstance(raised.value, ValueError) or "nosuch" in str(raised.value)


def test_a_setting_names_itself_when_wrong() -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT_TURNS_PER_CLIENT"):
        RateLimits.from_env({"RATE_LIMIT_TURNS_PER_CLIENT": "lots"})


def test_several_limits_in_one_setting_all_apply() -> None:
    limits = limiter(per_client="5/minute;2/second")
    assert [limits.check("10.0.0.1", f"s{i}") for i in range(2)] == [None, None]
    assert limits.check("10.0.0.1", "s9") is not None  # the third within a second


# ---------------------------------------------------------------- turns
def test_a_conversation_over_its_turn_limit_is_refused_with_a_wait() -> None:
    limits = limiter(per_conversation="3/minute")
    assert [limits.check("10.0.0.1", "chatty") for _ in range(3)] == [None] * 3
    retry = limits.check("10.0.0.1", "chatty")
    assert retry is not None and 1 <= retry <= 61
    # from another address too: the limit is the conversation's
    assert limits.check("10.9.9.9", "chatty") is not None
    # other conversations of the same client go on
    assert limits.check("10.0.0.1", "quiet") is None


def test_a_client_over_its_turn_limit_is_refused_in_every_conversation() -> None:
    limits = limiter(per_client="4/minute")
    assert [limits.check("10.0.0.2", f"c{i}") for i in range(4)] == [None] * 4
    assert limits.check("10.0.0.2", "c0") is not None
    assert limits.check("10.0.0.2", "fresh") is not None
    assert limits.check("10.0.0.3", "c0") is None  # another address


def test_a_refused_message_consumes_no_budget() -> None:
    limits = limiter(per_conversation="2/minute", per_client="4/minute")
    assert [limits.check("10.0.0.4", "a") for _ in range(2)] == [None, None]
    assert all(limits.check("10.0.0.4", "a") for _ in range(5))  # refused: not counted
    assert [limits.check("10.0.0.4", "b") for _ in range(2)] == [None, None]  # 4 of 4
    assert limits.check("10.0.0.4", "c") is not None


def test_the_wait_ends_the_refusal() -> None:
    limits = limiter(per_conversation="1/second")
    assert limits.check("10.0.0.5", "s") is None
    retry = limits.check("10.0.0.5", "s")
    assert retry is not None and 1 <= retry <= 2
    time.sleep(retry)
    assert limits.check("10.0.0.5", "s") is None


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    limits = limiter(per_client="3/minute")
    for i in range(3):
        assert limits.check(f"2001:db8:1:2::{i + 1:x}", f"v6-{i}") is None
    assert limits.check("2001:db8:1:2:ffff::9", "v6-x") is not None  # same /64
    assert limits.check("2001:db8:1:3::1", "v6-y") is None  # another /64


# ---------------------------------------------------------------- new conversations
def test_new_conversations_of_a_client_are_limited_not_its_ongoing_ones() -> None:
    limits = limiter(new="2/minute")
    assert limits.check("10.0.1.1", "first") is None
    assert limits.check("10.0.1.1", "second") is None
    assert limits.check("10.0.1.1", "third") is not None
    assert limits.check("10.0.1.1", "first") is None  # seen: not new
    assert limits.check("10.0.1.1", "third") is not None  # a refused one was not recorded
    assert limits.check("10.0.1.2", "third") is None  # another address may start it


def test_the_record_of_senders_is_in_the_storage_when_it_is_shared() -> None:
    limits = limiter(new="1/minute")
    limits._seen = None  # as with redis://: a key per sender in the storage
    assert limits.check("10.0.2.1", "one") is None
    assert limits.check("10.0.2.1", "one") is None
    assert limits.check("10.0.2.1", "two") is not None
    assert limits.storage.get("shopchat/seen/one") == 2


def test_the_record_of_senders_is_bounded_and_expires() -> None:
    seen = SeenSenders(ttl=60, max_entries=3)
    for i, sender in enumerate("abcd"):
        seen.remember(sender, now=float(i))
    assert len(seen) == 3 and not seen.seen("a", now=4.0)  # the oldest made room
    assert seen.seen("b", now=4.0) and seen.seen("d", now=4.0)
    assert not seen.seen("d", now=64.0) and len(seen) == 0  # a ttl after its last message
    seen.remember("e", now=70.0)
    seen.remember("e", now=125.0)  # every message starts its time again
    assert seen.seen("e", now=180.0)


def test_a_restart_forgets_the_record_with_memory_storage() -> None:
    before = limiter(new="1/minute")
    assert before.check("10.0.3.1", "ongoing") is None
    after = limiter(new="1/minute")  # a new process
    assert after.check("10.0.3.1", "ongoing") is None  # counted as new once
    assert after.check("10.0.3.1", "another") is not None


# ---------------------------------------------------------------- failure and wording
def test_a_failing_storage_lets_messages_through(caplog: pytest.LogCaptureFixture) -> None:
    limits = limiter(per_conversation="1/minute")

    def broken(*_: Any, **__: Any) -> int:
        raise StorageError(ConnectionError("redis down"))

    limits.storage.get = broken  # type: ignore[method-assign]
    assert [limits.check("10.0.4.1", "s") for _ in range(3)] == [None] * 3
    assert sum("storage failed" in r.getMessage() for r in caplog.records) == 1  # once a minute


@pytest.mark.parametrize("seconds, wait", [
    (1, "1 second"), (12, "12 seconds"), (119, "119 seconds"), (600, "10 minutes"),
    (0, "1 second"),
])
def test_the_polite_text_says_how_long_to_wait(seconds: int, wait: str) -> None:
    text = rate_limited_text(seconds)
    assert text == RATE_LIMITED_TEXT.format(wait=wait)
    assert text.startswith("You're sending messages faster than I can answer. Please wait ")
    assert text.endswith(" and try again.")


# ---------------------------------------------------------------- addresses
@pytest.mark.parametrize("value, normalized", [
    ("10.1.2.3", "10.1.2.3"), ("10.1.2.3:5555", "10.1.2.3"), ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:DB8:0::1", "2001:db8::1"), ("::ffff:192.0.2.7", "192.0.2.7"),
    ("fe80::1%eth0", "fe80::1"),
    ("unknown", None), ("", None), ("1.2.3.4.5", None),
])
def test_addresses_are_normalized(value: str, normalized: Optional[str]) -> None:
    assert normalize_address(value) == normalized


@pytest.mark.parametrize("peer, forwarded, hops, client", [
    ("127.0.0.1", "203.0.113.9", 0, "127.0.0.1"),  # no trusted proxy: the header is ignored
    ("127.0.0.1", "203.0.113.9", 1, "203.0.113.9"),
    ("127.0.0.1", "6.6.6.6, 203.0.113.9", 1, "203.0.113.9"),  # the client wrote 6.6.6.6
    ("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.7", 2, "203.0.113.9"),
    ("127.0.0.1", "203.0.113.9", 3, "203.0.113.9"),  # fewer entries than hops: the leftmost
    ("127.0.0.1", "", 1, "127.0.0.1"), ("127.0.0.1", None, 1, "127.0.0.1"),
    ("127.0.0.1", "not-an-ip", 1, "127.0.0.1"),
    ("[::1]", None, 0, "::1"),
])
def test_the_client_address_is_the_servers_view(peer: str, forwarded: Optional[str], hops: int,
                                                client: str) -> None:
    assert client_address(peer, forwarded, hops) == client


def test_client_keys() -> None:
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_key("garbage") == "garbage"


@pytest.mark.parametrize("value, hops", [(None, 0), ("", 0), ("1", 1), (" 2 ", 2)])
def test_trusted_proxy_hops(value: Optional[str], hops: int) -> None:
    env = {} if value is None else {"TRUSTED_PROXY_HOPS": value}
    assert trusted_proxy_hops(env) == hops


@pytest.mark.parametrize("value", ["-1", "one"])
def test_trusted_proxy_hops_must_be_a_count(value: str) -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXY_HOPS"):
        trusted_proxy_hops({"TRUSTED_PROXY_HOPS": value})


# ---------------------------------------------------------------- the REST channel
class Request:
    """What RestInput reads of a Sanic request."""

    def __init__(self, body: Any, ip: str = "198.51.100.4",
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.json = body
        self.method = "POST"
        self.ip = ip
        self.remote_addr = ""
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.args: Dict[str, str] = {}


def test_the_rest_channel_answers_429_with_retry_after_and_a_polite_json_body() -> None:
    channel = RestInput(rate_limits=limiter(per_conversation="2/minute"), proxy_hops=0)
    request = Request({"sender": "hammer", "message": "hi"})
    assert [asyncio.run(channel.rate_refusal(request)) for _ in range(2)] == [None, None]
    refused = asyncio.run(channel.rate_refusal(request))
    assert refused is not None and refused.status == 429
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 61
    body = json.loads(refused.body)
    assert body == {"error": "rate_limited", "message": rate_limited_text(retry)}


def test_the_rest_channel_counts_by_the_proxys_view_when_trusted() -> None:
    channel = RestInput(rate_limits=limiter(per_client="1/minute"), proxy_hops=1)
    first = Request({"sender": "p1", "message": "hi"}, ip="127.0.0.1",
                    headers={"X-Forwarded-For": "203.0.113.1"})
    second = Request({"sender": "p2", "message": "hi"}, ip="127.0.0.1",
                     headers={"X-Forwarded-For": "203.0.113.2"})
    assert asyncio.run(channel.rate_refusal(first)) is None
    assert asyncio.run(channel.rate_refusal(second)) is None
    assert asyncio.run(channel.rate_refusal(first)) is not None


def test_the_rest_channel_writes_the_client_address_over_the_clients() -> None:
    channel = RestInput(rate_limits=limiter(), proxy_hops=0)
    forged = Request({"sender": "s", "message": "hi",
                      "metadata": {"client_address": "6.6.6.6", "page": "/help"}},
                     headers={"X-Forwarded-For": "7.7.7.7"})
    assert channel.get_metadata(forged) == {CLIENT_ADDRESS_KEY: "198.51.100.4", "page": "/help"}
    assert channel.get_metadata(Request({"sender": "s", "metadata": ["x"]})) == {
        CLIENT_ADDRESS_KEY: "198.51.100.4"}
    proxied = RestInput(rate_limits=limiter(), proxy_hops=1)
    assert proxied.get_metadata(forged)[CLIENT_ADDRESS_KEY] == "7.7.7.7"


def test_the_metadata_cap_applies_to_what_the_client_sent() -> None:
    channel = RestInput(rate_limits=limiter(), proxy_hops=0)
    at_cap = Request({"sender": "s", "message": "hi", "metadata": {"x": "y" * 4080}})
    assert len(json.dumps(at_cap.json["metadata"])) <= 4096
    assert channel.refusal(at_cap) is None
    assert len(json.dumps(channel.get_metadata(at_cap))) > 4096  # ours is added after the check


def test_the_rest_channel_reads_its_settings_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMITS", "off")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "2")
    channel = RestInput.from_credentials({"max_message_chars": 100})
    assert channel.rate_limits.enabled is False and channel.proxy_hops == 2
    monkeypatch.setenv("RATE_LIMIT_TURNS_PER_CLIENT", "many")
    with pytest.raises(ValueError):
        RestInput.from_credentials(None)


# ---------------------------------------------------------------- redis:// (shared by replicas)
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free loopback port (skipped where none is installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_two_replicas_share_counts_and_the_record_through_redis(redis_url: str) -> None:
    env = {"RATE_LIMIT_STORAGE": redis_url, "RATE_LIMIT_TURNS_PER_CONVERSATION": "3/minute",
           "RATE_LIMIT_TURNS_PER_CLIENT": "off", "RATE_LIMIT_NEW_CONVERSATIONS_PER_CLIENT":
           "2/minute"}
    first, second = RateLimits.from_env(env), RateLimits.from_env(env)
    assert first.is_remote and second.is_remote
    tag = uuid.uuid4().hex[:8]
    assert first.check("10.5.0.1", f"{tag}-a") is None
    assert second.check("10.5.0.1", f"{tag}-a") is None  # not new on the other replica
    assert second.check("10.5.0.1", f"{tag}-b") is None  # the address's second new one
    assert first.check("10.5.0.1", f"{tag}-c") is not None  # a third: refused on either
    assert first.check("10.5.0.1", f"{tag}-a") is None  # 3 of 3 in that conversation
    retry = second.check("10.5.0.1", f"{tag}-a")
    assert retry is not None and 1 <= retry <= 61


def test_acheck_asks_redis_off_the_event_loop(redis_url: str) -> None:
    limits = RateLimits.from_env({"RATE_LIMIT_STORAGE": redis_url,
                                  "RATE_LIMIT_TURNS_PER_CONVERSATION": "1/minute"})
    sender_id = f"loop-{uuid.uuid4().hex[:8]}"
    threads: List[str] = []
    real = limits.check

    def check(client: str, sender: str) -> Optional[int]:
        threads.append(threading.current_thread().name)
        return real(client, sender)

    limits.check = check  # type: ignore[method-assign]

    async def twice() -> List[Optional[int]]:
        return [await limits.acheck("10.5.0.2", sender_id) for _ in range(2)]

    first, second = asyncio.run(twice())
    assert first is None and second is not None
    assert threading.main_thread().name not in threads
