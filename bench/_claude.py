"""The real Claude Code, offline, for the benchmarks: where the binary is, the HOME it needs, its environment,
and a scripted model server that streams a long answer slowly.

The server (run as a subprocess: ``python bench/_claude.py --words-per-second 100 --answer-seconds 90``
prints ``ready <url>``) answers the Anthropic Messages API like tests/fake_anthropic.py, except that an agent
turn (a request with ``tools``) is a text answer streamed as ``content_block_delta`` text deltas at
``--words-per-second`` for ``--answer-seconds``, so Claude Code renders a long streaming answer the whole time
a benchmark measures. Requests without ``tools`` (titles, topic detection) get a short text at once;
``POST /v1/messages/count_tokens`` gets ``{"input_tokens": 42}``. ``GET /bench/streams`` says how many agent
turns are streaming now and how many started, so a benchmark knows when every agent is busy.

It is a process of its own so that its threads never hold the GIL of the process that times the pings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from maestrod.sessions.briefing import ARGV_PLACEHOLDER
from maestrod.sessions.claude import scrub_env

REPO = Path(__file__).resolve().parent.parent

API_KEY = "sk-ant-bench-0123456789abcdefghij"
#: How fast the scripted model "types" its long answer (the issue's figure).
WORDS_PER_SECOND = 100.0
#: Deltas per second: Claude Code gets its words in small pieces, as from the real API.
DELTAS_PER_SECOND = 10
WORDS = ("the daemon keeps every screen of its agents honest and cheap so that nobody waits for a ping while "
         "ten of them stream long answers about terminals renderers scrollback queues and the cost of each "
         "byte that passes through a pseudo terminal on its way to a person").split()
#: Words per paragraph: the answer is markdown prose, several paragraphs, like a real long answer.
PARAGRAPH_WORDS = 60


def find_claude(configured: str | None = None) -> str | None:
    """The Claude Code binary: ``configured``, ``$MAESTRO_TEST_CLAUDE_BIN``, what ``.ci/run`` installs, PATH."""
    candidates = [configured, os.environ.get("MAESTRO_TEST_CLAUDE_BIN"),
                  str(REPO / ".ci" / "cache" / "claude" / "node_modules" / ".bin" / "claude"), shutil.which("claude")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def write_claude_home(home: Path, work: Path) -> None:
    """What the interactive TUI needs to start offline (docs/claude-code.md): onboarding
    done, the API key approved, the working directory trusted."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(work.resolve()): {"hasTrustDialogAccepted": True}},
    }))


def claude_version(binary: str) -> str:
    """``2.1.328`` (what ``claude --version`` says first)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.split()
    return out[0] if out else "(unknown version)"


def claude_env(home: Path, model_url: str) -> dict[str, str]:
    """The environment a Claude Code session gets on top of the daemon's, offline against ``model_url``."""
    return {"HOME": str(home), "ANTHROPIC_BASE_URL": model_url, "ANTHROPIC_API_KEY": API_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}


def bare_env(home: Path, model_url: str) -> dict[str, str]:
    """The environment maestrod would give the session (maestrod.sessions.launch.session_env) without its
    identity: no session token, so the hooks' ``maestroctl hook`` notes that and exits 0 at once."""
    env = {k: v for k, v in scrub_env(os.environ).items() if not k.startswith("MAESTRO_")}
    env.update(claude_env(home, model_url), TERM="xterm-256color", COLORTERM="truecolor")
    env["PATH"] = env.get("PATH", os.defpath) + os.pathsep + str(Path(sys.executable).parent)
    return env


@dataclass
class DaemonLaunch:
    """What maestrod started a Claude Code session with, kept after the daemon (and its data dir) is gone."""

    argv: list[str]
    system_prompt: str
    hook_settings: str

    @classmethod
    def capture(cls, argv: list[str]) -> DaemonLaunch:
        """From ``session.get``'s ``argv``, while the session's files exist: the composed system prompt its
        placeholder names, and the ``--settings`` file."""
        head, tail = ARGV_PLACEHOLDER.split("{path}")
        placeholder = next(a for a in argv if a.startswith(head) and a.endswith(tail))
        prompt_file = placeholder[len(head):len(placeholder) - len(tail)]
        settings_file = argv[argv.index("--settings") + 1]
        return cls(argv, Path(prompt_file).read_text(), Path(settings_file).read_text())

    def bare_argv(self, settings_copy: Path, prompt: str) -> list[str]:
        """The same argv for a bare PTY: the placeholder replaced by the system prompt (as maestrod does), a new
        ``--session-id`` (the daemon's run already used its transcript name), the hook settings from a copy,
        and ``prompt`` as Claude Code's initial prompt (the daemon types it into the input box instead)."""
        settings_copy.write_text(self.hook_settings)
        head, tail = ARGV_PLACEHOLDER.split("{path}")
        out: list[str] = []
        args = iter(self.argv)
        for arg in args:
            if arg == "--session-id":
                out += [arg, str(uuid.uuid4())]
                next(args)
            elif arg == "--settings":
                out += [arg, str(settings_copy)]
                next(args)
            elif arg.startswith(head) and arg.endswith(tail):
                out.append(self.system_prompt)
            else:
                out.append(arg)
        return [*out, prompt]


