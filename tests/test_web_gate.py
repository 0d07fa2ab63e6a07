"""The web front's pure parts: what a request head is allowed to do, the page's policy, and how
WebSocket messages become the connection's lines."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from maestrod.web.gate import Page, Refuse, Upgrade, content_security_policy, decide, inline_script_hashes
from maestrod.web.transport import as_line
from shared import jsonrpc

PORT = 7733
TOKEN = "s3cret-token"
WS = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade")]


def _decide(target: bytes, *headers: tuple[bytes, bytes], method: bytes = b"GET",
            host: bytes = b"127.0.0.1:7733") -> object:
    return decide(method, target, [(b"host", host), *headers], port=PORT, token=TOKEN)


def test_page_and_upgrade() -> None:
    assert _decide(b"/") == Page()
    assert _decide(b"/?x=1", host=b"localhost:7733") == Page()
    assert _decide(b"/rpc?token=s3cret-token", *WS) == Upgrade()
    assert _decide(b"/rpc?token=s3cret-token", *WS, (b"origin", b"http://localhost:7733")) == Upgrade()
    assert _decide(b"/rpc?token=s3cret-token", *WS, (b"origin", b"http://127.0.0.1:7733")) == Upgrade()


@pytest.mark.parametrize(("target", "headers", "status"), [
    (b"/rpc", WS, 403),                                              # no token
    (b"/rpc?token=", WS, 403),                                       # empty
    (b"/rpc?token=s3cret-toke", WS, 403),                            # a prefix
    (b"/rpc?token=s3cret-token&token=s3cret-token", WS, 403),        # two: which one?
    (b"/rpc?token=S3CRET-TOKEN", WS, 403),
    (b"/rpc?token=s3cret-token", [*WS, (b"origin", b"http://evil.example")], 403),
    (b"/rpc?token=s3cret-token", [*WS, (b"origin", b"null")], 403),  # sandboxed frames, file://
    (b"/rpc?token=s3cret-token", [*WS, (b"origin", b"http://127.0.0.1:7734")], 403),
    (b"/rpc?token=s3cret-token", [*WS, (b"origin", b"https://127.0.0.1:7733")], 403),
    (b"/rpc?token=s3cret-token", [*WS, (b"origin", b"http://127.0.0.1:7733"),
                                  (b"origin", b"http://evil.example")], 403),
    (b"/rpc?token=s3cret-token", [], 400),                           # not an upgrade
    (b"/other", [], 404),
    (b"/rpc/", WS, 404),
    (b"\xff", [], 400),
])
def test_refusals(target: bytes, headers: list[tuple[bytes, bytes]], status: int) -> None:
    got = _decide(target, *headers)
    assert isinstance(got, Refuse) and got.status == status, got


def test_host_must_name_this_loopback_port() -> None:
    for host in (b"evil.example:7733", b"127.0.0.1", b"127.0.0.1:7734", b"localhost.evil.example:7733"):
        got = _decide(b"/", host=host)
        assert isinstance(got, Refuse) and got.status == 403
    # Two Host headers: refused whatever they say.
    got = decide(b"GET", b"/", [(b"host", b"127.0.0.1:7733"), (b"host", b"evil.example")], port=PORT,
                 token=TOKEN)
    assert isinstance(got, Refuse) and got.status == 403


def test_methods() -> None:
    assert _decide(b"/", method=b"HEAD") == Page()
    for method in (b"POST", b"PUT", b"DELETE"):
        got = _decide(b"/", method=method)
        assert isinstance(got, Refuse) and got.status == 405
        got = _decide(b"/rpc?token=s3cret-token", *WS, method=method)
        assert isinstance(got, Refuse) and got.status == 405


def test_policy_hashes_inline_scripts_only() -> None:
    page = (b"<html><head><style>p{color:red}</style><script>let a = 1;</script>"
            b"<script src='/x.js'></script></head><body><SCRIPT type='module'>go()</SCRIPT></body></html>")
    hashes = inline_script_hashes(page)
    expect = [f"'sha256-{base64.b64encode(hashlib.sha256(b).digest()).decode()}'"
              for b in (b"let a = 1;", b"go()")]
    assert hashes == expect
    csp = content_security_policy(page, PORT)
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self' " + " ".join(expect)
    assert directives["connect-src"] == "'self' ws://127.0.0.1:7733 ws://localhost:7733"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"


def test_messages_become_single_lines() -> None:
    assert as_line('{"a": 1}') == b'{"a": 1}\n'
    assert as_line(b'[1, 2]') == b'[1, 2]\n'
    # Newlines between tokens are whitespace: kept as spaces, same value, one line.
    pretty = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system.ping"}, indent=2)
    line = as_line(pretty)
    assert line.count(b"\n") == 1 and json.loads(line) == json.loads(pretty)
    # A raw newline inside a string is not JSON: it stays invalid (one line, a parse error).
    bad = as_line('{"method": "a\nb"}')
    assert bad.count(b"\n") == 1
    assert isinstance(jsonrpc.parse_line(bad.rstrip(b"\n")).items[0], jsonrpc.Rejected)
    # Two values in one message are one (invalid) line, never two requests.
    two = as_line('{"a": 1}\n{"b": 2}')
    assert two.count(b"\n") == 1
