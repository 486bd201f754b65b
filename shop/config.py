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


# ---------------------------------------------------------------- risk control (shop/risk.py)

RISK_MODES = ("enforce", "monitor")
# Points of each rule, by the reason code it gives (SHOP_RISK_POINTS overrides some of them; 0
# switches a rule off). The score of a change is the sum; at SHOP_RISK_THRESHOLD it is flagged.
DEFAULT_RISK_POINTS: dict[str, int] = {
    "returns_30d": 100,             # per return/exchange in 30 days beyond returns_30d_free
    "returns_90d": 50,              # per return/exchange in 90 days beyond returns_90d_free
    "refund_value_30d": 30,         # refunds requested in 30 days reach refund_value_30d_cents
    "gift_card_refund": 30,         # this change refunds to a gift card that did not pay
    "gift_card_refunds_90d": 70,    # per earlier refund steered to a gift card (90 days)
    "identification_failures": 100,  # failed identifications on the account (id_failure_hours),
                                     # before any change but a cancel
    "address_change": 70,           # an address changed shortly before a change that ships
                                    # goods or credits a gift card
    "high_value": 30,               # the change is worth at least high_value_cents
}
MAX_ID_FAILURE_HOURS = 168  # the risk copy of failed identifications is kept 7 days


@dataclass(frozen=True)
class RiskSettings:
    """Weights and thresholds of the risk score of order changes (docs/risk.md)."""

    mode: str = "enforce"  # enforce: a flagged change is refused; monitor: logged, done anyway
    threshold: int = 100
    points: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RISK_POINTS))
    high_value_cents: int = 100_000
    returns_30d_free: int = 2
    returns_90d_free: int = 3
    refund_value_30d_cents: int = 300_000
    id_failures: int = 3
    id_failure_hours: int = 24
    address_hours: int = 24

    def weight(self, code: str) -> int:
        return self.points.get(code, 0)

    @classmethod
    def from_env(cls) -> RiskSettings:
        mode = os.environ.get("SHOP_RISK_MODE", "").strip().lower() or "enforce"
        if mode not in RISK_MODES:
            raise ConfigError(f"SHOP_RISK_MODE must be one of {', '.join(RISK_MODES)}, not "
                              f"{mode!r}.")
        id_hours = _positive_int("SHOP_RISK_ID_FAILURE_HOURS", 24)
        if id_hours > MAX_ID_FAILURE_HOURS:
            raise ConfigError(f"SHOP_RISK_ID_FAILURE_HOURS must be at most "
                              f"{MAX_ID_FAILURE_HOURS} (failures are kept 7 days), not "
                              f"{id_hours}.")
        return cls(
            mode=mode,
            threshold=_positive_int("SHOP_RISK_THRESHOLD", 100),
            points=parse_risk_points(os.environ.get("SHOP_RISK_POINTS", "")),
            high_value_cents=_dollars("SHOP_RISK_HIGH_VALUE", 100_000),
            returns_30d_free=_non_negative_int("SHOP_RISK_RETURNS_30D_FREE", 2),
            returns_90d_free=_non_negative_int("SHOP_RISK_RETURNS_90D_FREE", 3),
            refund_value_30d_cents=_dollars("SHOP_RISK_REFUND_VALUE_30D", 300_000),
            id_failures=_positive_int("SHOP_RISK_ID_FAILURES", 3),
            id_failure_hours=id_hours,
            address_hours=_positive_int("SHOP_RISK_ADDRESS_HOURS", 24),
        )


def parse_risk_points(raw: str) -> dict[str, int]:
    """`code=points,...` over the defaults (SHOP_RISK_POINTS); unknown codes refuse to start."""
    points = dict(DEFAULT_RISK_POINTS)
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        code, sep, value = (p.strip() for p in entry.partition("="))
        if not sep or code not in DEFAULT_RISK_POINTS:
            raise ConfigError(f"SHOP_RISK_POINTS entry {entry!r} must be code=points with a code "
                              f"of {', '.join(DEFAULT_RISK_POINTS)}.")
        if not re.fullmatch(r"[0-9]{1,5}", value) or int(value) > 10_000:
            raise ConfigError(f"SHOP_RISK_POINTS: the points of {code} must be an integer "
                              f"0-10000, not {value!r}.")
        points[code] = int(value)
    return points


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
    # risk control of order changes (shop/risk.py, docs/risk.md)
    risk: RiskSettings = field(default_factory=RiskSettings)

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
            risk=RiskSettings.from_env(),
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


def _non_negative_int(name: str, default: int) -> int:
    """An integer setting >= 0 (empty = the default); anything else refuses to start."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise ConfigError(f"{name} must be an integer >= 0, not {raw!r}.")
    return int(raw)


def _dollars(name: str, default_cents: int) -> int:
    """A positive amount in dollars (`1000`, `999.50`) as cents; anything else refuses to start."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default_cents
    if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,2})?", raw) or float(raw) <= 0:
        raise ConfigError(f"{name} must be a positive amount in dollars (e.g. 1000 or 999.50), "
                          f"not {raw!r}.")
    return int(round(float(raw) * 100))
