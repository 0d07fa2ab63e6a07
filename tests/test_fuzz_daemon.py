"""A protocol fuzzer against a running maestrod: a real subprocess on its real Unix socket.

Every method ``system.methods`` lists is called with params drawn from the schema it returns (the right
types, then wrong types, out-of-range and huge values, unknown and missing fields), beside arbitrary bytes,
invalid UTF-8, deep nesting, huge numbers, mixed batches, and half-closed and abandoned connections.
It asserts what issue 11 asks: the daemon lives, every reply is a conformant JSON-RPC 2.0 response,
no -32603 ever, and afterwards its descriptors are within +10 of the start and its RSS within +30 MB.

A case is one fuzzed request, line or connection; a hypothesis example sends several (pipelined, then a
ping to know they were all answered). The runs are deterministic (hypothesis ``derandomize``);
``MAESTRO_FUZZ_SEED=N`` draws other cases and ``MAESTRO_FUZZ_SCALE=F`` runs F times as many (the default is
over 10,000 cases, about a minute on an idle 2-core machine).
Methods that would act without bound are fenced, not skipped: ``session.spawn`` and ``run.start`` only
ever name projects that do not exist (refused after validation); the waits, subscriptions, attaches, stops
and token changes run on connections of their own, which are then abandoned. Only ``daemon.stop`` and
``daemon.restart``, whose job is to end the daemon under test, are left out.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.subprocess_daemon import LineConn, SubprocessDaemon

SCALE = float(os.environ.get("MAESTRO_FUZZ_SCALE", "1"))
SEED = os.environ.get("MAESTRO_FUZZ_SEED")
INTERNAL_ERROR = -32603
#: How long one exchange may take before the daemon counts as blocked.
REPLY_TIMEOUT = 20.0
FD_SLACK = 10
RSS_SLACK = 30 * 1024 * 1024

#: Methods that hold their connection (waits, streams) or change who it acts as: each runs on a
#: connection of its own, followed by a ping; the connection is then closed, the wait abandoned.
OWN_CONNECTION = frozenset({"mail.wait", "session.wait", "session.attach", "events.subscribe", "system.auth",
                            "session.stop", "session.kill", "session.watch_screen"})
#: Methods whose purpose is to end or replace the daemon under test (tests/test_handoff.py covers them).
NEVER = frozenset({"daemon.stop", "daemon.restart"})
#: Methods that start agents: their project never names an existing one, so each is refused after
#: validation and nothing is spawned.
SPAWNING = frozenset({"session.spawn", "run.start"})
NO_SPAWN_PROJECT = "no-such-project-"
HOME_PROJECT = "fuzz-home-7c1"


def fuzz_settings(examples: int) -> Any:
    s = settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None,
                 derandomize=SEED is None, print_blob=False,
                 suppress_health_check=list(HealthCheck))
    return s


def maybe_seed(fn: Any) -> Any:
    return seed(int(SEED))(fn) if SEED is not None else fn


# --- the daemon -------------------------------------------------------------------------------------


class FuzzDaemon(SubprocessDaemon):
    """The daemon under fuzz, and what the fuzz knows about it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.start()
        self.methods: list[dict[str, Any]] = []
        self.strings: list[str] = []
        self.agent_token = ""
        self.cases = 0
        self.requests = 0


class Conn(LineConn):
    def __init__(self, path: Path) -> None:
        super().__init__(path, REPLY_TIMEOUT)


ids = itertools.count(1)


def check_response(obj: Any) -> None:
    """A JSON-RPC 2.0 response object, never an internal error."""
    assert isinstance(obj, dict), obj
    assert obj.get("jsonrpc") == "2.0", obj
    assert "id" in obj and (obj["id"] is None or type(obj["id"]) in (str, int)), obj
    if "error" in obj:
        assert set(obj) == {"jsonrpc", "id", "error"}, obj
        err = obj["error"]
        assert isinstance(err, dict) and set(err) <= {"code", "message", "data"}, obj
        assert type(err["code"]) is int and isinstance(err["message"], str) and err["message"], obj
        assert err["code"] != INTERNAL_ERROR, f"internal error: {obj}"
    else:
        assert set(obj) == {"jsonrpc", "id", "result"}, obj


