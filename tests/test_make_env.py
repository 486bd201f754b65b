"""`make install`'s .env (scripts/make_env.py): fresh random secrets, the agent desk's shared
password among them; and a value set in the shell wins over .env, through `make run` and honcho
down to the processes.

The shell test runs the real `make run` with a one-line Procfile (PROCFILE) whose process prints
its settings and exits, which makes honcho stop: no server is started. Needs what `make run`
needs (venvs, a model). The desk login is tried on a real shop (services venv).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
import requests

from tests.support import free_port, services_python, start_shop, stop

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("SHOP_API_TOKEN", "RASA_AUTH_TOKEN", "ACTIONS_TOKEN", "WEB_SESSION_SECRET",
             "AGENT_TOKEN")


def make_env(target: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "make_env.py"),
                           str(ROOT / ".env.example"), str(target)],
                          check=True, capture_output=True, text=True, timeout=60)


def settings(text: str) -> Dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.lstrip().startswith("#"))


def test_make_env_generates_every_secret_and_the_desk_password(tmp_path: Path) -> None:
    example = (ROOT / ".env.example").read_text()
    assert "AGENT_TOKEN" in settings(example)  # a setting of its own, not a comment
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    run = make_env(first)
    make_env(second)
    written, other = settings(first.read_text()), settings(second.read_text())
    for name in GENERATED:
        value = written.get(name, "")
        assert len(value) == 48 and all(c in "0123456789abcdef" for c in value), (name, value)
        assert value != other[name] and value != settings(example)[name], name
    # every other line is .env.example's, in its order
    kept = [line for line in first.read_text().splitlines()
            if line.split("=", 1)[0] not in GENERATED]
    assert kept == [line for line in example.splitlines()
                    if line.split("=", 1)[0] not in GENERATED]
    # it says where the desk's password is, and never prints a secret
    assert "'desk'" in run.stderr and f"AGENT_TOKEN in {first}" in run.stderr
    assert not any(written[name] in run.stdout + run.stderr for name in GENERATED)
    # an existing .env is never overwritten
    before = first.read_text()
    make_env(first)
    assert first.read_text() == before


def test_the_generated_desk_password_logs_in_on_the_shop(tmp_path: Path) -> None:
    """What a fresh `make run` gets: the shop takes .env's AGENT_TOKEN as agent `desk`."""
    if not services_python().exists():
        pytest.skip(f"{services_python()} missing: run `make install`")
    make_env(tmp_path / ".env")
    agent_token = settings((tmp_path / ".env").read_text())["AGENT_TOKEN"]
    port, token = free_port(), secrets.token_hex(24)
    env = {**os.environ, "SHOP_PORT": str(port), "SHOP_API_TOKEN": token,
           "SHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
           "AGENT_TOKEN": agent_token, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("SHOP_WORKERS", "SHOP_AGENTS"):
        env.pop(name, None)
    proc = start_shop(env, tmp_path / "shop.log")
    try:
        r = requests.post(f"http://127.0.0.1:{port}/agents/login", timeout=10,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"agent_id": "desk", "password": agent_token})
        assert r.status_code == 200, r.text
        assert r.json()["agent_id"] == "desk" and r.json()["token"]
    finally:
        stop(proc)


def test_shell_value_wins_over_env_file(tmp_path: Path) -> None:
    env_file = (ROOT / ".env").read_text()
    assert "SHOP_API_TOKEN=" in env_file and "SHOP_DATABASE_URL=" in env_file
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "probe: printenv SHOP_API_TOKEN SHOP_DATABASE_URL AGENT_TOKEN RASA_PORT\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(SHOP_API_TOKEN="token-from-the-shell",
               SHOP_DATABASE_URL="postgresql+psycopg://shell@localhost/shop",
               AGENT_TOKEN="desk-password-from-the-shell")
    env.pop("RASA_PORT", None)  # not in the shell: the .env value (or the default) applies
    run = subprocess.run(["make", "run", f"PROCFILE={procfile}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert "token-from-the-shell" in out, out[-2000:]
    assert "postgresql+psycopg://shell@localhost/shop" in out, out[-2000:]
    assert "desk-password-from-the-shell" in out, out[-2000:]
    env_port = next((line.split("=", 1)[1] for line in env_file.splitlines()
                     if line.startswith("RASA_PORT=")), "5005")
    assert env_port.strip() in out, out[-2000:]
