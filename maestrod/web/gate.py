"""What the web front does with one HTTP request head: pure decisions, no sockets (tested directly).

Only two resources exist: ``GET /`` (the dashboard page) and ``GET /rpc`` (the WebSocket upgrade).
The page is public (it holds no secret; the token travels in the URL's fragment, which browsers never
send); ``/rpc`` needs the token and, when an ``Origin`` is present, the page's own origin. Both need
a ``Host`` naming this loopback address, so a DNS-rebound name cannot reach either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

import attrs

#: The query parameter that carries the token (browsers cannot set headers on a WebSocket).
TOKEN_PARAM = "token"


@attrs.frozen
class Page:
    """Serve the dashboard page."""


@attrs.frozen
class Upgrade:
    """Hand the connection to the WebSocket side."""


@attrs.frozen
class Refuse:
    status: int
    reason: str


Decision = Page | Upgrade | Refuse


def allowed_origins(port: int) -> frozenset[str]:
    return frozenset({f"http://127.0.0.1:{port}", f"http://localhost:{port}"})


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def token_matches(presented: str | None, token: str) -> bool:
    """Constant-time: the time taken says nothing about how much of a guess was right."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode())


def decide(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]], *, port: int,
           token: str) -> Decision:
    """What to do with a request: its method, target and headers as h11 gives them (names lower-case)."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        found.setdefault(name.lower(), []).append(value)
    hosts = found.get(b"host", [])
    if len(hosts) != 1 or hosts[0].decode("latin-1").lower() not in allowed_hosts(port):
        return Refuse(403, "unknown Host: this server answers only as 127.0.0.1 or localhost")
    try:
        parts = urlsplit(target.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return Refuse(400, "bad request target")
    if parts.path == "/":
        if method not in (b"GET", b"HEAD"):
            return Refuse(405, "only GET is allowed here")
        return Page()
    if parts.path != "/rpc":
        return Refuse(404, "not found: the dashboard is at / and the WebSocket at /rpc")
    if method != b"GET":
        return Refuse(405, "only GET (a WebSocket upgrade) is allowed here")
    origins = found.get(b"origin", [])
    # Command-line clients send no Origin; a browser always does, and only the page's own is welcome.
    if origins and (len(origins) > 1 or origins[0].decode("latin-1") not in allowed_origins(port)):
        return Refuse(403, "foreign Origin: only the dashboard's own page may open this WebSocket")
    tokens = parse_qs(parts.query, keep_blank_values=True).get(TOKEN_PARAM, [])
    if len(tokens) != 1 or not token_matches(tokens[0], token):
        return Refuse(403, "missing or wrong token (`maestroctl web token` prints it)")
    upgrade = b",".join(found.get(b"upgrade", [])).lower()
    if b"websocket" not in upgrade:
        return Refuse(400, "expected a WebSocket upgrade (Upgrade: websocket)")
    return Upgrade()


_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)


def inline_script_hashes(page: bytes) -> list[str]:
    """CSP hash sources for the page's inline ``<script>`` blocks (those with a ``src`` are skipped):
    the page is one self-contained file, and hashes let its own code run without allowing any other
    inline code (``'unsafe-inline'``), which is what an injected ``<script>`` would need."""
    hashes: list[str] = []
    for match in _INLINE_SCRIPT.finditer(page):
        if re.search(rb"\bsrc\s*=", match.group(1)):
            continue
        digest = base64.b64encode(hashlib.sha256(match.group(2)).digest()).decode()
        hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy(page: bytes, port: int) -> str:
    """Same origin, the page's own inline code (by hash), and the WebSocket on this port; nothing else."""
    scripts = inline_script_hashes(page)
    sockets = f"ws://127.0.0.1:{port} ws://localhost:{port}"
    return "; ".join([
        "default-src 'none'",
        "script-src " + " ".join(["'self'", *scripts]),
        # Style attributes set by the page's script (element.style) are not governed by CSP; markup ones
        # are, and a page that builds markup may use them: styles cannot run code.
        "style-src " + " ".join(["'self'", "'unsafe-inline'"]),
        "img-src 'self' data:",
        "font-src 'self'",
        f"connect-src 'self' {sockets}",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
