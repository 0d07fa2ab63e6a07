"""``maestroctl session attach ID``: use a session's terminal from this one, like tmux attach.

The local terminal goes to raw mode and the alternate screen; the daemon repaints the
session's current screen, then streams its output; keystrokes and window-size changes go
back. **Ctrl-]** detaches (the session keeps running); the terminal is restored on the way out.

Wire format (all NDJSON JSON-RPC on the ordinary socket; see docs/sessions.md):

* client -> daemon, request ``session.attach {id, rows, cols}``: the session takes this size
  (the most recent attacher wins). The daemon answers it only when the stream ends, with
  ``{id, ended: "detached"|"exited"|"disconnected"}``;
* daemon -> client, notifications ``session.output {id, data, repaint, offset}`` (``data``
  is base64 of terminal bytes; the first one, ``repaint: true``, paints the whole screen;
  a viewer that falls behind gets another repaint instead of the backlog),
  ``session.exited {id, exit_code, exit_reason}``, ``session.heartbeat {id}`` (when quiet);
* client -> daemon, notifications ``session.input {id, data}`` (base64 keystrokes),
  ``session.resize {id, rows, cols}``, and ``session.detach {id}`` to end the stream.

Terminal queries the program sends (DA1, cursor position...) are answered by the daemon and
removed from the stream, so this terminal never answers them a second time.
"""

from __future__ import annotations

import base64
import os
import select
import signal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DETACH_KEY = b"\x1d"  # Ctrl-]
ENTER = b"\x1b[?1049h\x1b[H\x1b[2J"
#: Back to the normal screen, with every mode a program may have switched on turned off.
LEAVE = (
    b"\x1b[0m\x1b[?2004l\x1b[?1l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1004l\x1b[?1006l\x1b[?25h\x1b[?1049l"
)


def _notification(method: str, **params: Any) -> bytes:
    from maestroctl import wire

    return wire.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode() + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])
        except InterruptedError:
            continue


def attach(socket_path: str, ident: str, *, stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    import termios
    import tty

    from maestroctl import wire
    from maestroctl.client import Client, RemoteError, remote_error

    if not (os.isatty(stdin_fd) and os.isatty(stdout_fd)):
        sys.stderr.write(
            "maestroctl session attach: needs a terminal on stdin and stdout "
            "(use `session screen` or `session output` instead)\n"
        )
        return 2
    client = Client(socket_path)
    client.connect()
    size = os.get_terminal_size(stdout_fd)
    params: dict[str, Any] = {"id": ident, "rows": size.lines, "cols": size.columns}
    rid = client.send_request("session.attach", params)

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: _poke(wake_w))
    saved = termios.tcgetattr(stdin_fd)
    sid = ident
    buf = b""
    ending = ""
    error: RemoteError | None = None
    #: The offset after the last output shown: a stream cut by a daemon restart resumes from there.
    offset: int | None = None
    reconnects = 0
    try:
        tty.setraw(stdin_fd)
        _write_all(stdout_fd, ENTER)
        done = False
        while not done:
            sock = client.sock
            try:
                ready, _, _ = select.select([sock, stdin_fd, wake_r], [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                os.read(wake_r, 512)
                size = os.get_terminal_size(stdout_fd)
                _send(sock, _notification("session.resize", id=sid, rows=size.lines, cols=size.columns))
            if stdin_fd in ready:
                keys = os.read(stdin_fd, 4096)
                if not keys:
                    keys = DETACH_KEY
                cut = keys.find(DETACH_KEY)
                send = keys if cut < 0 else keys[:cut]
                if send:
                    _send(sock, _notification("session.input", id=sid, data=base64.b64encode(send).decode()))
                if cut >= 0:
                    _send(sock, _notification("session.detach", id=sid))
                    ending = ending or "detached"
            if sock in ready:
                try:
                    chunk = sock.recv(1 << 18)
                except OSError:
                    chunk = b""
                if not chunk:
                    if ending:
                        break
                    # The daemon went away (a restart): attach again, resuming after the last output shown.
                    client.close()
                    client = _reconnect(socket_path)
                    if client is None:
                        ending = "the daemon closed the connection and did not come back"
                        break
                    reconnects += 1
                    buf = b""
                    size = os.get_terminal_size(stdout_fd)
                    params = {"id": sid, "rows": size.lines, "cols": size.columns}
                    if offset is not None:
                        params["since"] = offset
                    rid = client.send_request("session.attach", params)
                    continue
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = wire.loads(line)
                    method = msg.get("method")
                    params = msg.get("params") or {}
                    if method == "session.output":
                        sid = params.get("id", sid)
                        offset = params.get("offset", offset)
                        _write_all(stdout_fd, base64.b64decode(params["data"]))
                    elif method == "session.exited":
                        ending = f"session exited ({params.get('exit_reason')}, code {params.get('exit_code')})"
                    elif msg.get("id") == rid:
                        if "error" in msg:
                            error = remote_error(msg["error"])
                            if _retryable(error) and not ending:
                                # Refused before it started (the daemon was handing over): after the restart.
                                error = None
                                client.close()
                                client = _reconnect(socket_path, first_delay=0.05)
                                if client is None:
                                    ending = "the daemon did not come back"
                                    done = True
                                    break
                                reconnects += 1
                                buf = b""
                                rid = client.send_request("session.attach", {
                                    "id": sid, "rows": size.lines, "cols": size.columns,
                                    **({"since": offset} if offset is not None else {})})
                                break
                        done = True
                        break
    finally:
        termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(wake_r)
        os.close(wake_w)
        try:
            _write_all(stdout_fd, LEAVE)
        except OSError:
            pass
        client.close()
    if error is not None:
        raise error
    again = f"; reattached {reconnects} time(s) after daemon restarts" if reconnects else ""
    sys.stderr.write(f"[{sid}: {ending or 'detached'}{again}]\n")
    return 0


#: Reattaching after the daemon went away gives up after this long (a restart takes well under a second).
RETRY_FOR = 30.0


def _retryable(error: Any) -> bool:
    return error.code == -32006 and isinstance(error.data, dict) and error.data.get("retry") is True


def _send(sock: Any, data: bytes) -> None:
    """Keys and sizes sent while the daemon is gone are lost like keys typed into a closed terminal."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def _reconnect(socket_path: str, first_delay: float = 0.02) -> Any:
    """A new connection once the daemon answers again (bounded backoff), or None after :data:`RETRY_FOR`."""
    import time

    from maestroctl.client import Client, DaemonConnectionError

    deadline = time.monotonic() + RETRY_FOR
    delay = first_delay
    while time.monotonic() < deadline:
        time.sleep(delay)
        client = Client(socket_path)
        try:
            client.connect()
            return client
        except DaemonConnectionError:
            client.close()
        delay = min(delay * 2, 0.5)
    return None


def _poke(fd: int) -> None:
    try:
        os.write(fd, b"w")
    except OSError:
        pass
