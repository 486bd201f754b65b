"""Fuzzing the OpenAPI spec (no request may cause a server error), and seeding/reset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import func, select

from shop.app import create_app
from shop.config import DATA_DIR, REPO_ROOT, Settings
from shop.db import Order, Product, init_db, make_engine, reset_db
from shop.tests.conftest import AUTH, TOKEN

FUZZ_EXAMPLES = int(os.environ.get("SHOP_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Any:
    import shutil

    db = tmp_path_factory.mktemp("fuzz") / "shop.db"
    shutil.copy(sqlite_template, db)
    app = create_app(Settings(database_url=f"sqlite:///{db}", api_token=TOKEN))
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_no_server_error(fuzz_schema: Any, mode: GenerationMode) -> None:
    """Valid-shaped and malformed input against every operation: never a 5xx.

    (schemathesis' own pytest plugin does not run under pytest 9, so operations are driven
    through hypothesis directly; bounded by SHOP_FUZZ_EXAMPLES per operation.)
    """
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) >= 16
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(headers=AUTH, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            # e.g. GET /products has no input at all that could be made invalid
            assert mode == GenerationMode.NEGATIVE


def test_seed_is_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    assert init_db(engine) is True
    assert init_db(engine) is False
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Order)).scalar_one() == 1000
        assert conn.execute(select(func.count()).select_from(Product)).scalar_one() == 50
        conn.execute(Order.__table__.update().values(status="cancelled"))
        conn.commit()
    reset_db(engine)
    with engine.connect() as conn:
        pending = conn.execute(select(func.count()).select_from(Order)
                               .where(Order.status == "pending")).scalar_one()
    assert pending == 423
    engine.dispose()


def test_seed_is_idempotent_postgresql(pg_cluster: Any) -> None:
    name, url = pg_cluster.fresh()
    try:
        engine = make_engine(url)
        assert init_db(engine) is False  # the template is seeded already
        reset_db(engine)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Order)).scalar_one() == 1000
        engine.dispose()
    finally:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_reset_command_and_shipped_data(tmp_path: Path) -> None:
    assert (DATA_DIR / "LICENSE").exists() and (DATA_DIR / "SOURCE.md").exists()
    env = {**os.environ, "SHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    result = subprocess.run([sys.executable, "-m", "shop.reset"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.db").exists()
    source = "".join(p.read_text() for p in (REPO_ROOT / "shop").glob("*.py"))
    assert "../shared" not in source and "/work/shared" not in source
