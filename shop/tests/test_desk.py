"""The agent desk's handoff API: agent login and sessions, the queue, claims, the state machine,
idempotency, the audit and the stats.

The real app and database: in process (`desk` fixture, both backends, with a clock the test
moves, so waiting times and stats are exact and nothing sleeps) and, for the race between
worker processes, `python -m shop` with 2 workers.
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
from sqlalchemy import func, insert, select, text

from shop.agents import sync_agents, verify_password
from shop.config import AgentAccount, ConfigError, Settings, parse_agents
from shop.db import Agent, AgentLoginFailure, DeskAudit, Handoff, init_db, make_engine
from shop.tests.conftest import AUTH, ServerProcess, make_client
from shop.tests.helpers import who

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
PASSWORDS = {"alex": "alex-secret-pw-1", "sam": "sam-secret-pw-22", "kim": "kim-secret-pw-333"}
AGENTS = (AgentAccount("alex", "Alex", PASSWORDS["alex"]),
          AgentAccount("sam", "Sam", PASSWORDS["sam"]),
          AgentAccount("kim", "Kim Lee", PASSWORDS["kim"]))
SHOP_AGENTS = ",".join(f"{a.id}:{a.display_name}:{a.password}" for a in AGENTS)


class Clock:
    """The app's notion of now (Store.clock), moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)


@pytest.fixture
def desk(db_url: str) -> Iterator[Any]:
    """The app with three agents and a clock at T0 (`desk.clock`), both backends."""
    with make_client(db_url, agents=AGENTS) as c:
        c.clock = Clock()
        c.app.state.store.clock = c.clock
        yield c


def login(c: Any, agent_id: str, password: str | None = None) -> dict[str, str]:
    r = c.post("/agents/login", json={"agent_id": agent_id,
                                      "password": password or PASSWORDS[agent_id]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent_id"] == agent_id and body["token"]
    return {"X-Agent-Id": agent_id, "X-Agent-Token": body["token"]}


def open_ticket(c: Any, summary: str = "The shopper wants a person", **fields: Any) -> str:
    headers = who(fields["user_id"]) if fields.get("user_id") else {}
    r = c.post("/handoffs", json={"summary": summary, **fields}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def act(c: Any, agent: dict[str, str], handoff_id: str, action: str,
        body: dict[str, Any] | None = None, **headers: str) -> Any:
    return c.post(f"/desk/handoffs/{handoff_id}/{action}", json=body,
                  headers={**agent, **headers})


def code(r: Any) -> str:
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["code"]


def rows(url: str, model: Any, *where: Any) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model).where(*where)
                                ).scalar_one()
    finally:
        engine.dispose()


def audit_actions(c: Any, agent: dict[str, str], handoff_id: str) -> list[tuple[str, str]]:
    r = c.get("/desk/audit", params={"handoff_id": handoff_id}, headers=agent)
    assert r.status_code == 200, r.text
    return [(e["agent_id"], e["action"]) for e in reversed(r.json()["entries"])]


# every desk endpoint that needs an agent: (method, path, body)
def desk_calls(handoff_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/desk/handoffs", None),
        ("GET", f"/desk/handoffs/{handoff_id}", None),
        ("POST", f"/desk/handoffs/{handoff_id}/claim", None),
        ("POST", f"/desk/handoffs/{handoff_id}/reply-recorded", None),
        ("POST", f"/desk/handoffs/{handoff_id}/release", {"note": "x"}),
        ("POST", f"/desk/handoffs/{handoff_id}/close", {"outcome": "resolved"}),
        ("GET", f"/desk/audit?handoff_id={handoff_id}", None),
        ("GET", "/agents/me", None),
        ("POST", "/agents/logout", None),
    ]


# ---------------------------------------------------------------- authentication


def test_desk_needs_a_live_agent_session(desk: Any, db_url: str) -> None:
    tid = open_ticket(desk)
    alex, sam = login(desk, "alex"), login(desk, "sam")
    wrong = [
        {},                                                     # no agent credentials
        {"X-Agent-Id": "alex"},                                 # id without a token
        {"X-Agent-Token": alex["X-Agent-Token"]},               # token without the id
        {"X-Agent-Id": "alex", "X-Agent-Token": "not-a-session"},
        {"X-Agent-Id": "sam", "X-Agent-Token": alex["X-Agent-Token"]},  # someone else's token
        {"X-Agent-Id": "alex", "X-Agent-Token": PASSWORDS["alex"]},     # the password is not one
        {"X-Agent-Id": "alex", "X-Agent-Token": "x" * 5000},
    ]
    for headers in wrong:
        for method, path, body in desk_calls(tid):
            r = desk.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, path, r.text)
            assert code(r) == "agent_unauthorized"
    # a malformed body or id does not hide the missing session
    r = desk.post("/desk/handoffs/%20bad/close", json={"outcome": 7})
    assert r.status_code == 401
    # the bearer token is still required in front of everything
    r = desk.get("/desk/handoffs", headers={**alex, "Authorization": "Bearer wrong"})
    assert r.status_code == 401 and code(r) == "unauthorized"
    assert desk.get("/desk/handoffs", headers=alex).status_code == 200
    assert desk.get("/agents/me", headers=sam).json()["display_name"] == "Sam"
    # the session ends at logout, and after SHOP_AGENT_SESSION_SECONDS (default 8 h)
    assert desk.post("/agents/logout", headers=alex).status_code == 200
    assert desk.get("/desk/handoffs", headers=alex).status_code == 401
    assert desk.get("/desk/handoffs", headers=sam).status_code == 200
    desk.clock.at(8 * 3600 - 1)
    assert desk.get("/desk/handoffs", headers=sam).status_code == 200
    desk.clock.at(8 * 3600)
    assert code(desk.get("/desk/handoffs", headers=sam)) == "agent_unauthorized"
    # nothing the refused calls asked for happened
    assert rows(db_url, Handoff, Handoff.status != "open") == 0
    assert rows(db_url, DeskAudit, DeskAudit.action.not_in(["login", "logout"])) == 0


