"""Settings that must not be left at their public defaults (issue 22, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, free_port, services_python


def test_the_shop_refuses_the_placeholder_token_of_env_example(tmp_path: Path) -> None:
    example = (ROOT / ".env.example").read_text()
    placeholder = next(line.split("=", 1)[1] for line in example.splitlines()
                       if line.startswith("SHOP_API_TOKEN="))
    env = dict(os.environ, SHOP_API_TOKEN=placeholder, SHOP_PORT=str(free_port()),
               SHOP_DATABASE_URL=f"sqlite:///{tmp_path / 'shop.db'}")
    result = subprocess.run([str(services_python()), "-m", "shop"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "placeholder" in result.stderr
    assert not (tmp_path / "shop.db").exists() or (tmp_path / "shop.db").stat().st_size == 0


def test_every_secret_of_env_example_is_replaced_by_make_install(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_env.py"),
                    str(ROOT / ".env.example"), str(target)], check=True, capture_output=True)
    written = dict(line.split("=", 1) for line in target.read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
    for name in ("SHOP_API_TOKEN", "RASA_AUTH_TOKEN", "ACTIONS_TOKEN"):
        assert written[name] and not written[name].startswith("change-me"), name
        assert len(written[name]) >= 24 and not written[name].startswith("-"), name


def test_rasa_telemetry_is_off() -> None:
    """Nothing about conversations leaves the machine: make exports the opt-out Rasa reads."""
    makefile = (ROOT / "Makefile").read_text()
    assert "export RASA_TELEMETRY_ENABLED := false" in makefile
    probe = "import rasa.telemetry as t; print(t.is_telemetry_enabled())"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=dict(os.environ, RASA_TELEMETRY_ENABLED="false"), timeout=120)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


def test_a_secret_starting_with_a_dash_still_reaches_rasa() -> None:
    """token_urlsafe() starts with "-" one time in 64: passed as "--auth-token=…" it is still
    the token, not an unknown option (a CI run lost its whole stack to that once)."""
    from rasa.__main__ import create_argument_parser

    makefile = (ROOT / "Makefile").read_text()
    assert '--auth-token="$(RASA_AUTH_TOKEN)"' in makefile
    args = create_argument_parser().parse_args(
        ["run", "--enable-api", "--auth-token=-lgGefD0mBEA5Zv_WEKZEQ", "--port", "5005"])
    assert args.auth_token == "-lgGefD0mBEA5Zv_WEKZEQ"
