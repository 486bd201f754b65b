"""A value set in the shell wins over .env, through `make run` and honcho down to the processes.

Runs the real `make run` with a one-line Procfile (PROCFILE) whose process prints its settings and
exits, which makes honcho stop: no server is started. Needs what `make run` needs (venvs, a model).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_shell_value_wins_over_env_file(tmp_path: Path) -> None:
    env_file = (ROOT / ".env").read_text()
    assert "SHOP_API_TOKEN=" in env_file and "SHOP_DATABASE_URL=" in env_file
    procfile = tmp_path / "Procfile"
    procfile.write_text("probe: printenv SHOP_API_TOKEN SHOP_DATABASE_URL RASA_PORT\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(SHOP_API_TOKEN="token-from-the-shell",
               SHOP_DATABASE_URL="postgresql+psycopg://shell@localhost/shop")
    env.pop("RASA_PORT", None)  # not in the shell: the .env value (or the default) applies
    run = subprocess.run(["make", "run", f"PROCFILE={procfile}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert "token-from-the-shell" in out, out[-2000:]
    assert "postgresql+psycopg://shell@localhost/shop" in out, out[-2000:]
    env_port = next((line.split("=", 1)[1] for line in env_file.splitlines()
                     if line.startswith("RASA_PORT=")), "5005")
    assert env_port.strip() in out, out[-2000:]