def check_line(line: bytes) -> list[dict[str, Any]]:
    """One line from the daemon: a response, a batch of them, or a notification; the responses."""
    obj = json.loads(line.decode("utf-8"))  # strict UTF-8, strict JSON
    if isinstance(obj, list):
        assert obj, "an empty batch response must not be sent"
        for item in obj:
            check_response(item)
        return obj
    if isinstance(obj, dict) and "method" in obj and "id" not in obj:
        assert obj.get("jsonrpc") == "2.0" and isinstance(obj["method"], str), obj
        assert set(obj) <= {"jsonrpc", "method", "params"}, obj
        return []
    check_response(obj)
    return [obj]


def exchange(conn: Conn, payload: bytes, expect: set[Any]) -> list[dict[str, Any]]:
    """Send ``payload`` and a ping; read up to the ping's answer and every id in ``expect``."""
    sentinel = f"sentinel-{next(ids)}"
    conn.send(payload + json.dumps({"jsonrpc": "2.0", "id": sentinel, "method": "system.ping"}).encode() + b"\n")
    waiting = set(expect) | {sentinel}
    got: list[dict[str, Any]] = []
    while waiting:
        line = conn.line()
        assert line is not None, f"maestrod closed the connection; still waiting for {sorted(map(str, waiting))}"
        for resp in check_line(line):
            waiting.discard(resp["id"])
            got.append(resp)
    return got


# --- strategies from the schema -----------------------------------------------------------------------

JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20))
json_values = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.text(max_size=8), c, max_size=4), max_leaves=10)
BIG_INTS = st.sampled_from([2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64, 10**30, -(10**30), -1, 0,
                            2**31, 2**53 + 1])
ODD_FLOATS = st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1.5, 2.0**63, 1e19, -1e19, 0.1])
ODD_STRINGS = st.sampled_from(["", " ", "\x00", "a\x00b", "\n", "\r\n", "\x1b[2J\x1b]0;x\x07", "=", "A=B",
                               "../../etc/passwd", "/dev/zero", "%", "_", "\\", "t-", "p-", "s-", "m-",
                               "*", "'; DROP TABLE tasks;--", "\u202e", "\U0001f600" * 3, "é" * 50])


