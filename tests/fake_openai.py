"""A scripted OpenAI Responses API server on 127.0.0.1, for driving the real Codex CLI offline.

Codex CLI (with a provider whose ``wire_api = "responses"``) POSTs ``<base_url>/responses`` with
``"stream": true`` and reads Server-Sent Events: ``response.created``, then per output item
``response.output_item.added``, (for a message) ``response.output_text.delta``, ``response.output_item.done``,
and finally ``response.completed`` carrying the response's ``usage`` (see docs/transcripts.md, 'Codex CLI
rollouts').

API (kept small; other tests reuse it):

* ``FakeOpenAI(script).start()`` serves in a daemon thread; ``.base_url`` (``http://127.0.0.1:PORT/v1``) is
  what goes into Codex's ``[model_providers.NAME] base_url``; ``.url`` is the same without ``/v1``;
  ``.stop()``.
* A *script* is a callable that gets the request body (a dict) and returns the output items of the answer,
  made with :func:`text` (an assistant message), :func:`function_call` (e.g. ``exec_command`` with
  ``{"cmd": ...}``) or :func:`custom_tool_call` (e.g. the freeform ``apply_patch`` tool).
* :func:`scripted` makes a script from one answer per request, in order (a Codex turn is one request per
  model call: the prompt, then one per batch of tool outputs); :func:`after_outputs` answers with tool calls
  until their outputs come back, then with a text.  :func:`tool_outputs` lists the outputs in a request.
* ``.requests`` holds ``(path, body)`` of every POST, in arrival order.

Usage is reported per response as ``usage`` (``input_tokens`` with ``input_tokens_details.cached_tokens``,
``output_tokens`` with ``output_tokens_details.reasoning_tokens``, ``total_tokens``): the input size is the
length of the request in characters / 4, so it grows over a session like a real one; the output is fixed.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Item = dict[str, Any]
Script = Callable[[dict[str, Any]], list[Item]]


def text(message: str) -> Item:
    """An assistant message item with one ``output_text`` part."""
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": message,
                                                                  "annotations": []}]}


def function_call(name: str, arguments: dict[str, Any]) -> Item:
    """A function call item (``arguments`` is sent as a JSON string, as the API does)."""
    return {"type": "function_call", "name": name, "arguments": json.dumps(arguments),
            "call_id": f"call_{uuid.uuid4().hex[:24]}"}


def custom_tool_call(name: str, input_: str) -> Item:
    """A freeform (custom) tool call item, such as Codex's ``apply_patch`` with the patch as its input."""
    return {"type": "custom_tool_call", "name": name, "input": input_,
            "call_id": f"call_{uuid.uuid4().hex[:24]}"}


def tool_outputs(body: dict[str, Any]) -> list[Item]:
    """Every ``function_call_output`` / ``custom_tool_call_output`` item in the request's input, oldest first."""
    return [i for i in body.get("input", []) if isinstance(i, dict)
            and i.get("type") in ("function_call_output", "custom_tool_call_output")]


def scripted(*answers: list[Item]) -> Script:
    """A script answering request N with ``answers[N]``; past the end, a plain "done" message."""
    pending = list(answers)
    lock = threading.Lock()

    def script(body: dict[str, Any]) -> list[Item]:
        with lock:
            return pending.pop(0) if pending else [text("done")]

    return script


def after_outputs(calls: list[Item], final_text: str) -> Script:
    """A script: answer with ``calls`` while the last input item is not a tool output, then ``final_text``."""

    def script(body: dict[str, Any]) -> list[Item]:
        items = body.get("input") or [{}]
        last = items[-1] if isinstance(items[-1], dict) else {}
        if last.get("type") in ("function_call_output", "custom_tool_call_output"):
            return [text(final_text)]
        return [dict(c, call_id=f"call_{uuid.uuid4().hex[:24]}") for c in calls]

    return script


class FakeOpenAI:
    def __init__(self, script: Script | None = None, output_tokens: int = 20) -> None:
        self.script: Script = script or (lambda body: [text("ok")])
        self.output_tokens = output_tokens
        #: (path, body) of every POST, in arrival order.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path.endswith("/models"):
                    self._json(200, {"object": "list", "data": [], "models": []})
                    return
                self._json(404, {"error": {"type": "not_found", "message": path}})

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
                if not path.endswith("/responses"):
                    self._json(404, {"error": {"type": "not_found", "message": path}})
                    return
                items = fake.script(body)
                self._stream(body, items, len(raw))

            def _json(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], items: list[Item], request_bytes: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                response_id = f"resp_{uuid.uuid4().hex[:24]}"
                response = {"id": response_id, "object": "response", "model": body.get("model", "gpt-test"),
                            "status": "in_progress", "output": []}
                self._event({"type": "response.created", "response": response})
                done = []
                for index, item in enumerate(items):
                    item = dict(item, id=item.get("id") or f"item_{uuid.uuid4().hex[:24]}")
                    if item["type"] == "message":
                        added = dict(item, content=[], status="in_progress")
                        self._event({"type": "response.output_item.added", "output_index": index, "item": added})
                        for part_index, part in enumerate(item["content"]):
                            self._event({"type": "response.output_text.delta", "item_id": item["id"],
                                         "output_index": index, "content_index": part_index,
                                         "delta": part.get("text", "")})
                    else:
                        self._event({"type": "response.output_item.added", "output_index": index, "item": item})
                    item = dict(item, status="completed")
                    self._event({"type": "response.output_item.done", "output_index": index, "item": item})
                    done.append(item)
                input_tokens = max(request_bytes // 4, 1)
                cached = input_tokens // 2
                usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached},
                         "output_tokens": fake.output_tokens,
                         "output_tokens_details": {"reasoning_tokens": fake.output_tokens // 4},
                         "total_tokens": input_tokens + fake.output_tokens}
                self._event({"type": "response.completed",
                             "response": dict(response, status="completed", output=done, usage=usage)})

            def _event(self, data: dict[str, Any]) -> None:
                """One Server-Sent Event, named after its ``type``."""
                self.wfile.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What Codex's provider ``base_url`` must be."""
        return self.url + "/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cmd", help="answer every turn with an exec_command of this command, then 'done'")
    args = ap.parse_args()
    script = after_outputs([function_call("exec_command", {"cmd": args.cmd})], "done") if args.cmd else None
    server = FakeOpenAI(script).start(args.port)
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
