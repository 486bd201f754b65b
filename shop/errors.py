"""The contract's error shape: `{"error": {"code", "message"}}` with a 4xx status."""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """A refused request; raised before anything is written, so the transaction rolls back."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def not_found(what: str) -> ShopError:
    """The same answer for 'does not exist' and 'is not yours': it reveals nothing."""
    return ShopError(404, f"{what.lower()}_not_found", f"{what} not found.")


def conflict(code: str, message: str) -> ShopError:
    return ShopError(409, code, message)


def invalid(code: str, message: str) -> ShopError:
    return ShopError(422, code, message)