def type_strategy(spec: str, strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Values of a ``system.methods`` type: ``string``, ``integer``, ``a|b`` (one of), ``array of T``,
    ``T | null`` ..."""
    alternatives = []
    for alt in spec.split(" | "):
        if alt == "string":
            alternatives.append(strings)
        elif alt == "integer":
            alternatives.append(st.integers(min_value=-5, max_value=200) | BIG_INTS
                                | st.integers(min_value=-(2**70), max_value=2**70))
        elif alt == "number":
            alternatives.append(st.floats(allow_nan=False, allow_infinity=False, min_value=-5, max_value=3)
                                | ODD_FLOATS | BIG_INTS)
        elif alt == "boolean":
            alternatives.append(st.booleans())
        elif alt == "null":
            alternatives.append(st.none())
        elif alt == "object":
            alternatives.append(st.dictionaries(strings, strings | JSON_SCALARS, max_size=4) | json_values)
        elif alt.startswith("array of "):
            alternatives.append(st.lists(type_strategy(alt[len("array of "):], strings), max_size=5))
        elif "|" in alt:
            choices = alt.split("|")
            alternatives.append(st.sampled_from(choices) | st.sampled_from([c.upper() for c in choices]))
        else:
            alternatives.append(json_values)
    return st.one_of(alternatives)


def params_for(method: dict[str, Any], strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Params for ``method``: mostly well-typed, every field sometimes wrong, extra or missing.

    The field strategies are built once per method (building strategies per draw costs more than the
    daemon's answer)."""
    fields = []
    for field in method["params"]:
        if method["name"] in SPAWNING and field["name"] == "project":
            value = st.text(max_size=8).map(lambda s: NO_SPAWN_PROJECT + s)
        else:
            value = st.one_of(json_values,  # any JSON at all: mostly the wrong type
                              BIG_INTS | ODD_FLOATS | ODD_STRINGS,
                              *[type_strategy(field["type"], strings)] * 8)
        fields.append((field["name"], field["required"], value))

    @st.composite
    def draw_params(draw: Any) -> Any:
        shape = draw(st.integers(0, 19))
        if shape == 0:
            return draw(json_values)  # not an object (or an arbitrary one)
        out: dict[str, Any] = {}
        for name, required, value in fields:
            present = required or draw(st.booleans())
            if required and shape == 1 and draw(st.booleans()):
                present = False  # a required field missing
            if present:
                out[name] = draw(value)
        if shape == 2:
            out[draw(st.text(min_size=1, max_size=10))] = draw(json_values)  # an unknown field
        return out

    return st.tuples(st.just(method["name"]), draw_params())


def request_line(method: str, params: Any, rid: Any, notification: bool = False) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if not notification:
        msg["id"] = rid
    return json.dumps(msg).encode() + b"\n"


# --- the fixture ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzd() -> Iterator[FuzzDaemon]:
    root = Path(tempfile.mkdtemp(prefix="mf-", dir="/tmp"))
    d = FuzzDaemon(root)
    try:
        c = Conn(d.socket)

        def call(method: str, params: dict[str, Any] | None = None) -> Any:
            rid = next(ids)
            c.send(request_line(method, params or {}, rid))
            line = c.line()
            assert line is not None
            resp = json.loads(line)
            assert "result" in resp, resp
            return resp["result"]

        d.methods = [m for m in call("system.methods") if m["name"] not in NEVER]
        assert len(d.methods) > 40, d.methods
        assert all(any(f["name"] == "project" for f in m["params"]) for m in d.methods if m["name"] in SPAWNING)
        (root / "work").mkdir()
        pid = call("project.create", {"name": HOME_PROJECT, "dir": str(root / "work")})["id"]
        tasks: list[str] = []
        for i in range(12):
            params: dict[str, Any] = {"project": pid, "title": f"task {i}"}
            if tasks and i % 3 == 0:
                params["depends_on"] = tasks[-2:]
            if tasks and i % 4 == 1:
                params["parent"] = tasks[0]
            tasks.append(call("task.create", params)["id"])
        mails = [call("mail.send", {"to": ["human"], "subject": f"m{i}", "body": "hello"})["id"] for i in range(4)]
        session = call("session.spawn", {"project": pid, "name": "cat", "agent": "command", "argv": ["cat"]})["id"]
        # An agent whose token the fuzz acts with (half of the calls): the policy and project-scope paths.
        token_file = root / "agent-token"
        agent = call("session.spawn", {"project": pid, "name": "agent", "agent": "command", "argv": [
            "sh", "-c", f"printf %s \"$MAESTRO_SESSION_TOKEN\" > {token_file}.tmp && mv {token_file}.tmp {token_file}; "
            "exec cat"]})["id"]
        deadline = time.monotonic() + 20
        while not token_file.exists():
            assert time.monotonic() < deadline, "the agent never wrote its token"
            time.sleep(0.01)
        d.agent_token = token_file.read_text()
        c.send(request_line("system.auth", {"token": d.agent_token}, None, notification=True))
        assert call("system.whoami")["session_id"] == agent
        known = [pid, HOME_PROJECT, *tasks, *mails, session, agent, "human", "cat", "agent"]
        d.strings = known + [k[:4] for k in known if "-" in k]
        c.close()
        yield d
    finally:
        d.stop()
        print(f"\nfuzz: {d.cases} cases, {d.requests} requests")
        log = d.log.read_text(errors="replace")
        if "Traceback" in log:  # what a failure points at is gone with the directory: show it
            print(log[-8000:])
        shutil.rmtree(root, ignore_errors=True)


def strings_of(d: FuzzDaemon) -> st.SearchStrategy[str]:
    return st.sampled_from(d.strings) | ODD_STRINGS | st.text(max_size=30) | st.text(
        alphabet="0123456789abcdef-tpsm", max_size=8)


class Baseline:
    def __init__(self, d: FuzzDaemon) -> None:
        warm = Conn(d.socket)
        exchange(warm, b"", set())
        warm.close()
        self.fds = d.fds()
        self.rss = d.rss()


def settled(d: FuzzDaemon, base: Baseline) -> None:
    """The daemon lives, answers, and its descriptors and memory came back within bounds."""
    assert d.alive(), f"maestrod died: {d.log.read_text()[-3000:]}"
    c = Conn(d.socket)
    exchange(c, b"", set())
    c.close()
    deadline = time.monotonic() + 15
    # Closed connections are noticed asynchronously: wait (bounded) for the descriptors to be released.
    while d.fds() > base.fds + FD_SLACK and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.fds() <= base.fds + FD_SLACK, (d.fds(), base.fds, os.listdir(f"/proc/{d.proc.pid}/fd"))
    assert d.rss() <= base.rss + RSS_SLACK, (d.rss() - base.rss) / 2**20
    log = d.log.read_text()
    assert "Internal error" not in log and "internal error" not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]


