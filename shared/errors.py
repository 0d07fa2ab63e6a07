"""JSON-RPC error codes and the exception handlers raise to produce them.

Standard codes are from the JSON-RPC 2.0 spec. Application codes live in the
spec's "implementation-defined server error" range -32000..-32099; each is
documented in README.md ("Error codes").
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

NOT_FOUND = -32001
CONFLICT = -32002
FORBIDDEN = -32003
RATE_LIMITED = -32004
TOO_LARGE = -32005
UNAVAILABLE = -32006

ERROR_NAMES: dict[int, str] = {
    PARSE_ERROR: "parse error",
    INVALID_REQUEST: "invalid request",
    METHOD_NOT_FOUND: "method not found",
    INVALID_PARAMS: "invalid params",
    INTERNAL_ERROR: "internal error",
    NOT_FOUND: "not found",
    CONFLICT: "conflict",
    FORBIDDEN: "forbidden",
    RATE_LIMITED: "rate limited",
    TOO_LARGE: "too large",
    UNAVAILABLE: "unavailable",
}


class RpcError(Exception):
    """An error answer: raised by handlers, turned into a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def not_found(what: str, ident: str) -> RpcError:
    return RpcError(NOT_FOUND, f"{what} not found: {ident}", {"kind": what, "id": ident})


def conflict(message: str, data: Any = None) -> RpcError:
    return RpcError(CONFLICT, message, data)


def forbidden(message: str) -> RpcError:
    return RpcError(FORBIDDEN, message)


def invalid_params(problems: list[str]) -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid params: " + "; ".join(problems), {"errors": problems})
