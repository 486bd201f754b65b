"""Desk agents: accounts from the settings, password login with a lock, sessions.

Agents act on handoff tickets through the desk endpoints (shop/routes/desk.py) on behalf of the
agent desk (the web server calls the shop for them). Every desk request carries the shop's bearer
token, like any call, **and** `X-Agent-Id` + `X-Agent-Token`, a session token from
`POST /agents/login`. A shopper's path (the action server: bearer token and `X-Customer-Id`)
holds neither an agent password nor a session, and a request carrying `X-Customer-Id` is
refused on every desk endpoint (403) before any credential is looked at.

- **Accounts**: `SHOP_AGENTS` (`id:Display name:password,...`) and/or `AGENT_TOKEN` (agent
  `desk`), written to table `agents` on start (`sync_agents`): passwords as salted scrypt hashes
  (`hashlib.scrypt`, n=2^14, r=8, p=1); an agent dropped from the settings is deactivated (kept:
  the audit names it), and a changed password or a deactivation ends its sessions.
- **Login** (`login`): one failed attempt per agent id is counted in table
  `agent_login_failures` *before* the password is checked (so a burst of parallel guesses never
  gets more than the maximum of tries); at `SHOP_AGENT_LOGIN_MAX_FAILURES` inside
  `SHOP_AGENT_LOGIN_WINDOW_SECONDS` the login answers 429 with `Retry-After`, right password or
  not. A success removes the agent's counted failures. Unknown ids, inactive agents and wrong
  passwords get the same 401 (and the same scrypt work).
- **Sessions**: a random 256-bit token, stored as its SHA-256 in `agent_sessions`, valid
  `SHOP_AGENT_SESSION_SECONDS` (default 8 h); `POST /agents/logout` ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from shop.config import AgentAccount
from shop.db import Agent, AgentLoginFailure, AgentSession, DeskAudit, aware, write_engine
from shop.errors import ShopError
from shop.schemas import AgentOut, LoginOut

if TYPE_CHECKING:
    from shop.deps import Store

SCRYPT_N, SCRYPT_R, SCRYPT_P, DKLEN = 2**14, 8, 1, 32
PRUNE_BATCH = 500
UNAUTHORIZED = "agent_unauthorized"
LOGIN_FAILED = "agent_login_failed"
LOGIN_LOCKED = "agent_login_locked"


# ---------------------------------------------------------------- passwords


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string (False if malformed)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        given = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(given, expected)


# work of a check against no account, so an unknown id costs what a known one does
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _advisory_lock(session: Session, name: str) -> None:
    """Serialise work on one name on PostgreSQL (SQLite: BEGIN IMMEDIATE already did)."""
    if session.get_bind().dialect.name == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(lock_id)))


# ---------------------------------------------------------------- accounts


def sync_agents(engine: Engine, accounts: tuple[AgentAccount, ...]) -> list[str]:
    """Make table `agents` match the settings; returns the ids whose account changed.

    New agents are added; a changed display name or password is written (a new password ends
    the agent's sessions); agents no longer configured are deactivated and their sessions
    ended. Workers starting together do this one after the other (write lock / advisory lock),
    and an unchanged password is only verified, not re-hashed.
    """
    changed: list[str] = []
    wanted = {a.id: a for a in accounts}
    with Session(write_engine(engine)) as session, session.begin():
        _advisory_lock(session, "shop:agents")
        existing = {a.id: a for a in session.scalars(select(Agent)).all()}
        for agent_id, account in wanted.items():
            row = existing.get(agent_id)
            if row is None:
                session.add(Agent(id=agent_id, display_name=account.display_name,
                                  password_hash=hash_password(account.password), active=True))
                changed.append(agent_id)
                continue
            new_password = not verify_password(account.password, row.password_hash)
            if new_password:
                row.password_hash = hash_password(account.password)
            if new_password or not row.active:
                session.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))
            if new_password or not row.active or row.display_name != account.display_name:
                row.display_name, row.active = account.display_name, True
                changed.append(agent_id)
        for agent_id, row in existing.items():
            if agent_id not in wanted and row.active:
                row.active = False
                session.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))
                changed.append(agent_id)
    return changed


# ---------------------------------------------------------------- login


def _login_wait(session: Session, agent_id: str, limit: int, window: timedelta,
                now: datetime) -> int:
    """Seconds until `agent_id` has fewer than `limit` failures in the window (0: not locked)."""
    F = AgentLoginFailure
    times = session.scalars(
        select(F.failed_at).where(F.agent_id == agent_id, F.failed_at > now - window)
        .order_by(F.failed_at)
    ).all()
    if len(times) < limit:
        return 0
    leaves = aware(times[len(times) - limit]) + window
    return max(1, math.ceil((leaves - now).total_seconds()))


def login_locked(retry_after: int) -> ShopError:
    return ShopError(429, LOGIN_LOCKED,
                     f"Too many failed logins for this agent; try again in {retry_after} seconds.",
                     headers={"Retry-After": str(retry_after)})


def login(store: Store, agent_id: str, password: str) -> LoginOut:
    """A session for the agent, or 401 `agent_login_failed` / 429 `agent_login_locked`.

    Blocking (scrypt and the database): run it in the thread pool. The attempt is counted as a
    failure in a first transaction, under a lock on the agent id, before the password is
    checked outside it (scrypt holds no database lock); a success then removes the agent's
    failures and opens the session. So N parallel guesses make at most the maximum of checks.
    """
    settings = store.settings
    window = timedelta(seconds=settings.agent_login_window_seconds)
    refusal: ShopError | None = None
    stored: str | None = None  # the active agent's password hash
    with Session(store.writer, expire_on_commit=False) as session, session.begin():
        _advisory_lock(session, f"shop:agent-login:{agent_id}")
        now = store.clock()
        wait = _login_wait(session, agent_id, settings.agent_login_max_failures, window, now)
        if wait:
            refusal = login_locked(wait)
        else:
            session.add(AgentLoginFailure(agent_id=agent_id, failed_at=now))
            session.flush()
            _prune_failures(session, now - window)
            agent = session.get(Agent, agent_id)
            stored = agent.password_hash if agent is not None and agent.active else None
    if refusal is not None:
        raise refusal  # not counted: hammering a locked id does not extend its lock
    good = verify_password(password, stored if stored is not None else _DUMMY_HASH)
    if not good or stored is None:
        raise ShopError(401, LOGIN_FAILED, "Unknown agent or wrong password.")
    token = secrets.token_urlsafe(32)
    with Session(store.writer, expire_on_commit=False) as session, session.begin():
        now = store.clock()
        session.execute(delete(AgentLoginFailure).where(
            AgentLoginFailure.agent_id == agent_id).execution_options(synchronize_session=False))
        # the agent may have been deactivated while its password was checked
        current = session.get(Agent, agent_id)
        if current is None or not current.active:
            raise ShopError(401, LOGIN_FAILED, "Unknown agent or wrong password.")
        expires = now + timedelta(seconds=settings.agent_session_seconds)
        session.add(AgentSession(token_hash=token_hash(token), agent_id=agent_id,
                                 created_at=now, expires_at=expires))
        session.execute(delete(AgentSession).where(AgentSession.token_hash.in_(
            select(AgentSession.token_hash).where(AgentSession.expires_at <= now)
            .limit(PRUNE_BATCH).scalar_subquery())).execution_options(
            synchronize_session=False))
        session.add(DeskAudit(at=now, agent_id=agent_id, action="login"))
    return LoginOut(agent_id=agent_id, display_name=current.display_name, token=token,
                    expires_at=expires)


def _prune_failures(session: Session, before: datetime) -> None:
    F = AgentLoginFailure
    expired = (select(F.id).where(F.failed_at <= before).limit(PRUNE_BATCH)
               .with_for_update(skip_locked=True))
    session.execute(delete(F).where(F.id.in_(expired)).execution_options(
        synchronize_session=False))


# ---------------------------------------------------------------- sessions


def authenticate(session: Session, agent_id: str, token: str, now: datetime) -> AgentOut | None:
    """The agent of a live session whose token and agent id match, else None."""
    row = session.execute(
        select(AgentSession.agent_id, AgentSession.expires_at, Agent.display_name)
        .join(Agent, Agent.id == AgentSession.agent_id)
        .where(AgentSession.token_hash == token_hash(token), Agent.active.is_(True))
    ).first()
    if row is None or not hmac.compare_digest(row.agent_id.encode(), agent_id.encode()):
        return None
    expires = aware(row.expires_at)
    if expires <= now:
        return None
    return AgentOut(agent_id=row.agent_id, display_name=row.display_name, expires_at=expires)


def logout(session: Session, agent: AgentOut, token: str, now: datetime) -> AgentOut:
    """End this session (the agent's others stay)."""
    session.execute(delete(AgentSession).where(AgentSession.token_hash == token_hash(token)))
    session.add(DeskAudit(at=now, agent_id=agent.agent_id, action="logout"))
    return agent