class SlowModel:
    """A handle on the model server subprocess."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def streams(self) -> dict[str, int]:
        """``{"active": agent turns streaming now, "started": agent turns so far}``."""
        with urllib.request.urlopen(f"{self.url}/bench/streams", timeout=5) as answer:
            counts: dict[str, int] = json.loads(answer.read())
        return counts

    def wait_streaming(self, n: int, timeout: float) -> None:
        """Until ``n`` agent turns stream at once."""
        deadline = time.monotonic() + timeout
        while self.streams()["active"] < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"the agents did not all start streaming within {timeout:g} s: {self.streams()}")
            time.sleep(0.2)


@contextmanager
def slow_model(words_per_second: float, answer_seconds: float) -> Iterator[SlowModel]:
    proc = subprocess.Popen([sys.executable, __file__, "--words-per-second", str(words_per_second),
                             "--answer-seconds", str(answer_seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        ready, url = proc.stdout.readline().split()
        assert ready == "ready"
        yield SlowModel(proc, url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- the server (in its own process) ---------------------------------------------------------------------


def answer_pieces(words_per_second: float, seconds: float) -> Iterator[tuple[float, str]]:
    """``(seconds after the start, text)`` of each delta of the long answer."""
    per_delta = words_per_second / DELTAS_PER_SECOND
    owed, n, i = 0.0, 0, 0
    while i / DELTAS_PER_SECOND < seconds:
        owed += per_delta
        piece = []
        while owed >= 1:
            word = WORDS[n % len(WORDS)]
            n += 1
            owed -= 1
            piece.append((word.capitalize() if n % PARAGRAPH_WORDS == 1 else word)
                         + (".\n\n" if n % PARAGRAPH_WORDS == 0 else " "))
        yield i / DELTAS_PER_SECOND, "".join(piece)
        i += 1


def message(body: dict[str, Any], content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
            "model": body.get("model", "claude-bench"), "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 1,
                                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.started = 0


def serve(words_per_second: float, answer_seconds: float) -> None:
    counts = Counts()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/bench/streams":
                with counts.lock:
                    self.send_json(200, {"active": counts.active, "started": counts.started})
            else:
                self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            path = self.path.split("?", 1)[0]
            if path.endswith("/v1/messages/count_tokens"):
                self.send_json(200, {"input_tokens": 42})
            elif not path.endswith("/v1/messages"):
                self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
            elif not body.get("tools"):
                text = [{"type": "text", "text": "Bench title"}]
                if body.get("stream"):
                    self.start_events()
                    self.text_events(body, [(0.0, "Bench title")])
                else:
                    self.send_json(200, message(body, text, "end_turn"))
            else:
                with counts.lock:
                    counts.active += 1
                    counts.started += 1
                try:
                    self.start_events()
                    self.text_events(body, answer_pieces(words_per_second, answer_seconds))
                except OSError:
                    pass  # the agent was killed mid-answer: the benchmark is done with it
                finally:
                    with counts.lock:
                        counts.active -= 1

        def send_json(self, code: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def start_events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def text_events(self, body: dict[str, Any], pieces: Iterable[tuple[float, str]]) -> None:
            """One text block, its deltas sent at their times (a late one is sent at once, not made up for)."""
            self.event({"type": "message_start", "message": message(body, [], None)})
            self.event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            start = time.monotonic()
            for at, text in pieces:
                time.sleep(max(0.0, start + at - time.monotonic()))
                self.event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
            self.event({"type": "content_block_stop", "index": 0})
            self.event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": 12}})
            self.event({"type": "message_stop"})

        def event(self, data: dict[str, Any]) -> None:
            self.wfile.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # an agent killed mid-request is how every run ends, not an error

    server = Server(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    print(f"ready http://{host!s}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--words-per-second", type=float, default=100.0)
    ap.add_argument("--answer-seconds", type=float, default=90.0)
    args = ap.parse_args()
    serve(args.words_per_second, args.answer_seconds)
