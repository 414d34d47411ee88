"""The sandbox's Stripe API error, rendered in Stripe's envelope."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An API error: HTTP status, Stripe error type/code, message, offending parameter."""

    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": "invalid_request_error", "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}
