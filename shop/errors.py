"""The contract's error shape: `{"error": {"code", "message"}}` with a 4xx status."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

# Validation-error type of a refusal raised while a parameter is parsed (see `as_validation`).
REFUSED = "shop_refused"


class ShopError(Exception):
    """A refused request; raised before anything is written, so the transaction rolls back."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers  # sent with the answer (e.g. Retry-After of a 429)
        self.details = details  # extra keys of the error object (e.g. who claimed a ticket)

    def body(self) -> dict[str, Any]:
        body = error_body(self.code, self.message)
        if self.details:
            body["error"].update(self.details)
        return body

    def as_validation(self) -> PydanticCustomError:
        """This refusal as a parameter's validation error.

        FastAPI then reports it only when the rest of the request is valid (a malformed body
        still wins), which is the order the checks had when every route ran them itself.
        """
        ctx = {"status": self.status, "code": self.code, "message": self.message}
        return PydanticCustomError(REFUSED, "{message}", ctx)

    @classmethod
    def from_validation(cls, error: dict[str, Any]) -> ShopError:
        ctx = error["ctx"]
        return cls(ctx["status"], ctx["code"], ctx["message"])


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def not_found(what: str) -> ShopError:
    """The same answer for 'does not exist' and 'is not yours': it reveals nothing."""
    return ShopError(404, f"{what.lower()}_not_found", f"{what} not found.")


def conflict(code: str, message: str, **details: Any) -> ShopError:
    return ShopError(409, code, message, details=details or None)


def invalid(code: str, message: str) -> ShopError:
    return ShopError(422, code, message)
