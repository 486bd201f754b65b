"""GET /customers/lookup: two facts identify; failed attempts lock per account and per client.

Most tests run on SQLite and PostgreSQL (the `client` fixture) with the default limits (5 per
account, 20 per client, 900 s) and a clock the test moves (`Store.clock`), so nothing sleeps.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select

from shop.config import ConfigError, Settings
from shop.db import IdentificationFailure, make_engine
from shop.identification import key_hash
from shop.tests.conftest import AUTH, ServerProcess, make_client

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
WINDOW = 900


class Clock:
    """The lock's notion of now, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)


@pytest.fixture
def clock(client: Any) -> Clock:
    moved = Clock()
    client.app.state.store.clock = moved
    return moved


def lookup(c: Any, client_id: str | None = None, **params: str) -> Any:
    headers = {"X-Client-Id": client_id} if client_id is not None else {}
    return c.get("/customers/lookup", params=params, headers=headers)


def user(seed: dict[str, Any], n: int = 0) -> dict[str, Any]:
    """The n-th seed customer whose name + zip is unique (so a name lookup finds them)."""
    users = list(seed["users"].values())
    counts = Counter((u["name"]["first_name"], u["name"]["last_name"], u["address"]["zip"])
                     for u in users)
    unique = [u for u in users if counts[(u["name"]["first_name"], u["name"]["last_name"],
                                          u["address"]["zip"])] == 1]
    return unique[n]


def by_email(u: dict[str, Any], zip_code: str | None = None) -> dict[str, str]:
    return {"email": u["email"], "zip": zip_code or u["address"]["zip"]}


def by_name(u: dict[str, Any], zip_code: str | None = None) -> dict[str, str]:
    return {"first_name": u["name"]["first_name"], "last_name": u["name"]["last_name"],
            "zip": zip_code or u["address"]["zip"]}


def wrong_zip(u: dict[str, Any]) -> str:
    return "00000" if u["address"]["zip"] != "00000" else "99999"


def unknown_email() -> str:
    return f"nobody-{uuid.uuid4().hex[:8]}@example.com"


