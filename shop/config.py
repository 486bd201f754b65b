"""Settings from environment variables (a shell value always wins; `make` loads `.env`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"
SEED_FILE = DATA_DIR / "db.json"
DEFAULT_DATABASE_URL = "sqlite:///var/shop.db"
MAX_BODY_BYTES = 64 * 1024


PLACEHOLDER_PREFIX = "change-me"  # the values of .env.example: public, so no secret


class ConfigError(RuntimeError):
    """A setting is missing or wrong: the server refuses to start rather than run unsafely."""


AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_AGENT_PASSWORD = 12
DESK_AGENT_ID = "desk"  # the agent AGENT_TOKEN logs in as


@dataclass(frozen=True)
class AgentAccount:
    """A desk agent of SHOP_AGENTS (or AGENT_TOKEN's `desk`): written to table `agents` on start."""

    id: str
    display_name: str
    password: str = field(repr=False)


def _check_agent(agent: AgentAccount, where: str) -> AgentAccount:
    if not AGENT_ID.fullmatch(agent.id):
        raise ConfigError(f"{where}: agent id {agent.id!r} must be 1-64 characters a-z, 0-9, "
                          "'_', '.', '-' (lowercase, starting with a letter or digit).")
    name = agent.display_name
    if not name or len(name) > 100 or not name.isprintable():
        raise ConfigError(f"{where}: agent {agent.id!r} needs a display name of 1-100 "
                          "printable characters.")
    if len(agent.password) < MIN_AGENT_PASSWORD or agent.password.startswith(PLACEHOLDER_PREFIX):
        raise ConfigError(f"{where}: the password of agent {agent.id!r} must have at least "
                          f"{MIN_AGENT_PASSWORD} characters and not be a placeholder.")
    return agent


def parse_agents(raw: str, agent_token: str = "") -> tuple[AgentAccount, ...]:
    """`id:Display name:password,...` (SHOP_AGENTS) plus `desk` when AGENT_TOKEN is set.

    The password is everything after the second colon (so it may hold colons, not commas);
    blanks around entries and fields are ignored. Anything malformed refuses to start, with a
    message that never repeats a password.
    """
    agents: list[AgentAccount] = []
    for n, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ConfigError(f"SHOP_AGENTS entry {n} must be id:Display name:password.")
        agent_id, name, password = (p.strip() for p in parts)
        agents.append(_check_agent(AgentAccount(agent_id, name, password), "SHOP_AGENTS"))
    token = agent_token.strip()
    if token:
        agents.append(_check_agent(AgentAccount(DESK_AGENT_ID, "Desk", token), "AGENT_TOKEN"))
    ids = [a.id for a in agents]
    doubles = sorted({i for i in ids if ids.count(i) > 1})
    if doubles:
        raise ConfigError(f"SHOP_AGENTS / AGENT_TOKEN name agent(s) {', '.join(doubles)} twice "
                          f"(AGENT_TOKEN is agent {DESK_AGENT_ID!r}).")
    return tuple(agents)


def resolve_database_url(url: str) -> str:
    """Make a relative SQLite path relative to the repo root, whatever the working directory."""
    if url.startswith("postgresql://"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; we ship psycopg 3.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            path = REPO_ROOT / rest
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
    return url


@dataclass(frozen=True)
class Settings:
    """Everything the app needs; built from the environment or passed in by tests."""

    database_url: str
    api_token: str
    port: int = 8000
    host: str = "127.0.0.1"
    workers: int = 1
    # threads for database work per worker: SQLite reads are CPU-bound under the GIL, so more
    # threads only add switching (bench: 4 threads 1.4k reads/s, 40 threads 1.1k); raise it for
    # a networked database where queries wait on I/O
    db_threads: int = 4
    max_body_bytes: int = MAX_BODY_BYTES
    # identification lock (shop/identification.py): failed lookups counted per account and per
    # client inside a sliding window; at the maximum the lookup answers 429 until one leaves it
    id_window_seconds: int = 900
    id_max_failures_account: int = 5
    id_max_failures_client: int = 20
    # agent desk (shop/agents.py): the accounts, their session lifetime, the login lock
    agents: tuple[AgentAccount, ...] = ()
    agent_session_seconds: int = 8 * 3600
    agent_login_window_seconds: int = 900
    agent_login_max_failures: int = 5

    @classmethod
    def from_env(cls) -> Settings:
        token = os.environ.get("SHOP_API_TOKEN", "").strip()
        if not token or token.startswith(PLACEHOLDER_PREFIX):
            raise ConfigError(
                "SHOP_API_TOKEN is not set (or is the placeholder of .env.example): the shop "
                "backend refuses to start without a secret bearer token (set it in .env or the "
                "shell; `make install` writes a random one)."
            )
        try:
            port = int(os.environ.get("SHOP_PORT", "8000"))
            workers = int(os.environ.get("SHOP_WORKERS", "1"))
            db_threads = int(os.environ.get("SHOP_DB_THREADS", "4"))
        except ValueError as exc:
            raise ConfigError(
                f"SHOP_PORT / SHOP_WORKERS / SHOP_DB_THREADS must be integers: {exc}") from exc
        id_window = _positive_int("SHOP_ID_WINDOW_SECONDS", 900)
        id_max_account = _positive_int("SHOP_ID_MAX_FAILURES_ACCOUNT", 5)
        id_max_client = _positive_int("SHOP_ID_MAX_FAILURES_CLIENT", 20)
        agents = parse_agents(os.environ.get("SHOP_AGENTS", ""),
                              os.environ.get("AGENT_TOKEN", ""))
        return cls(
            database_url=resolve_database_url(
                os.environ.get("SHOP_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
            ),
            api_token=token,
            port=port,
            host=os.environ.get("SHOP_HOST", "127.0.0.1"),
            workers=max(1, workers),
            db_threads=max(1, db_threads),
            id_window_seconds=id_window,
            id_max_failures_account=id_max_account,
            id_max_failures_client=id_max_client,
            agents=agents,
            agent_session_seconds=_positive_int("SHOP_AGENT_SESSION_SECONDS", 8 * 3600),
            agent_login_window_seconds=_positive_int("SHOP_AGENT_LOGIN_WINDOW_SECONDS", 900),
            agent_login_max_failures=_positive_int("SHOP_AGENT_LOGIN_MAX_FAILURES", 5),
        )


def _positive_int(name: str, default: int) -> int:
    """An integer setting >= 1 (empty = the default); anything else refuses to start."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {raw!r}.")
    return value
