"""Drives the whole assistant through Rasa's REST channel, as a shopper would.

Starts the real processes — shop backend (on a copy of its seeded database), action server
and Rasa server with the trained model and the SQL tracker store — on free ports, and
offers `Conversation.say()` returning what the shopper sees. Part 2 adds database checks
through `Stack.shop_db`.

For the reliability suite and the benchmarks (additive): per-process environment overrides
(e.g. the action server's SHOP_URL / LLM_BASE_URL pointed at a fault-injecting proxy), another
model (`Stack.model`), the real LLM service (`Stack.start_llm`), killing and restarting one
process (`Stack.kill`, `Stack.restart`), and read-only queries of the shop database
(`Stack.shop_query`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support import free_port, services_python, wait_http  # noqa: F401 - re-exported

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
SERVICES_PYTHON = services_python()


@dataclass
class Process:
    """A child process with its log file, stopped with its whole process group."""

    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """The running assistant: shop, action server and Rasa server on free ports."""

    workdir: Path
    env: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)
    # a model file or a folder of models (Rasa loads the latest); default: the project's models/
    model: Path = ROOT / "models"
    # extra environment of one process, by name ("shop", "actions", "rasa", "llm")
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.env['RASA_PORT']}"

    @property
    def shop_url(self) -> str:
        return self.env["SHOP_URL"]

    @property
    def tracker_db(self) -> Path:
        return Path(self.env["TRACKER_DB_URL"].removeprefix("sqlite:///"))

    @property
    def shop_db(self) -> Path:
        return Path(self.env["SHOP_DATABASE_URL"].removeprefix("sqlite:///"))

    @property
    def llm_url(self) -> str:
        return f"http://127.0.0.1:{self.env['LLM_PORT']}/v1"

    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.workdir / f"{name}.log"
        env = {**self.env, **self.overrides.get(name, {})}
        popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(name, popen, log)
        self.processes[name] = process
        return process

    def start_shop(self) -> None:
        proc = self._spawn("shop", [str(SERVICES_PYTHON), "-m", "shop"])
        wait_http(f"{self.shop_url}/health", 60, proc.popen)

    def start_actions(self) -> None:
        proc = self._spawn("actions", [str(VENV_BIN / "rasa"), "run", "actions", "--actions",
                                       "actions", "--port", self.env["ACTIONS_PORT"]])
        wait_http(f"http://127.0.0.1:{self.env['ACTIONS_PORT']}/health", 90, proc.popen)

    def start_rasa(self) -> None:
        proc = self._spawn("rasa", [
            str(VENV_BIN / "rasa"), "run", "--model", str(self.model),
            "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
            "--port", self.env["RASA_PORT"], "--enable-api",
            # one argument: a token may start with "-", which argparse would take for an option
            f"--auth-token={self.env['RASA_AUTH_TOKEN']}",
        ])
        # HARNESS_RASA_TIMEOUT: more than the default 180 s on a machine busy with training
        timeout = float(os.environ.get("HARNESS_RASA_TIMEOUT") or 180)
        wait_http(f"{self.rasa_url}/status?token={self.env['RASA_AUTH_TOKEN']}", timeout,
                  proc.popen)

    def start_llm(self) -> None:
        """The real LLM service (OpenAI-compatible, embedded model) on LLM_PORT."""
        self.env.setdefault("LLM_PORT", str(free_port()))
        proc = self._spawn("llm", [str(SERVICES_PYTHON), "-m", "llm"])
        wait_http(f"http://127.0.0.1:{self.env['LLM_PORT']}/health", 180, proc.popen)

    def start(self, name: str) -> None:
        """(Re)start one process by name: shop, llm, actions or rasa."""
        getattr(self, f"start_{name}")()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one process (and its process group) with ``sig``; SIGKILL by default."""
        self.processes[name].stop(sig)

    def restart(self, name: str, sig: int = signal.SIGKILL) -> float:
        """Kill one process with ``sig`` and start it again; returns the restart seconds."""
        self.kill(name, sig)
        started = time.monotonic()
        self.start(name)
        return time.monotonic() - started

    def pid(self, name: str) -> int:
        return self.processes[name].popen.pid

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def shop_query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query on the shop's SQLite database (safe while it runs)."""
        con = sqlite3.connect(f"file:{self.shop_db}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def tracker_query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query on the SQL tracker store (table ``events``)."""
        con = sqlite3.connect(f"file:{self.tracker_db}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def conversation(self, sender: str | None = None) -> Conversation:
        return Conversation(self, sender or f"test-{uuid.uuid4().hex[:12]}")

    def tracker(self, sender: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.env["RASA_AUTH_TOKEN"]}, timeout=10,
        )
        response.raise_for_status()
        return response.json()


@dataclass
class Conversation:
    """One shopper talking to the assistant over the REST channel."""

    stack: Stack
    sender: str
    transcript: list[tuple[str, list[str]]] = field(default_factory=list)
    # sent with every message: what a store's page adds (e.g. {"customer_token": ...})
    metadata: dict[str, Any] | None = None
    # e.g. {"X-Forwarded-For": "203.0.113.7"}: another client behind a trusted proxy
    headers: dict[str, str] | None = None

    def say(self, message: str) -> list[dict[str, Any]]:
        """Send ``message``; return the bot's messages (dicts with text/buttons)."""
        body: dict[str, Any] = {"sender": self.sender, "message": message}
        if self.metadata is not None:
            body["metadata"] = self.metadata
        response = requests.post(
            f"{self.stack.rasa_url}/webhooks/rest/webhook",
            json=body, headers=self.headers, timeout=60,
        )
        response.raise_for_status()
        replies = response.json()
        self.transcript.append((message, [r.get("text", "") for r in replies]))
        return replies

    def text(self, message: str) -> str:
        """Send ``message``; return all reply texts joined by newlines."""
        return "\n".join(r.get("text", "") for r in self.say(message) if r.get("text"))

    def slots(self) -> dict[str, Any]:
        return self.stack.tracker(self.sender)["slots"]


def build_env(workdir: Path) -> dict[str, str]:
    """Environment of a private stack: own ports, own databases, random tokens."""
    env = dict(os.environ)
    shop_port, actions_port, rasa_port = free_port(), free_port(), free_port()
    env.update({
        "SHOP_PORT": str(shop_port),
        "SHOP_URL": f"http://127.0.0.1:{shop_port}",
        "SHOP_DATABASE_URL": f"sqlite:///{workdir / 'shop.db'}",
        "SHOP_API_TOKEN": secrets.token_hex(16),
        "ACTIONS_PORT": str(actions_port),
        "ACTIONS_TOKEN": secrets.token_hex(16),
        "WEB_SESSION_SECRET": secrets.token_hex(16),
        # many conversations a second from one address: the suites are a load test on loopback
        # (tests/security/ turns the limits on where it attacks them)
        "RATE_LIMITS": "off",
        "SANIC_HOST": "127.0.0.1",  # the action server: only this machine
        "RASA_TELEMETRY_ENABLED": "false",
        "WEB_ORIGIN": env.get("WEB_ORIGIN") or "http://localhost:8080",
        "RASA_PORT": str(rasa_port),
        "RASA_AUTH_TOKEN": secrets.token_hex(16),
        "TRACKER_DB_URL": f"sqlite:///{workdir / 'tracker.db'}",
        "LOCK_STORE_URL": "",
        "LLM_BASE_URL": env.get("LLM_BASE_URL", "http://127.0.0.1:9/v1"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_stack(
    with_shop: bool = True,
    with_actions: bool = True,
    *,
    with_llm: bool = False,
    model: Path | None = None,
    overrides: dict[str, dict[str, str]] | None = None,
    workdir: Path | None = None,
) -> Stack:
    """Start the assistant's processes in a fresh temp dir (caller calls ``stop``).

    ``with_llm`` also starts the real LLM service and points the action server at it;
    ``overrides`` adds environment per process (e.g. ``{"actions": {"SHOP_URL": proxy}}``);
    ``model`` is a model file or folder other than models/.
    """
    if model is None and not list((ROOT / "models").glob("*.tar.gz")):
        sys.exit("no trained model in models/: run `make train` first")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="assistant-stack-"))
    stack = Stack(workdir, build_env(workdir), model=model or ROOT / "models",
                  overrides=dict(overrides or {}))
    try:
        if with_shop:
            stack.start_shop()
        if with_llm:
            stack.env["LLM_PORT"] = str(free_port())
            stack.env["LLM_BASE_URL"] = stack.llm_url
            stack.start_llm()
        if with_actions:
            stack.start_actions()
        stack.start_rasa()
    except BaseException:
        for process in stack.processes.values():
            print(f"--- {process.name} log ---\n{process.tail()}", file=sys.stderr)
        stack.stop()
        raise
    return stack


def remove_stack(stack: Stack) -> None:
    stack.stop()
    shutil.rmtree(stack.workdir, ignore_errors=True)
