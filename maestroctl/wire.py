"""Just enough JSON for the client's hot path, on CPython's C accelerator ``_json``.

``import json`` pulls in ``re`` and ``enum`` (measured ~7 ms, most of maestroctl's budget);
``_json`` is the C module that ``json`` itself uses for the real work, imported in 0.2 ms.
Decoding uses its scanner directly; encoding handles the types a request can hold.
Anything unusual falls back to the ``json`` module (same results, slower import).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _ScannerContext:
    # The attributes `_json.make_scanner` reads (see json.decoder.JSONDecoder).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scan = _json.make_scanner(_ScannerContext())
_WS = " \t\n\r"


def loads(data: bytes | str) -> Any:
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    start = 0
    while start < len(text) and text[start] in _WS:
        start += 1
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"not JSON: {text[:80]!r}") from None
    if text[end:].strip(_WS):
        raise ValueError(f"extra data after JSON value: {text[end:end + 40]!r}")
    return value


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is (like ``json.dumps(..., ensure_ascii=False)``)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def _encode(v: Any, out: list[str]) -> None:
    if isinstance(v, str):
        out.append(_json.encode_basestring(v))
    elif v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinities are not JSON")
        out.append(float.__repr__(v))
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k, item in v.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, got {type(k).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(_json.encode_basestring(k))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def raw_result(line: bytes, request_id: int) -> bytes | None:
    """The ``result`` member of a response line as the daemon encoded it, without decoding.

    maestrod writes responses in one fixed shape (orjson, compact, key order
    jsonrpc/id/result), so ``--json`` can print the result bytes as they came.
    Returns None for anything else (errors, other shapes): decode those.
    """
    prefix = b'{"jsonrpc":"2.0","id":%d,"result":' % request_id
    body = line.rstrip(b"\r\n")
    if body.startswith(prefix) and body.endswith(b"}"):
        return body[len(prefix):-1]
    return None