# --- the fuzz ---------------------------------------------------------------------------------------------


def test_every_method_with_fuzzed_params(fuzzd: FuzzDaemon) -> None:
    """Requests to every listed method (and unknown ones), pipelined 1-4 per write, as single calls,
    notifications or batches."""
    d = fuzzd
    base = Baseline(d)
    strings = strings_of(d)
    shared = [m for m in d.methods if m["name"] not in OWN_CONNECTION]
    own = [m for m in d.methods if m["name"] in OWN_CONNECTION]
    calls = st.one_of([params_for(m, strings) for m in shared])
    unknown = st.tuples(st.text(min_size=1, max_size=20) | st.sampled_from(["system.", "task", "x.y.z", "rpc.x"]),
                        json_values)

    def as_agent() -> Conn:
        c = Conn(d.socket)
        c.send(request_line("system.auth", {"token": d.agent_token}, None, notification=True))
        return c

    conn = [Conn(d.socket), as_agent()]
    start = time.monotonic()
    before = d.cases

    @fuzz_settings(2000)
    @maybe_seed
    @given(st.lists(st.tuples(calls | unknown, st.integers(0, 9)), min_size=1, max_size=6),
           st.one_of([params_for(m, strings) for m in own]) | st.none() | st.none() | st.none(), st.booleans())
    def run(batch: list[tuple[tuple[str, Any], int]], own_call: tuple[str, Any] | None, agent: bool) -> None:
        d.cases += len(batch) + (own_call is not None)
        payload, expect, items = b"", set(), []
        for (method, params), how in batch:
            rid: Any = next(ids) if how % 2 else f"r{next(ids)}"
            if how == 0:
                payload += request_line(method, params, None, notification=True)
            elif how >= 7:
                items.append({"jsonrpc": "2.0", "method": method, "params": params, "id": rid})
                expect.add(rid)
            else:
                payload += request_line(method, params, rid)
                expect.add(rid)
        if items:
            payload += json.dumps(items).encode() + b"\n"
        d.requests += len(batch) + 1
        if conn[agent].closed:
            conn[agent] = as_agent() if agent else Conn(d.socket)
        exchange(conn[agent], payload, expect)
        if own_call is not None:
            d.requests += 2
            c = as_agent() if agent and own_call[0] != "system.auth" else Conn(d.socket)
            rid = next(ids)
            exchange(c, request_line(own_call[0], own_call[1], rid), set())
            c.close()

    run()
    for c in conn:
        c.close()
    report("methods", d.cases - before, start, 6000)
    settled(d, base)


def nested(depth: int, obj: bool) -> bytes:
    return (b'{"a":' * depth + b"1" + b"}" * depth) if obj else (b"[" * depth + b"1" + b"]" * depth)


