"""A scripted Anthropic Messages API server on 127.0.0.1, for driving the real Claude Code offline.

Claude Code streams (``"stream": true``): the answer is Server-Sent Events
``message_start``, ``content_block_start``, ``content_block_delta`` (``text_delta`` /
``input_json_delta``), ``content_block_stop``, ``message_delta`` (with the ``stop_reason``),
``message_stop`` -- see ``docs/claude-code.md``.

Requests that carry ``tools`` are the agent's turns and are answered by the *script*: a
callable that gets the request body and returns a list of content blocks
(``{"type": "text", "text": ...}`` or ``{"type": "tool_use", "name": ..., "input": {...}}``).
The stop reason is ``tool_use`` when the answer holds a tool call, else ``end_turn``.
Requests without ``tools`` (titles, topic detection, ...) get a short text.

Runs in a daemon thread (``ThreadingHTTPServer``), so it serves while a trio test awaits, and
can also be run standalone: ``python tests/fake_anthropic.py --port 0`` prints the URL.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Block = dict[str, Any]
Script = Callable[[dict[str, Any]], list[Block]]


def tool_results(body: dict[str, Any]) -> list[Block]:
    """Every ``tool_result`` block in the conversation so far, oldest first."""
    out = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if msg.get("role") == "user" and isinstance(content, list):
            out.extend(c for c in content if c.get("type") == "tool_result")
    return out


def bash_then_text(command: str, final_text: str) -> Script:
    """A script: an agent turn runs ``command`` with the Bash tool; after its result, ``final_text``."""

    def script(body: dict[str, Any]) -> list[Block]:
        # A new prompt starts a new exchange: only tool results after the last plain user text count.
        msgs = body.get("messages", [])
        last = msgs[-1] if msgs else {}
        content = last.get("content")
        answered = isinstance(content, list) and any(c.get("type") == "tool_result" for c in content)
        if answered:
            return [{"type": "text", "text": final_text}]
        return [
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": command, "description": "run the scripted command"},
            }
        ]

    return script


class FakeAnthropic:
    def __init__(self, script: Script | None = None, side_text: str = "Scripted title") -> None:
        self.script: Script = script or (lambda body: [{"type": "text", "text": "ok"}])
        self.side_text = side_text
        #: (path, body) of every POST, in arrival order.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.agent_turns: list[dict[str, Any]] = []
        #: The ``usage`` of an agent turn's answer, given its request (None: a small fixed one). A test of
        #: context use scripts a large ``cache_read_input_tokens`` here.
        self.usage_of: Callable[[dict[str, Any]], dict[str, int]] | None = None
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def do_GET(self) -> None:  # noqa: N802
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

            def do_HEAD(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                path = self.path.split("?", 1)[0]
                with fake.lock:
                    fake.requests.append((path, body))
                if path.endswith("/v1/messages/count_tokens"):
                    self._json(200, {"input_tokens": 42})
                    return
                if not path.endswith("/v1/messages"):
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
                    return
                if body.get("tools"):
                    blocks = fake.script(body)
                    with fake.lock:
                        fake.agent_turns.append(body)
                else:
                    blocks = [{"type": "text", "text": fake.side_text}]
                blocks = [
                    dict(b, id=b.get("id") or f"toolu_{uuid.uuid4().hex[:20]}")
                    if b["type"] == "tool_use"
                    else b
                    for b in blocks
                ]
                stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
                usage = fake.usage_of(body) if fake.usage_of is not None and body.get("tools") else None
                if body.get("stream"):
                    self._stream(body, blocks, stop, usage)
                else:
                    self._json(200, _message(body, blocks, stop, usage))

            def _json(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], blocks: list[Block], stop: str,
                        usage: dict[str, int] | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self._event({"type": "message_start", "message": _message(body, [], None, usage)})
                for i, b in enumerate(blocks):
                    if b["type"] == "text":
                        start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": b["text"]}
                    else:
                        start = {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}
                        delta = {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}
                    self._event({"type": "content_block_start", "index": i, "content_block": start})
                    self._event({"type": "content_block_delta", "index": i, "delta": delta})
                    self._event({"type": "content_block_stop", "index": i})
                self._event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"output_tokens": 12}})
                self._event({"type": "message_stop"})

            def _event(self, data: dict[str, Any]) -> None:
                """One Server-Sent Event, named after its ``type``."""
                self.wfile.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _message(body: dict[str, Any], blocks: list[Block], stop: str | None,
             usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-test"),
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage or {
            "input_tokens": 100,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bash", help="answer every agent turn with this Bash command, then 'done'")
    args = ap.parse_args()
    server = FakeAnthropic(bash_then_text(args.bash, "done") if args.bash else None).start(args.port)
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


class ErrorAPI:
    """A model API that answers every request with one HTTP error (401, 429, 529, ...), counting them."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()
        self.requests = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.requests += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="error-api", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
