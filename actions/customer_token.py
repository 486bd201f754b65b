"""Signed-in shoppers: the store's own site vouches for who they are with a signed token.

The store's server signs an HS256 JWT with ``CUSTOMER_TOKEN_SECRET`` (shared with this action
server only) for the shopper signed in on its site, and the chat page passes it with each
message as ``metadata.customer_token`` (docs/security.md "Signed-in shoppers"). Claims:
``sub`` = the shopper's user id, ``aud`` = ``shop-assistant``, ``exp`` (at most
``MAX_LIFETIME`` after ``iat``). Any other token — unsigned, another algorithm, another audience,
expired, too long-lived — identifies no one. PyJWT (already a dependency of Rasa) does the
verification; nothing here parses a token by hand.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional

import jwt

logger = logging.getLogger(__name__)

AUDIENCE = "shop-assistant"
ALGORITHM = "HS256"
MAX_LIFETIME = 24 * 3600  # seconds: a token the site issued for a day at most
LEEWAY = 30  # seconds of clock skew between the store's server and this one
MAX_TOKEN_CHARS = 2048


def token_secret() -> str:
    """``CUSTOMER_TOKEN_SECRET``; empty = sign-in tokens are not accepted."""
    return os.environ.get("CUSTOMER_TOKEN_SECRET", "").strip()


def customer_from_token(token: Any, secret: Optional[str] = None) -> Optional[str]:
    """The user id the store's site signed for, or None for anything else."""
    secret = token_secret() if secret is None else secret
    if not secret or not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        return None
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, leeway=LEEWAY,
            options={"require": ["sub", "exp", "iat", "aud"]},
        )
    except jwt.PyJWTError as exc:
        logger.info("customer token refused: %s", exc)
        return None
    subject, issued, expires = claims.get("sub"), claims.get("iat"), claims.get("exp")
    if not isinstance(subject, str) or not subject.strip():
        return None
    if not isinstance(issued, (int, float)) or expires - issued > MAX_LIFETIME:
        logger.info("customer token refused: lifetime over %d s", MAX_LIFETIME)
        return None
    return subject.strip()


def token_in(metadata: Mapping[str, Any]) -> Any:
    """The token a message carries, if any."""
    return metadata.get("customer_token") if isinstance(metadata, Mapping) else None