def test_a_shopper_request_is_refused_with_403(desk: Any, db_url: str,
                                               seed: dict[str, Any]) -> None:
    """X-Customer-Id (the action server's path) never reaches a desk action, creds or not."""
    uid = next(iter(seed["users"]))
    tid = open_ticket(desk, user_id=uid)
    alex = login(desk, "alex")
    audit_before = rows(db_url, DeskAudit)
    for agent in ({}, alex):
        for method, path, body in desk_calls(tid):
            r = desk.request(method, path, json=body, headers={**agent, **who(uid)})
            assert r.status_code == 403, (path, r.text)
            assert code(r) == "shopper_not_allowed"
    r = desk.post("/agents/login", json={"agent_id": "alex", "password": PASSWORDS["alex"]},
                  headers=who(uid))
    assert (r.status_code, code(r)) == (403, "shopper_not_allowed")
    r = desk.get("/desk/stats", headers=who(uid))
    assert (r.status_code, code(r)) == (403, "shopper_not_allowed")
    assert rows(db_url, DeskAudit) == audit_before
    assert desk.get(f"/desk/handoffs/{tid}", headers=alex).json()["status"] == "open"
    # the session still works without the shopper's header
    assert desk.get("/agents/me", headers=alex).status_code == 200


def test_login_is_rate_limited_per_agent_id(desk: Any, db_url: str) -> None:
    def attempt(agent_id: str, password: str) -> Any:
        return desk.post("/agents/login", json={"agent_id": agent_id, "password": password})

    unknown = attempt("nobody", "whatever-password")
    wrong = attempt("alex", "not-the-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content  # an unknown id and a wrong password look alike
    assert code(wrong) == "agent_login_failed"
    for i in range(4):
        desk.clock.at(10 + i)
        assert attempt("alex", "still-wrong").status_code == 401
    desk.clock.at(100)
    locked = attempt("alex", PASSWORDS["alex"])  # 5 failures: the right password is refused too
    assert locked.status_code == 429 and code(locked) == "agent_login_locked"
    assert locked.headers["Retry-After"] == str(900 - 100)  # until the first failure leaves
    assert attempt("alex", "again-wrong").status_code == 429  # refusals are not counted
    assert rows(db_url, AgentLoginFailure, AgentLoginFailure.agent_id == "alex") == 5
    assert login(desk, "sam")  # the lock is per agent id
    for _ in range(4):
        assert attempt("nobody", "x").status_code == 401
    assert attempt("nobody", "x").status_code == 429  # unknown ids lock the same way
    desk.clock.at(900)  # the first failure has left the 15-minute window
    assert login(desk, "alex")
    assert rows(db_url, AgentLoginFailure, AgentLoginFailure.agent_id == "alex") == 0
    assert attempt("alex", "").status_code == 422  # malformed: not counted
    assert attempt("Alex Smith", "x").status_code == 422
    assert rows(db_url, AgentLoginFailure, AgentLoginFailure.agent_id == "alex") == 0


def test_parallel_wrong_logins_never_pass_the_limit(desk: Any, db_url: str) -> None:
    """10 guesses at once (in-process threads): exactly 5 passwords are checked, 5 refused."""
    n = 10
    statuses: list[int] = []
    barrier = threading.Barrier(n)

    def guess(i: int) -> None:
        barrier.wait()
        statuses.append(desk.post("/agents/login", json={"agent_id": "kim",
                                                         "password": f"guess-{i}"}).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {401: 5, 429: 5}
    assert rows(db_url, AgentLoginFailure, AgentLoginFailure.agent_id == "kim") == 5


# ---------------------------------------------------------------- the queue


def test_listing_is_newest_first_with_the_desk_fields(desk: Any, seed: dict[str, Any]) -> None:
    uid, user = next(iter(seed["users"].items()))
    first = open_ticket(desk, "first")
    desk.clock.at(60)
    second = open_ticket(desk, "second: order problem", user_id=uid,
                         conversation_id="conv-42", reason="asked for a human")
    desk.clock.at(90)
    third = open_ticket(desk, "third")
    alex = login(desk, "alex")
    desk.clock.at(120)
    assert act(desk, alex, first, "claim").status_code == 200
    desk.clock.at(300)
    listed = desk.get("/desk/handoffs", headers=alex).json()["handoffs"]
    assert [t["id"] for t in listed] == [third, second, first]
    by_id = {t["id"]: t for t in listed}
    assert by_id[second] == {
        "id": second, "status": "open", "created_at": "2025-03-01T12:01:00Z",
        "waiting_seconds": 240, "summary": "second: order problem",
        "reason": "asked for a human", "user_id": uid,
        "customer_name": f"{user['name']['first_name']} {user['name']['last_name']}",
        "conversation_id": "conv-42", "queued_at": "2025-03-01T12:01:00Z",
        "claimed_by": None, "claimed_by_name": None, "claimed_at": None,
        "first_agent_reply_at": None, "closed_at": None, "closed_by": None, "outcome": None,
    }
    assert by_id[third]["customer_name"] is None and by_id[third]["waiting_seconds"] == 210
    claimed = by_id[first]
    assert (claimed["status"], claimed["claimed_by"], claimed["claimed_by_name"],
            claimed["claimed_at"], claimed["waiting_seconds"]) == (
        "claimed", "alex", "Alex", "2025-03-01T12:02:00Z", 120)
    opened = desk.get("/desk/handoffs", params={"status": "open"}, headers=alex).json()
    assert [t["id"] for t in opened["handoffs"]] == [third, second]
    only = desk.get("/desk/handoffs", params={"status": "claimed"}, headers=alex).json()
    assert [t["id"] for t in only["handoffs"]] == [first]
    assert desk.get("/desk/handoffs", params={"status": "closed"},
                    headers=alex).json() == {"handoffs": []}
    page = desk.get("/desk/handoffs", params={"limit": 2}, headers=alex).json()
    assert [t["id"] for t in page["handoffs"]] == [third, second]
    assert desk.get(f"/desk/handoffs/{second}", headers=alex).json() == by_id[second]
    for bad in ({"status": "pending"}, {"limit": 0}, {"limit": 501}, {"limit": "ten"}):
        r = desk.get("/desk/handoffs", params=bad, headers=alex)
        assert r.status_code == 422, bad
    for unknown in ("ho_0000000000000000", "%20", "x" * 65):
        r = desk.get(f"/desk/handoffs/{unknown}", headers=alex)
        assert (r.status_code, code(r)) == (404, "handoff_not_found")


# ---------------------------------------------------------------- claims


def _race(n: int, claim: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = claim(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_claims_have_exactly_one_winner(db_url: str) -> None:
    """8 agents claim one ticket at once (in-process threads): one 200, seven 409."""
    team = tuple(AgentAccount(f"agent{i}", f"Agent {i}", f"password-of-agent-{i}")
                 for i in range(8))
    with make_client(db_url, agents=team) as c:
        tid = open_ticket(c)
        sessions = [login(c, a.id, a.password) for a in team]
        results = _race(8, lambda i: act(c, sessions[i], tid, "claim"))
        assert Counter(r.status_code for r in results) == {200: 1, 409: 7}
        winner = next(r.json()["claimed_by"] for r in results if r.status_code == 200)
        for r in results:
            if r.status_code == 409:
                error = r.json()["error"]
                assert error["code"] == "already_claimed"
                assert (error["claimed_by"], error["claimed_by_name"]) == (
                    winner, f"Agent {winner[5:]}")
        assert c.get(f"/desk/handoffs/{tid}", headers=sessions[0]).json()["claimed_by"] == winner
        assert audit_actions(c, sessions[0], tid) == [(winner, "claim")]


@pytest.fixture
def desk_server(db_url: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(db_url, workers=2, env={"SHOP_AGENTS": SHOP_AGENTS})
    try:
        yield srv
    finally:
        srv.stop()


def test_concurrent_claims_across_worker_processes(desk_server: ServerProcess) -> None:
    """3 agents x 2 tickets, all at once, against 2 worker processes: one winner per ticket."""
    with httpx2.Client(base_url=desk_server.base_url, headers=AUTH, timeout=60) as http:
        tickets = [open_ticket(http) for _ in range(2)]
        sessions = {a.id: login(http, a.id) for a in AGENTS}
    jobs = [(tid, agent) for tid in tickets for agent in sessions]

    def claim(i: int) -> Any:
        tid, agent = jobs[i]
        with httpx2.Client(base_url=desk_server.base_url, headers=AUTH, timeout=60) as http:
            return tid, agent, act(http, sessions[agent], tid, "claim")

    results = _race(len(jobs), claim)
    for tid in tickets:
        mine = [(agent, r) for t, agent, r in results if t == tid]
        assert Counter(r.status_code for _, r in mine) == {200: 1, 409: 2}
        winner = next(agent for agent, r in mine if r.status_code == 200)
        assert all(r.json()["error"]["claimed_by"] == winner
                   for _, r in mine if r.status_code == 409)


# ---------------------------------------------------------------- the state machine


def test_state_machine(desk: Any) -> None:
    alex, sam = login(desk, "alex"), login(desk, "sam")
    tid = open_ticket(desk)
    # open: reply and release need a claim first
    for action, body in (("reply-recorded", None), ("release", {"note": "x"})):
        r = act(desk, alex, tid, action, body)
        assert (r.status_code, code(r)) == (409, "not_claimed")
    desk.clock.at(10)
    first = act(desk, alex, tid, "claim")
    assert first.status_code == 200 and first.json()["claimed_by"] == "alex"
    desk.clock.at(15)
    again = act(desk, alex, tid, "claim")  # the holder again: the same answer, no change
    assert again.status_code == 200 and again.json()["claimed_at"] == first.json()["claimed_at"]
    for action, body in (("claim", None), ("reply-recorded", None), ("release", {}),
                         ("close", {"outcome": "resolved"})):
        r = act(desk, sam, tid, action, body)
        assert r.status_code == 409, action
        assert code(r) == ("already_claimed" if action == "claim" else "claimed_by_other")
        assert r.json()["error"]["claimed_by"] == "alex"
    desk.clock.at(20)
    replied = act(desk, alex, tid, "reply-recorded").json()
    assert replied["first_agent_reply_at"] == "2025-03-01T12:00:20Z"
    desk.clock.at(25)
    assert act(desk, alex, tid, "reply-recorded").json()["first_agent_reply_at"] == (
        "2025-03-01T12:00:20Z")  # the first reply's time is kept
    desk.clock.at(30)
    released = act(desk, alex, tid, "release", {"note": "order fixed, the bot can go on"})
    assert released.status_code == 200
    body = released.json()
    assert (body["status"], body["claimed_by"], body["claimed_at"], body["queued_at"],
            body["waiting_seconds"]) == ("open", None, None, "2025-03-01T12:00:30Z", 0)
    desk.clock.at(40)
    taken = act(desk, sam, tid, "claim")  # claim -> release -> claim by another
    assert taken.status_code == 200
    assert (taken.json()["claimed_by"], taken.json()["waiting_seconds"]) == ("sam", 10)
    assert code(act(desk, alex, tid, "release")) == "claimed_by_other"
    desk.clock.at(50)
    closed = act(desk, sam, tid, "close", {"outcome": "resolved", "note": "refund explained"})
    assert closed.status_code == 200
    c = closed.json()
    assert (c["status"], c["outcome"], c["closed_by"], c["claimed_by"], c["closed_at"],
            c["waiting_seconds"]) == ("closed", "resolved", "sam", "sam",
                                      "2025-03-01T12:00:50Z", None)
    # closed is final, for everyone
    for agent in (alex, sam):
        for action, body in (("claim", None), ("reply-recorded", None), ("release", {}),
                             ("close", {"outcome": "unresolved"})):
            r = act(desk, agent, tid, action, body)
            assert (r.status_code, code(r)) == (409, "handoff_closed"), action
    assert desk.get(f"/desk/handoffs/{tid}", headers=alex).json() == c
    assert audit_actions(desk, alex, tid) == [
        ("alex", "claim"), ("alex", "reply_recorded"), ("alex", "release"),
        ("sam", "claim"), ("sam", "close")]
    # an open ticket may be closed by any agent (the shopper left before anyone took it)
    gone = open_ticket(desk)
    r = act(desk, alex, gone, "close", {"outcome": "no_reply"})
    assert r.status_code == 200
    assert (r.json()["claimed_by"], r.json()["closed_by"]) == (None, "alex")


def test_bad_input_is_a_4xx_and_changes_nothing(desk: Any) -> None:
    alex = login(desk, "alex")
    tid = open_ticket(desk)
    assert act(desk, alex, tid, "claim").status_code == 200
    for body in ({"outcome": "fixed"}, {}, {"outcome": "resolved", "extra": 1},
                 {"outcome": "resolved", "note": "x" * 2001},
                 {"outcome": "resolved", "note": "bad\x00char"}, [1, 2], "resolved"):
        r = act(desk, alex, tid, "close", body)
        assert r.status_code == 422, body
    r = desk.post(f"/desk/handoffs/{tid}/close", content=b"{not json",
                  headers={**alex, "Content-Type": "application/json"})
    assert (r.status_code, code(r)) == (422, "malformed_json")
    assert act(desk, alex, tid, "release", {"note": 5}).status_code == 422
    assert act(desk, alex, tid, "release", {"notes": "x"}).status_code == 422
    r = act(desk, alex, "ho_0000000000000000", "claim")
    assert (r.status_code, code(r)) == (404, "handoff_not_found")
    r = act(desk, alex, tid, "claim", None, **{"Idempotency-Key": "has space"})
    assert (r.status_code, code(r)) == (422, "invalid_idempotency_key")
    for params in ({"limit": 0}, {"handoff_id": "x" * 65}, {"agent_id": ""}):
        assert desk.get("/desk/audit", params=params, headers=alex).status_code == 422
    for since in ("yesterday", "2025-03-01T00:00:00"):
        r = desk.get("/desk/stats", params={"since": since})
        assert r.status_code == 422, since
    assert desk.get(f"/desk/handoffs/{tid}", headers=alex).json()["status"] == "claimed"


# ---------------------------------------------------------------- idempotency


def test_writes_replay_their_first_answer(desk: Any, db_url: str) -> None:
    alex, sam = login(desk, "alex"), login(desk, "sam")
    tid = open_ticket(desk)
    key = {"Idempotency-Key": "claim-" + uuid.uuid4().hex}
    first = act(desk, alex, tid, "claim", None, **key)
    desk.clock.at(30)
    replay = act(desk, alex, tid, "claim", None, **key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    # the same key from another agent is another request: refused, nothing claimed
    other = act(desk, sam, tid, "claim", None, **key)
    assert (other.status_code, code(other)) == (422, "idempotency_key_reused")
    # a refusal is stored and replayed too
    refused_key = {"Idempotency-Key": "sam-" + uuid.uuid4().hex}
    refused = act(desk, sam, tid, "claim", None, **refused_key)
    assert refused.status_code == 409
    assert act(desk, sam, tid, "claim", None, **refused_key).json() == refused.json()
    close_key = {"Idempotency-Key": "close-" + uuid.uuid4().hex}
    closed = act(desk, alex, tid, "close", {"outcome": "resolved", "note": "done"}, **close_key)
    assert closed.status_code == 200
    again = act(desk, alex, tid, "close", {"outcome": "resolved", "note": "done"}, **close_key)
    assert (again.status_code, again.json()) == (200, closed.json())
    changed = act(desk, alex, tid, "close", {"outcome": "unresolved"}, **close_key)
    assert (changed.status_code, code(changed)) == (422, "idempotency_key_reused")
    # without the key, closing twice is a refusal
    assert code(act(desk, alex, tid, "close", {"outcome": "resolved"})) == "handoff_closed"
    # one audit row per change, however often it was sent
    assert audit_actions(desk, alex, tid) == [("alex", "claim"), ("alex", "close")]
    # the key fingerprints the ticket too
    other_ticket = open_ticket(desk)
    r = act(desk, alex, other_ticket, "claim", None, **key)
    assert (r.status_code, code(r)) == (422, "idempotency_key_reused")
    assert rows(db_url, Handoff, Handoff.id == other_ticket, Handoff.status == "open") == 1


# ---------------------------------------------------------------- audit


def test_every_agent_action_is_audited(desk: Any, db_url: str) -> None:
    alex = login(desk, "alex")
    desk.clock.at(5)
    kim = login(desk, "kim")
    tid = open_ticket(desk)
    desk.clock.at(10)
    act(desk, kim, tid, "claim")
    desk.clock.at(20)
    act(desk, kim, tid, "reply-recorded")
    desk.clock.at(30)
    act(desk, kim, tid, "release", {"note": "back to the bot"})
    desk.clock.at(40)
    act(desk, alex, tid, "close", {"outcome": "unresolved", "note": "no stock"})
    entries = desk.get("/desk/audit", params={"handoff_id": tid}, headers=alex).json()["entries"]
    assert [(e["agent_id"], e["action"], e["at"], e["outcome"], e["note"]) for e in entries] == [
        ("alex", "close", "2025-03-01T12:00:40Z", "unresolved", "no stock"),
        ("kim", "release", "2025-03-01T12:00:30Z", None, "back to the bot"),
        ("kim", "reply_recorded", "2025-03-01T12:00:20Z", None, None),
        ("kim", "claim", "2025-03-01T12:00:10Z", None, None),
    ]
    assert all(e["handoff_id"] == tid for e in entries)
    kims = desk.get("/desk/audit", params={"agent_id": "kim"}, headers=alex).json()["entries"]
    assert [e["action"] for e in kims] == ["release", "reply_recorded", "claim", "login"]
    everything = desk.get("/desk/audit", headers=alex).json()["entries"]
    assert [e["action"] for e in everything][-2:] == ["login", "login"]
    assert desk.get("/desk/audit", params={"handoff_id": "ho_none"},
                    headers=alex).json() == {"entries": []}
    assert rows(db_url, DeskAudit, DeskAudit.handoff_id == tid) == 4


# ---------------------------------------------------------------- stats


def test_stats_numbers(desk: Any) -> None:
    alex, sam = login(desk, "alex"), login(desk, "sam")

    def ticket(created: int, claim: int | None = None, reply: int | None = None,
               outcome: str | None = None) -> str:
        desk.clock.at(created)
        tid = open_ticket(desk)
        if claim is not None:
            desk.clock.at(created + claim)
            assert act(desk, alex, tid, "claim").status_code == 200
        if reply is not None:
            desk.clock.at(created + reply)
            assert act(desk, alex, tid, "reply-recorded").status_code == 200
        if outcome is not None:
            desk.clock.at(created + 500)
            assert act(desk, alex, tid, "close", {"outcome": outcome}).status_code == 200
        return tid

    empty = desk.get("/desk/stats").json()  # bearer token only: the operator's report
    assert empty == {
        "since": None, "handoffs": {"open": 0, "claimed": 0, "closed": 0, "total": 0},
        "time_to_claim": {"count": 0, "median_seconds": None, "p90_seconds": None},
        "time_to_first_reply": {"count": 0, "median_seconds": None, "p90_seconds": None},
        "outcomes": {"resolved": 0, "unresolved": 0, "no_reply": 0},
    }
    ticket(0, claim=10, reply=30, outcome="resolved")
    ticket(1000, claim=20, reply=60, outcome="unresolved")
    ticket(2000, claim=90)                        # claimed, no reply yet
    ticket(3000)                                  # open
    ticket(4000, outcome="no_reply")              # closed unclaimed
    released = ticket(5000, claim=5)              # claimed, released, claimed again:
    desk.clock.at(5100)                           # the first claim counts
    act(desk, alex, released, "release", {"note": "x"})
    desk.clock.at(5200)
    act(desk, sam, released, "claim")
    stats = desk.get("/desk/stats").json()
    assert stats["handoffs"] == {"open": 1, "claimed": 2, "closed": 3, "total": 6}
    # claims 5, 10, 20, 90: median 15, nearest-rank p90 the 4th; replies 30, 60
    assert stats["time_to_claim"] == {"count": 4, "median_seconds": 15.0, "p90_seconds": 90.0}
    assert stats["time_to_first_reply"] == {"count": 2, "median_seconds": 45.0,
                                            "p90_seconds": 60.0}
    assert stats["outcomes"] == {"resolved": 1, "unresolved": 1, "no_reply": 1}
    recent = desk.get("/desk/stats", params={"since": "2025-03-01T12:33:20Z"}).json()  # 2000 s
    assert recent["since"] == "2025-03-01T12:33:20Z"
    assert recent["handoffs"] == {"open": 1, "claimed": 2, "closed": 1, "total": 4}
    assert recent["time_to_claim"]["count"] == 2 and recent["time_to_first_reply"]["count"] == 0
    assert recent["outcomes"] == {"resolved": 0, "unresolved": 0, "no_reply": 1}
    # the desk's own view agrees
    assert desk.get("/desk/stats", headers=alex).json() == stats


# ---------------------------------------------------------------- accounts and settings


def test_agents_setting_is_parsed_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    agents = parse_agents(" alex:Alex:pass:with:colons , sam : Sam Smith : another-password ,")
    assert [(a.id, a.display_name, a.password) for a in agents] == [
        ("alex", "Alex", "pass:with:colons"), ("sam", "Sam Smith", "another-password")]
    assert "another-password" not in repr(agents)
    assert parse_agents("") == () and parse_agents(" , ") == ()
    desk_only = parse_agents("", "a-shared-desk-token")
    assert [(a.id, a.display_name) for a in desk_only] == [("desk", "Desk")]
    for raw, token in (("alex:Alex", ""), ("alex:Alex:short", ""),
                       ("alex:Alex:change-me-agent-password", ""),
                       ("Alex:Alex:long-enough-password", ""),
                       ("al ex:Alex:long-enough-password", ""),
                       ("alex::long-enough-password", ""),
                       ("alex:A:long-enough-password,alex:B:long-enough-password", ""),
                       ("desk:Desk:long-enough-password", "a-shared-desk-token"),
                       ("", "short")):
        with pytest.raises(ConfigError) as refused:
            parse_agents(raw, token)
        assert "long-enough-password" not in str(refused.value)
    monkeypatch.setenv("SHOP_API_TOKEN", "a-real-token")
    for name in ("SHOP_AGENTS", "AGENT_TOKEN", "SHOP_AGENT_SESSION_SECONDS",
                 "SHOP_AGENT_LOGIN_MAX_FAILURES", "SHOP_AGENT_LOGIN_WINDOW_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    default = Settings.from_env()
    assert default.agents == ()
    assert (default.agent_session_seconds, default.agent_login_max_failures,
            default.agent_login_window_seconds) == (28800, 5, 900)
    monkeypatch.setenv("SHOP_AGENTS", SHOP_AGENTS)
    monkeypatch.setenv("AGENT_TOKEN", "the-shared-desk-token")
    monkeypatch.setenv("SHOP_AGENT_SESSION_SECONDS", "3600")
    monkeypatch.setenv("SHOP_AGENT_LOGIN_MAX_FAILURES", "3")
    s = Settings.from_env()
    assert [a.id for a in s.agents] == ["alex", "sam", "kim", "desk"]
    assert (s.agent_session_seconds, s.agent_login_max_failures) == (3600, 3)
    monkeypatch.setenv("SHOP_AGENT_LOGIN_MAX_FAILURES", "0")
    with pytest.raises(ConfigError):
        Settings.from_env()


def test_agent_accounts_follow_the_settings(sqlite_url: str) -> None:
    """Passwords are stored as scrypt hashes; a new password or a removed agent ends sessions."""
    with make_client(sqlite_url, agents=AGENTS) as c:
        alex, sam = login(c, "alex"), login(c, "sam")
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Agent.id, Agent.password_hash)).all())
    assert stored["alex"].startswith("scrypt$16384$8$1$")
    assert PASSWORDS["alex"] not in stored["alex"]
    assert verify_password(PASSWORDS["alex"], stored["alex"])
    assert not verify_password("wrong", stored["alex"])
    assert sync_agents(engine, AGENTS) == []  # unchanged: nothing written
    with engine.connect() as conn:
        assert dict(conn.execute(select(Agent.id, Agent.password_hash)).all()) == stored
    engine.dispose()
    # restart: alex has a new password, sam is gone, the shared desk token is new
    changed = (AgentAccount("alex", "Alex B.", "alex-new-password"), AGENTS[2],
               *parse_agents("", "a-shared-desk-token"))
    with make_client(sqlite_url, agents=changed) as c:
        assert c.get("/agents/me", headers=alex).status_code == 401
        assert c.get("/agents/me", headers=sam).status_code == 401
        r = c.post("/agents/login", json={"agent_id": "alex", "password": PASSWORDS["alex"]})
        assert r.status_code == 401
        assert c.get("/agents/me", headers=login(c, "alex", "alex-new-password")).json()[
            "display_name"] == "Alex B."
        r = c.post("/agents/login", json={"agent_id": "sam", "password": PASSWORDS["sam"]})
        assert r.status_code == 401
        desk_agent = login(c, "desk", "a-shared-desk-token")
        tid = open_ticket(c)
        assert act(c, desk_agent, tid, "claim").json()["claimed_by_name"] == "Desk"
        # sam's audit rows still name sam
        who_logged_in = {e["agent_id"] for e in c.get(
            "/desk/audit", headers=desk_agent).json()["entries"]}
        assert {"sam", "alex", "desk"} <= who_logged_in
    with make_client(sqlite_url) as c:  # no agents configured: nobody can log in
        r = c.post("/agents/login", json={"agent_id": "alex", "password": "alex-new-password"})
        assert r.status_code == 401
        assert c.get("/desk/handoffs", headers=desk_agent).status_code == 401


def test_an_existing_database_gets_the_desk_columns(db_url: str) -> None:
    """A database made before the desk: init_db adds the columns; old tickets are open."""
    engine = make_engine(db_url)
    new_columns = ("queued_at", "claimed_by", "claimed_at", "first_claimed_at",
                   "first_agent_reply_at", "closed_at", "closed_by", "outcome")
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_handoffs_status_created"))
        for column in new_columns:
            conn.execute(text(f"ALTER TABLE handoffs DROP COLUMN {column}"))
        for table in ("desk_audit", "agent_login_failures", "agent_sessions", "agents"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(insert(Handoff.__table__).values(
            id="ho_old", summary="from before the desk", status="open", created_at=T0))
    assert init_db(engine) is False
    engine.dispose()
    with make_client(db_url, agents=AGENTS) as c:
        c.app.state.store.clock = Clock()
        c.app.state.store.clock.at(75)
        alex = login(c, "alex")
        old = c.get("/desk/handoffs/ho_old", headers=alex).json()
        assert (old["status"], old["queued_at"], old["waiting_seconds"]) == (
            "open", "2025-03-01T12:00:00Z", 75)
        assert act(c, alex, "ho_old", "claim").status_code == 200
