"""The typed errors of the shop client: what went wrong decides what the shopper is told."""

from __future__ import annotations

from typing import Any, Dict, Optional


class ShopError(Exception):
    """Any failure talking to the shop; ``message`` is safe to log, not to show verbatim."""

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class ShopUnavailable(ShopError):
    """The shop could not answer (down, timeout, 5xx, garbage): try later or hand off.

    For a write, ``pending_write`` is the request as sent (method, path, body, customer,
    idempotency key): it may have happened, so a retry resends exactly that.
    """

    pending_write: Optional[Dict[str, Any]] = None


class NotFound(ShopError):
    """404: unknown, or not this customer's (the shop does not tell which, on purpose)."""


class Conflict(ShopError):
    """409: the order is in the wrong state for this change (docs/retail-rules.md)."""


class RiskReview(Conflict):
    """409 ``risk_review_required``: the shop's risk control refused the change for now
    (docs/risk.md); a colleague reviews it. ``decision_id`` names the logged decision,
    ``reasons`` are ``{"code", "points", "message"}`` for the agent, never for the shopper."""

    def __init__(self, message: str, status: Optional[int] = 409,
                 code: Optional[str] = "risk_review_required", decision_id: str = "",
                 score: Optional[int] = None, reasons: Optional[list] = None):
        super().__init__(message, status, code)
        self.decision_id = decision_id
        self.score = score
        self.reasons = list(reasons or [])


class Invalid(ShopError):
    """422/400: the input breaks a rule; ``message`` says which."""


class IdentificationLocked(ShopError):
    """429 ``identification_locked``: too many failed identifications for this account or client.

    The shop refuses every lookup of that account (or from that client), right details
    included, for ``retry_after`` seconds. Never retried: asking again does not help.
    """

    def __init__(self, message: str, status: Optional[int] = 429,
                 code: Optional[str] = "identification_locked", retry_after: int = 0):
        super().__init__(message, status, code)
        self.retry_after = retry_after


class AgentRefused(ShopError):
    """401 / 429 of the agent desk: a wrong login, a session that ended, too many failed logins
    (``retry_after`` seconds). The agent's to fix, not a configuration problem."""

    def __init__(self, message: str, status: Optional[int] = 401, code: Optional[str] = None,
                 retry_after: int = 0):
        super().__init__(message, status, code)
        self.retry_after = retry_after
