"""Helpers every test suite and benchmark shares: free ports, waiting for a server to answer,
the services' interpreter, and the real shop backend as a child process.

Standard library only, so both environments (.venv and .venv-services) can import it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def services_python() -> Path:
    """The interpreter of the services venv (shop, LLM): ``SERVICES_PYTHON`` (exported by the
    Makefile from ``SVC_VENV``), else ``.venv-services`` of this checkout."""
    return Path(os.environ.get("SERVICES_PYTHON") or ROOT / ".venv-services" / "bin" / "python")


def start_service(module: str, env: dict[str, str], log: Path, port: str,
                  timeout: float = 90) -> subprocess.Popen:
    """``python -m <module>`` of the services venv (``shop``, ``llm``) with ``env``, output to
    ``log``, in its own process group; returns once ``/health`` on ``port`` answers."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(services_python()), "-m", module], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout, proc)
    except (RuntimeError, TimeoutError) as exc:
        stop(proc)
        raise RuntimeError(f"{exc}:\n{log.read_text(errors='replace')[-3000:]}") from exc
    return proc


def start_shop(env: dict[str, str], log: Path, timeout: float = 90) -> subprocess.Popen:
    """The real shop backend (SHOP_PORT, SHOP_API_TOKEN, SHOP_DATABASE_URL from ``env``)."""
    return start_service("shop", env, log, env["SHOP_PORT"], timeout)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s: nothing is left running."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers 2xx, failing early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local URLs
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f} s")