RAW_TEMPLATES = st.sampled_from([
    b'{"jsonrpc":"2.0","id":%s,"method":"system.ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"task.history","params":{"id":"x","limit":%s}}',
    b'{"jsonrpc":"2.0","id":1,"method":"events.replay","params":{"since":%s}}',
    b'{"jsonrpc":"2.0","id":1,"method":"session.output","params":{"id":"x","offset":%s}}',
    b'{"jsonrpc":"2.0","id":1,"method":"mail.wait","params":{"timeout":%s,"peek":true}}',
    b'[{"jsonrpc":"2.0","id":%s,"method":"system.ping"}]',
])
HUGE_NUMBERS = st.sampled_from([b"1e400", b"-1e400", b"1e-400", b"123456789012345678901234567890",
                                b"-9223372036854775809", b"9223372036854775808", b"18446744073709551616",
                                b"NaN", b"Infinity", b"-0", b"0e0", b"1.0", b"1E2", b"00", b"+1", b".5",
                                b"9" * 400])


@st.composite
def raw_line(draw: Any) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200)).replace(b"\n", b"")
    if kind == 1:  # invalid UTF-8 inside an otherwise good request
        junk = draw(st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b))).replace(b"\n", b"")
        return b'{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":"' + junk + b'"}}'
    if kind == 2:
        depth = draw(st.integers(1, 3000) | st.sampled_from([63, 64, 65, 1023, 1024, 1025]))
        inner = nested(depth, draw(st.booleans()))
        return draw(st.sampled_from([inner, b'{"jsonrpc":"2.0","id":1,"method":"task.list","params":{"x":'
                                     + inner + b"}}", b'{"jsonrpc":"2.0","id":' + inner + b',"method":"a"}']))
    if kind == 3:
        return draw(RAW_TEMPLATES) % draw(HUGE_NUMBERS)
    if kind == 4:  # escapes a decoder may choke on: lone surrogates, NULs, overlong escapes
        s = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\u0000", b"\\uZZZZ", b"\\x41",
                                  b"\\", b"\\u00e9"]))
        return b'{"jsonrpc":"2.0","id":"' + s + b'","method":"system.ping"}'
    if kind == 5:  # a valid value that is not a request, or a batch of them
        return json.dumps(draw(json_values)).encode()
    if kind == 6:
        return draw(st.sampled_from([b"", b" ", b"\r", b"\t\t", b"\x00", b"\xef\xbb\xbf{}", b"[]", b"[[]]", b"{}",
                                     b'{"jsonrpc":"2.0"}', b'{"jsonrpc":"2.0","method":"system.ping",}',
                                     b'{"jsonrpc":"2.0","method":"system.ping","id":1,"id":2}',
                                     b'{"jsonrpc":"2.0","method":"system.ping","id":true}',
                                     b'{"jsonrpc":"2.0","method":"system.ping","id":1.5}',
                                     b'{"jsonrpc":"1.0","method":"system.ping","id":1}']))
    if kind == 7:  # a mixed batch: requests, notifications, junk items, nested arrays
        items = draw(st.lists(json_values | st.fixed_dictionaries(
            {"jsonrpc": st.just("2.0"), "method": st.sampled_from(["system.ping", "task.get", "nope", ""]),
             "params": json_values}, optional={"id": st.integers() | st.text(max_size=5) | st.none()}),
            min_size=1, max_size=6))
        return json.dumps(items).encode()
    if kind == 8:  # big (but under the line limit): long strings, many members
        n = draw(st.sampled_from([1_000, 10_000, 100_000] * 3 + [1_000_000]))  # a megabyte now and then
        return draw(st.sampled_from([
            b'{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":"' + b"a" * n + b'"}}',
            b'{"jsonrpc":"2.0","id":1,"method":"task.list","params":{"status":[' + b'"todo",' * (n // 8)
            + b'"todo"]}}',
            b"[" + b'{"jsonrpc":"2.0","method":"system.ping"},' * (n // 50) + b"1]"]))
    return draw(st.text(max_size=100)).encode("utf-8", "surrogatepass").replace(b"\n", b"")


def report(what: str, cases: int, start: float, least: int) -> None:
    took = time.monotonic() - start
    print(f"\n{what}: {cases} cases in {took:.1f} s ({cases / took:.0f}/s)")
    if SCALE >= 1:  # issue 11: at least 10,000 cases per CI run, across the three tests
        assert cases >= least, f"only {cases} {what} cases"


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_arbitrary_lines(fuzzd: FuzzDaemon) -> None:
    """Garbage, invalid UTF-8, deep nesting, huge numbers, odd escapes and mixed batches, 1-5 lines per write,
    sometimes split at arbitrary points."""
    d = fuzzd
    base = Baseline(d)
    conn = [Conn(d.socket)]
    start = time.monotonic()
    before = d.cases

    @fuzz_settings(1000)
    @maybe_seed
    @given(st.lists(raw_line(), min_size=1, max_size=6), st.lists(st.integers(1, 64), max_size=3))
    def run(lines: list[bytes], cuts: list[int]) -> None:
        d.cases += len(lines)
        d.requests += len(lines) + 1
        payload = b"".join(line + b"\n" for line in lines)
        if conn[0].closed:
            conn[0] = Conn(d.socket)
        c = conn[0]
        pos = 0
        for cut in cuts:  # a few pieces first, then the rest with the sentinel
            c.send(payload[pos:pos + cut])
            pos += cut
        exchange(c, payload[pos:], set())

    run()
    conn[0].close()
    report("lines", d.cases - before, start, 3000)
    settled(d, base)


def test_half_closed_and_abandoned_connections(fuzzd: FuzzDaemon) -> None:
    """Connections that half-close after (part of) a request, close mid-request or mid-answer, or leave a
    wait, a subscription or an attach behind."""
    d = fuzzd
    base = Baseline(d)
    strings = strings_of(d)
    by_name = {m["name"]: m for m in d.methods}
    start = time.monotonic()
    before = d.cases

    @fuzz_settings(1000)
    @maybe_seed
    @given(st.integers(0, 5), st.one_of([params_for(by_name[name], strings) for name in sorted(by_name)]),
           st.integers(0, 200))
    def run(scenario: int, call: tuple[str, Any], cut: int) -> None:
        d.cases += 1
        d.requests += 1
        method, params = call
        if method in OWN_CONNECTION or method in SPAWNING:
            method, params = "task.list", {"project": HOME_PROJECT}
        line = request_line(method, params, 1)
        c = Conn(d.socket)
        try:
            if scenario == 0:  # half-closed after a whole request: answered, then closed by the daemon
                c.send(line)
                c.sock.shutdown(socket.SHUT_WR)
                got = []
                while (raw := c.line()) is not None:
                    got.extend(check_line(raw))
                assert [r["id"] for r in got] == [1], got
            elif scenario == 1:  # an unterminated final line, then half-closed: still a request
                c.send(line[:-1])
                c.sock.shutdown(socket.SHUT_WR)
                got = []
                while (raw := c.line()) is not None:
                    got.extend(check_line(raw))
                assert [r["id"] for r in got] == [1], got
            elif scenario == 2:  # part of a line, then gone
                c.send(line[:max(1, min(cut, len(line) - 1))])
            elif scenario == 3:  # a request, then gone without reading the answer
                c.send(line * (1 + cut % 5))
            elif scenario == 4:  # a subscriber (every topic) that goes away while work happens
                exchange(c, request_line("events.subscribe", {}, 2), {2})
                exchange(c, request_line("task.update", {"id": d.strings[2], "description": str(cut)}, 3), {3})
            else:  # a long wait left behind
                exchange(c, request_line("mail.wait", {"timeout": 3600, "type": "blocked"}, 4), set())
        finally:
            c.close()

    run()
    report("connections", d.cases - before, start, 1000)
    settled(d, base)
