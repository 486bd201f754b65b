"""Fixtures: a seeded database per test on SQLite and on a throwaway PostgreSQL cluster.

The PostgreSQL cluster is created with initdb + pg_ctl in a temp dir on a free port (as the
`postgres` user when the tests run as root, since initdb refuses root). Without PostgreSQL binaries
the PostgreSQL half is skipped locally and fails when CI=true.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from shop.app import create_app
from shop.config import REPO_ROOT, SEED_FILE, Settings
from shop.db import init_db, make_engine
from tests.support import free_port

TOKEN = "test-token-" + uuid.uuid4().hex[:8]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICES_PY = REPO_ROOT / ".venv-services" / "bin" / "python"


@pytest.fixture(scope="session")
def seed() -> dict[str, Any]:
    return json.loads(SEED_FILE.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "shop.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()  # last connection closed: WAL checkpointed into the main file
    return path


def fresh_sqlite(template: Path, directory: Path) -> str:
    target = directory / f"shop-{uuid.uuid4().hex[:8]}.db"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PgCluster:
    """A private PostgreSQL server for this test session."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            message = "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="shop-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run([pg_ctl, "-D", str(self.data), "-o", options, "-l",
                   str(self.root / "log"), "-w", "-t", "60", "start"])
        self.base = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        self.admin("CREATE DATABASE shop_template")
        engine = make_engine(f"{self.base}/shop_template")
        init_db(engine)
        engine.dispose()

    def _run(self, cmd: list[str]) -> None:
        result = subprocess.run(self.prefix + cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {result.stdout}\n{result.stderr}")

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self) -> tuple[str, str]:
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin(f"CREATE DATABASE {name} TEMPLATE shop_template")
        return name, f"{self.base}/{name}"

    def stop(self) -> None:
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", "immediate",
                                      "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


# ---------------------------------------------------------------- per-test database and client


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """A freshly seeded database of each backend."""
    if request.param == "sqlite":
        yield fresh_sqlite(sqlite_template, tmp_path)
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name, url = cluster.fresh()
    yield url
    cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return fresh_sqlite(sqlite_template, tmp_path)


def make_client(url: str, **settings: Any) -> TestClient:
    app = create_app(Settings(database_url=url, api_token=TOKEN, **settings))
    client = TestClient(app, raise_server_exceptions=True)
    client.headers.update(AUTH)
    return client


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    """The app in process, on both backends."""
    with make_client(db_url) as c:
        yield c


@pytest.fixture
def sqlite_client(sqlite_url: str) -> Iterator[TestClient]:
    """The app in process on SQLite only (for backend-independent checks)."""
    with make_client(sqlite_url) as c:
        yield c


class ServerProcess:
    """`python -m shop` in its own process(es), over real sockets."""

    def __init__(self, url: str, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SHOP_DATABASE_URL": url, "SHOP_API_TOKEN": TOKEN,
               "SHOP_PORT": str(self.port), "SHOP_WORKERS": str(workers), **(env or {})}
        python = str(SERVICES_PY) if SERVICES_PY.exists() else sys.executable
        self.proc = subprocess.Popen([python, "-m", "shop"], cwd=REPO_ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        import httpx2

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shop exited: {self.proc.stderr.read().decode()}")
            try:
                if httpx2.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("shop did not start in 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(db_url: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(db_url, workers=2)
    try:
        yield srv
    finally:
        srv.stop()
