"""Tracker and lock stores configured by one URL from the environment.

Rasa's SQL tracker store takes dialect/host/port/db separately and ``endpoints.yml``
fails on unset ``${VARS}``; operators think in URLs. ``TRACKER_DB_URL`` (default: a
SQLite file under ``var/``) and ``LOCK_STORE_URL`` (default: in memory; ``redis://…``
switches to Redis) are read here so the same ``endpoints.yml`` serves every setup.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

DEFAULT_TRACKER_DB_URL = "sqlite:///var/tracker.db"


class UrlSQLTrackerStore(SQLTrackerStore):
    """Rasa's ``SQLTrackerStore`` built from ``TRACKER_DB_URL``."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[str] = None,
        event_broker: Any = None,
        url_env: str = "TRACKER_DB_URL",
        **kwargs: Any,
    ) -> None:
        url = make_url(os.environ.get(url_env) or host or DEFAULT_TRACKER_DB_URL)
        if url.drivername.startswith("sqlite") and url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        logger.info("Tracker store: %s", url.render_as_string(hide_password=True))
        super().__init__(
            domain=domain,
            dialect=url.drivername,
            host=url.host,
            port=url.port,
            db=url.database or "rasa.db",
            username=url.username,
            password=url.password,
            query=dict(url.query),
            event_broker=event_broker,
            **kwargs,
        )


class UrlLockStore(LockStore):
    """In-memory lock store, or Redis when ``LOCK_STORE_URL`` is a ``redis://`` URL."""

    def __new__(cls, endpoint_config: Any = None, url_env: str = "LOCK_STORE_URL") -> LockStore:  # type: ignore[misc]
        raw = os.environ.get(url_env, "").strip()
        if not raw or raw == "memory":
            # Rasa counts any custom lock store as safe for several Sanic workers
            # (rasa.core.utils._lock_store_is_multi_worker_compatible), but locks in memory are
            # per process: two workers would interleave one conversation's turns. Refuse.
            workers = os.environ.get("SANIC_WORKERS", "1").strip() or "1"
            if workers.isdigit() and int(workers) > 1:
                raise ValueError(f"SANIC_WORKERS={workers} needs a shared lock store: set "
                                 f"{url_env}=redis://host:6379/1 (the in-memory one is per "
                                 "process and would mix up conversations)")
            return InMemoryLockStore()
        url = make_url(raw)
        if url.drivername not in ("redis", "rediss"):
            raise ValueError(f"{url_env} must be empty, 'memory' or a redis:// URL")
        return RedisLockStore(
            host=url.host or "localhost",
            port=url.port or 6379,
            db=int(url.database or 1),
            username=url.username,
            password=url.password,
            use_ssl=url.drivername == "rediss",
        )
