"""The action server answers only Rasa: every call but ``GET /health`` carries the shared secret.

rasa-sdk discovers a package of this name and calls ``init_hooks`` (its plugin mechanism,
``rasa_sdk.plugin``); ``attach_sanic_app_extensions`` then adds a request middleware to the
action server's Sanic app. Without it, anyone who reaches port 5055 could POST a forged tracker
(``customer_id`` = anyone, ``identified`` = true) to ``/webhook`` and read any shopper's orders
with the shop token the action server holds.

- ``ACTIONS_TOKEN``: the secret; Rasa sends it as ``Authorization: Bearer …`` (endpoints.yml).
  The server refuses to start without one (or with the placeholder of .env.example).
- The listening address is ``SANIC_HOST`` (rasa-sdk's own setting), which ``make actions`` sets
  from ``ACTIONS_HOST`` (default 127.0.0.1: only this machine). docs/security.md.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys

import pluggy
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)
hookimpl = pluggy.HookimplMarker("rasa_sdk")

PLACEHOLDER_PREFIX = "change-me"
OPEN_PATHS = {"/health"}  # liveness for process managers; says nothing about anyone


class MissingSecret(SystemExit):
    """The action server must not run without its shared secret."""


def init_hooks(manager: pluggy.PluginManager) -> None:
    """Called by rasa-sdk's plugin discovery."""
    manager.register(sys.modules[__name__])


def expected_secret() -> str:
    """``ACTIONS_TOKEN``; a missing one or the public placeholder stops the server."""
    token = os.environ.get("ACTIONS_TOKEN", "").strip()
    if token and not token.startswith(PLACEHOLDER_PREFIX):
        return token
    raise MissingSecret(
        "ACTIONS_TOKEN is not set (or is the placeholder of .env.example): the action server "
        "refuses to start without the secret Rasa sends (set it in .env or the shell; "
        "`make install` writes a random one)."
    )


def refusal(request: Request, token: str) -> HTTPResponse | None:
    """None when the call may go on; else the 401 it gets."""
    if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
        return None
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return None
    logger.warning("refused %s %s from %s: no valid action server token", request.method,
                   request.path, request.ip)
    return response.json(
        {"error": "unauthorized", "message": "The action server answers only the Rasa server."},
        status=401,
    )


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    """Every request but the health check needs ``Authorization: Bearer $ACTIONS_TOKEN``."""
    token = expected_secret()

    @app.on_request
    async def require_secret(request: Request) -> HTTPResponse | None:
        return refusal(request, token)

    logger.info("action server: calls need the shared secret (ACTIONS_TOKEN)")