def rows(url: str, kind: str | None = None, value: str | None = None) -> int:
    """Failure rows in the database (all, or of one key)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(IdentificationFailure)
            if kind is not None and value is not None:
                query = query.where(IdentificationFailure.key == key_hash(kind, value))
            return conn.execute(query).scalar_one()
    finally:
        engine.dispose()


def account(email: str) -> tuple[str, str]:
    return "account", "email:" + email.strip().casefold()


def assert_locked(r: Any, retry_after: int | None = None) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "identification_locked"
    assert r.json()["error"]["message"]
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= WINDOW
    if retry_after is not None:
        assert wait == retry_after


# ---------------------------------------------------------------- two facts


def test_email_and_zip_identify(client: Any, seed: dict[str, Any]) -> None:
    u = user(seed)
    r = lookup(client, email=f" {u['email'].upper()} ", zip=f"{u['address']['zip']} ")
    assert r.status_code == 200 and r.json() == {"user_id": u["user_id"]}
    name = {k: v.upper() for k, v in by_name(u).items()}
    assert lookup(client, **name).json() == {"user_id": u["user_id"]}


@pytest.mark.parametrize("params,missing", [
    ({"email": "someone@example.com"}, "zip"),
    ({"email": "someone@example.com", "zip": "  "}, "zip"),
    ({"first_name": "Mei", "last_name": "Martin"}, "zip"),
    ({"first_name": "Mei", "zip": "12345"}, "last_name"),
    ({"last_name": "Martin", "zip": "12345"}, "first_name"),
    ({"zip": "12345"}, "first_name, last_name"),
    ({}, "first_name, last_name, zip"),
    ({"email": "", "first_name": "Mei"}, "last_name, zip"),
])
def test_fewer_than_two_facts_is_a_422_that_names_them(
        sqlite_client: Any, sqlite_url: str, params: dict[str, str], missing: str) -> None:
    for _ in range(8):  # more than the account limit: none of them counts
        r = lookup(sqlite_client, "client-a", **params)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "lookup_parameters"
        assert f"(missing: {missing})" in r.json()["error"]["message"]
    assert rows(sqlite_url) == 0


def test_real_email_alone_is_refused_like_any_email(sqlite_client: Any, seed: dict[str, Any],
                                                    sqlite_url: str) -> None:
    u = user(seed)
    real = lookup(sqlite_client, email=u["email"])
    unknown = lookup(sqlite_client, email="nobody@example.com")
    assert real.status_code == unknown.status_code == 422
    assert real.json() == unknown.json()
    assert lookup(sqlite_client, **by_email(u)).status_code == 200


def test_wrong_zip_and_unknown_email_answer_the_same_404(client: Any, seed: dict[str, Any],
                                                        db_url: str) -> None:
    u = user(seed)
    wrong = lookup(client, email=u["email"], zip=wrong_zip(u))
    unknown = lookup(client, email=unknown_email(), zip=u["address"]["zip"])
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.content == unknown.content
    assert wrong.json() == {"error": {"code": "customer_not_found",
                                      "message": "Customer not found."}}
    assert dict(wrong.headers) == dict(unknown.headers)
    # no client id: only the account key counts
    assert rows(db_url) == 2
    assert rows(db_url, *account(u["email"])) == 1


@pytest.mark.parametrize("header", ["x" * 129, "   ", "a\tb"])
def test_malformed_client_id_is_a_422_not_counted(sqlite_client: Any, seed: dict[str, Any],
                                                  sqlite_url: str, header: str) -> None:
    u = user(seed)
    r = lookup(sqlite_client, header, email=u["email"], zip=wrong_zip(u))
    assert r.status_code == 422 and set(r.json()) == {"error"}
    assert rows(sqlite_url) == 0


# ---------------------------------------------------------------- the lock


def test_account_locks_after_five_failures_from_any_clients(
        client: Any, clock: Clock, seed: dict[str, Any], db_url: str) -> None:
    u = user(seed)
    for i in range(5):
        clock.at(i * 10)
        r = lookup(client, f"client-{i}", email=u["email"], zip=wrong_zip(u))
        assert r.status_code == 404, (i, r.text)
    clock.at(60)
    # the right details, from a client never seen before: refused, before any lookup
    r = lookup(client, "client-new", **by_email(u))
    assert_locked(r, retry_after=WINDOW - 60)
    assert f"{WINDOW - 60} seconds" in r.json()["error"]["message"]
    assert_locked(lookup(client, **by_email(u)), retry_after=WINDOW - 60)  # no client id either
    assert rows(db_url, *account(u["email"])) == 5  # refusals are not counted
    # the lock is the account's: the same client may still identify someone else
    other = user(seed, 1)
    assert lookup(client, "client-0", **by_email(other)).json() == {"user_id": other["user_id"]}


def test_locked_unknown_email_answers_exactly_like_a_locked_real_one(
        client: Any, clock: Clock, seed: dict[str, Any]) -> None:
    u = user(seed)
    ghost = unknown_email()
    for i in range(5):
        assert lookup(client, f"c{i}", email=u["email"], zip=wrong_zip(u)).status_code == 404
        assert lookup(client, f"d{i}", email=ghost, zip="12345").status_code == 404
    real = lookup(client, "x", **by_email(u))
    fake = lookup(client, "y", email=ghost, zip=u["address"]["zip"])
    assert_locked(real, WINDOW)
    assert (real.status_code, real.content, dict(real.headers)) == (
        fake.status_code, fake.content, dict(fake.headers))


def test_name_key_locks_whatever_zips_are_tried(client: Any, clock: Clock,
                                                seed: dict[str, Any]) -> None:
    u = user(seed)
    for i in range(5):
        zip_code = f"{10000 + i}" if f"{10000 + i}" != u["address"]["zip"] else "99999"
        params = {**by_name(u, zip_code), "first_name": u["name"]["first_name"].upper()}
        assert lookup(client, f"c{i}", **params).status_code == 404
    assert_locked(lookup(client, "c9", **by_name(u)), WINDOW)
    # the email key is another account key: still open
    assert lookup(client, "c9", **by_email(u)).json() == {"user_id": u["user_id"]}


def test_client_locks_after_twenty_failures_across_accounts(
        client: Any, clock: Clock, seed: dict[str, Any], db_url: str) -> None:
    u = user(seed)
    for i in range(20):
        clock.at(i)
        r = lookup(client, "203.0.113.7", email=unknown_email(), zip="12345")
        assert r.status_code == 404, (i, r.text)
    clock.at(30)
    assert_locked(lookup(client, "203.0.113.7", **by_email(u)), WINDOW - 30)
    assert rows(db_url, "client", "203.0.113.7") == 20
    # another client, or none, identifies the same customer: only that client is locked
    assert lookup(client, "198.51.100.2", **by_email(u)).json() == {"user_id": u["user_id"]}
    assert lookup(client, **by_email(u)).json() == {"user_id": u["user_id"]}


def test_retry_after_and_the_window(client: Any, clock: Clock, seed: dict[str, Any],
                                    db_url: str) -> None:
    u = user(seed)
    bad = {"email": u["email"].upper(), "zip": wrong_zip(u)}
    for i in range(5):  # failures at 0, 10, 20, 30, 40 s
        clock.at(i * 10)
        assert lookup(client, "c", **bad).status_code == 404
    clock.at(50)
    assert_locked(lookup(client, "c", **by_email(u)), WINDOW - 50)
    clock.at(WINDOW - 1)
    assert_locked(lookup(client, "c", **by_email(u)), 1)
    clock.at(WINDOW)  # the failure at 0 s has left the window: one attempt is allowed again
    assert lookup(client, "c", **bad).status_code == 404
    assert_locked(lookup(client, "c", **by_email(u)), 10)  # the one at 10 s leaves next
    clock.at(WINDOW + 10)
    assert lookup(client, "c", **by_email(u)).json() == {"user_id": u["user_id"]}
    # the success cleared the account key (the old rows are gone, not just out of the window)
    assert rows(db_url, *account(u["email"])) == 0


def test_success_clears_the_account_not_the_client(client: Any, clock: Clock,
                                                   seed: dict[str, Any], db_url: str) -> None:
    u = user(seed)
    for _ in range(4):
        assert lookup(client, "shared", email=u["email"], zip=wrong_zip(u)).status_code == 404
    assert lookup(client, "shared", **by_email(u)).status_code == 200
    assert rows(db_url, *account(u["email"])) == 0
    assert rows(db_url, "client", "shared") == 4
    for _ in range(5):  # a fresh count of 5: the 4 before no longer weigh
        assert lookup(client, "other", email=u["email"], zip=wrong_zip(u)).status_code == 404
    assert_locked(lookup(client, "other", **by_email(u)))
    assert rows(db_url, "client", "shared") == 4


def test_old_failures_are_pruned(client: Any, clock: Clock, db_url: str) -> None:
    for i in range(3):
        assert lookup(client, f"old-{i}", email=unknown_email(), zip="1").status_code == 404
    assert rows(db_url) == 6
    clock.at(WINDOW + 1)
    assert lookup(client, "new", email=unknown_email(), zip="1").status_code == 404
    assert rows(db_url) == 2  # only the new failure's two keys are left


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", "a-real-token")
    for name in ("SHOP_ID_WINDOW_SECONDS", "SHOP_ID_MAX_FAILURES_ACCOUNT",
                 "SHOP_ID_MAX_FAILURES_CLIENT"):
        monkeypatch.delenv(name, raising=False)
    default = Settings.from_env()
    assert (default.id_window_seconds, default.id_max_failures_account,
            default.id_max_failures_client) == (900, 5, 20)
    monkeypatch.setenv("SHOP_ID_WINDOW_SECONDS", "60")
    monkeypatch.setenv("SHOP_ID_MAX_FAILURES_ACCOUNT", "3")
    monkeypatch.setenv("SHOP_ID_MAX_FAILURES_CLIENT", "7")
    s = Settings.from_env()
    assert (s.id_window_seconds, s.id_max_failures_account, s.id_max_failures_client) == (
        60, 3, 7)
    for bad in ("0", "-1", "ten"):
        monkeypatch.setenv("SHOP_ID_MAX_FAILURES_ACCOUNT", bad)
        with pytest.raises(ConfigError):
            Settings.from_env()


def test_small_settings_are_applied(sqlite_url: str, seed: dict[str, Any]) -> None:
    u = user(seed)
    with make_client(sqlite_url, id_window_seconds=2, id_max_failures_account=2,
                     id_max_failures_client=3) as c:
        clock = Clock()
        c.app.state.store.clock = clock
        for _ in range(2):
            assert lookup(c, "a", email=u["email"], zip=wrong_zip(u)).status_code == 404
        r = lookup(c, "a", **by_email(u))
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        clock.at(2)  # both failures have left the 2 s window
        assert lookup(c, "a", **by_email(u)).status_code == 200
        for _ in range(3):
            assert lookup(c, "a", email=unknown_email(), zip="1").status_code == 404
        assert lookup(c, "a", **by_email(u)).status_code == 429  # client: 3 failures in 2 s
        assert lookup(c, "b", **by_email(u)).status_code == 200


# ---------------------------------------------------------------- concurrency


def test_parallel_failures_count_exactly(db_url: str) -> None:
    """16 threads fail at once from one client (in-process app, both backends): 16 rows."""
    with make_client(db_url, id_max_failures_client=20) as c:
        barrier = threading.Barrier(16)
        statuses: list[int] = []

        def fail() -> None:
            barrier.wait()
            statuses.append(lookup(c, "burst", email=unknown_email(), zip="1").status_code)

        threads = [threading.Thread(target=fail) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [404] * 16
        assert rows(db_url, "client", "burst") == 16
        for _ in range(4):
            assert lookup(c, "burst", email=unknown_email(), zip="1").status_code == 404
        assert lookup(c, "burst", email=unknown_email(), zip="1").status_code == 429


@pytest.fixture
def limited_server(db_url: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(db_url, workers=2, env={"SHOP_ID_MAX_FAILURES_ACCOUNT": "5",
                                                "SHOP_ID_MAX_FAILURES_CLIENT": "20",
                                                "SHOP_ID_WINDOW_SECONDS": "900"})
    try:
        yield srv
    finally:
        srv.stop()


def test_parallel_guesses_never_pass_the_limit(limited_server: ServerProcess, db_url: str,
                                               seed: dict[str, Any]) -> None:
    """12 guesses at once against 2 worker processes: exactly 5 are looked up, 7 refused."""
    u = user(seed)
    n = 12
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def guess(i: int) -> None:
        with httpx2.Client(base_url=limited_server.base_url, headers=AUTH, timeout=60) as http:
            barrier.wait()
            results[i] = http.get("/customers/lookup",
                                  params={"email": u["email"], "zip": f"{20000 + i}"},
                                  headers={"X-Client-Id": f"guesser-{i}"})

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = Counter(r.status_code for r in results)
    assert statuses == {404: 5, 429: n - 5}, statuses
    assert all(r.headers["Retry-After"] for r in results if r.status_code == 429)
    assert rows(db_url, *account(u["email"])) == 5
    with httpx2.Client(base_url=limited_server.base_url, headers=AUTH, timeout=60) as http:
        right = http.get("/customers/lookup", params=by_email(u))
        assert right.status_code == 429  # the right details too, while locked
