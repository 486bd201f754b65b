"""What every route declares alike: its documented errors, and how its answer is serialised."""

from __future__ import annotations

from typing import Any

from shop.schemas import ErrorOut

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorOut, "description": "Unknown, or not this customer's"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"model": ErrorOut, "description": "Wrong order state"},
    413: {"model": ErrorOut, "description": "Body too large"},
}

# Optional answer fields a record does not have stay out of the JSON (they always did).
READ: dict[str, Any] = {"responses": ERRORS, "response_model_exclude_unset": True}
WRITE: dict[str, Any] = {"responses": WRITE_ERRORS, "response_model_exclude_unset": True}
