"""`maestroctl shell` driven in a real PTY against a real maestrod: commands and their output, usage errors,
Tab completion of live names, the toolbar following status changes made by another client (no keypress),
and the daemon going away and coming back."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import FAKE_CLAUDE, MAESTROCTL
from tests.test_shell_support import Daemon, Shell, maestro, shell_in  # noqa: F401


def _command_session(maestro: Daemon, name: str) -> str:  # noqa: F811
    maestro.ctl("project", "create", "--name", "demo", "--dir", str(maestro.root))
    out = maestro.ctl("--json", "session", "spawn", "--project", "demo", "--name", name, "--cwd", str(maestro.root),
                      "--", "cat").stdout
    return out.split('"id":"', 1)[1].split('"', 1)[0]


def test_a_command_prints_its_output_and_the_shell_goes_on(maestro: Daemon,  # noqa: F811
                                                            shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    sh = shell_in()
    sh.type("project create --name demo --dir /tmp\r")
    sh.wait_text("name         demo")
    sh.type("project list --json\r")
    sh.wait_text('"name":"demo"')
    sh.type("ping\r")
    sh.wait_text(f"ms, {maestro.socket})")  # ping's human line names the socket
    # A daemon error (exit 1) prints its message and keeps the shell.
    sh.type("task get t-nope\r")
    sh.wait_text("error -32001")
    sh.type("help\r")
    sh.wait_text("the shell's own")
    assert sh.pty.isalive()


def test_a_usage_error_keeps_the_shell(maestro: Daemon, shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    sh = shell_in()
    sh.type("task frob\r")
    sh.wait_text("invalid choice: 'frob'")
    sh.type("task create --title\r")
    sh.wait_text("expected one argument")
    sh.type('rpc "unclosed\r')
    sh.wait_text("No closing quotation")
    # Still a working shell: a valid command after the errors runs.
    sh.type("rpc system.ping\r")
    sh.wait_text("pong")
    assert sh.pty.isalive()


def test_tab_completes_a_live_session_name(maestro: Daemon, shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    _command_session(maestro, "frobnicator")
    sh = shell_in()
    sh.wait_toolbar(lambda t: "frobnicator idle" in t, "shows the session")
    sh.type("session get frob\t")
    sh.wait_line("maestro> session get frobnicator")
    sh.type("\r")
    sh.wait_text("cwd")  # session get printed the session
    # Commands and flags come from the parser.
    sh.wait_line("maestro>")  # the command ended: a fresh prompt
    sh.type("sess\t")
    sh.wait_line("maestro> session")
    sh.type(" li\t")
    sh.wait_line("maestro> session list")
    sh.type(" --sta\t")
    sh.wait_line("maestro> session list --status")


def test_the_toolbar_follows_another_clients_changes_without_a_keypress(
        maestro: Daemon, shell_in: Callable[..., Shell], short_tmp: Path) -> None:  # noqa: F811
    fake = short_tmp / "fake-claude"
    fake.write_text(f"#!{sys.executable}\n{FAKE_CLAUDE}")
    fake.chmod(0o755)
    maestro.stop()
    maestro.env["MAESTRO_CLAUDE_BIN"] = str(fake)
    maestro.start()
    maestro.ctl("project", "create", "--name", "demo", "--dir", str(short_tmp))
    sh = shell_in()
    sh.wait_toolbar(lambda t: "no live sessions" in t, "empty")
    # Every change below is made by other maestroctl processes; the shell gets no key at all.
    maestro.ctl("session", "spawn", "--project", "demo", "--name", "alpha", "--cwd", str(short_tmp))
    sh.wait_toolbar(lambda t: "alpha idle" in t, "a spawned session, idle")
    maestro.ctl("session", "prompt", "alpha", "--message", "hello")
    sh.wait_toolbar(lambda t: "alpha working" in t, "the session working")
    maestro.ctl("session", "input", "alpha", "--text", "\x01")  # the fake asks for a permission
    sh.wait_toolbar(lambda t: "alpha waiting_input: Claude needs your permission" in t,
                    "waiting_input with its attention reason")
    maestro.ctl("session", "kill", "alpha")
    sh.wait_toolbar(lambda t: "alpha" not in t and "no live sessions" in t, "the exited session gone")


def test_the_toolbar_says_the_daemon_is_gone_and_reconnects(
        maestro: Daemon, shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    _command_session(maestro, "keeper")
    sh = shell_in()
    sh.wait_toolbar(lambda t: "keeper idle" in t, "the session")
    sh.type("task li")  # a half-typed line survives it all
    maestro.stop()
    sh.wait_toolbar(lambda t: "maestrod unreachable" in t and "reconnecting" in t, "the daemon gone")
    maestro.start()
    # The restart recorded the session as lost (exited): replayed by seq, it leaves the toolbar.
    sh.wait_toolbar(lambda t: "unreachable" not in t and "no live sessions" in t, "reconnected and replayed")
    _command_session_again(maestro, "second")
    sh.wait_toolbar(lambda t: "second idle" in t, "events after the reconnection")
    sh.type("st\r")
    sh.wait_text("maestro> task list")
    assert sh.pty.isalive()


def _command_session_again(maestro: Daemon, name: str) -> None:  # noqa: F811
    maestro.ctl("session", "spawn", "--project", "demo", "--name", name, "--cwd", str(maestro.root), "--", "cat")


def test_history_is_kept_in_xdg_state_home(maestro: Daemon, shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    sh = shell_in()
    sh.type("rpc system.version\r")
    sh.wait_text("protocol")
    sh.type("\x04")  # Ctrl-D leaves
    deadline = time.monotonic() + 10
    while sh.pty.isalive():
        assert time.monotonic() < deadline, "Ctrl-D did not end the shell"
        sh.pump()
    history = Path(maestro.env["XDG_STATE_HOME"]) / "maestro" / "shell_history"
    assert "rpc system.version" in history.read_text()
    # A new shell finds it: Up brings the line back.
    sh2 = shell_in()
    sh2.type("\x1b[A")
    sh2.wait_text("maestro> rpc system.version")


def test_keys_typed_while_output_is_printed_reach_the_shell(maestro: Daemon,  # noqa: F811
                                                            shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    """Ctrl-C and Ctrl-D typed while a command's output scrolls by are the shell's keys (not the terminal's
    end-of-file or a SIGINT to the shell): Ctrl-C cancels the command or clears the line, Ctrl-D leaves."""
    maestro.ctl("project", "create", "--name", "demo", "--dir", str(maestro.root))
    maestro.ctl("session", "spawn", "--project", "demo", "--name", "counter", "--cwd", str(maestro.root),
                "--", "seq", "1", "40000")
    deadline = time.monotonic() + 15
    while "40000" not in maestro.ctl("session", "output", "counter", "--tail", "3").stdout:
        assert time.monotonic() < deadline, "the session did not print"
        time.sleep(0.05)
    sh = shell_in()
    sh.type("session output counter\r")
    sh.wait_text("1\n")  # the output has begun
    sh.type("\x03")
    sh.type("rpc system.ping\r")
    sh.wait_text("pong", timeout=30)
    assert sh.pty.isalive()
    sh.type("session output counter\r")
    sh.wait(lambda s: len(s.raw) > 0 and s.raw.count(b"\n") > 10, "output again")
    sh.type("\x04")
    deadline = time.monotonic() + 30
    while sh.pty.isalive():
        assert time.monotonic() < deadline, "Ctrl-D during the output did not end the shell"
        sh.pump()


def test_plain_maestroctl_on_a_terminal_is_the_shell(maestro: Daemon) -> None:  # noqa: F811
    sh = Shell(maestro.env, argv=[MAESTROCTL])
    try:
        sh.wait_text("maestro>")
    finally:
        sh.close()
    # Not on a terminal: the usual usage error, no shell.
    r = maestro.ctl(check=False)
    assert r.returncode == 2 and "GROUP" in r.stderr


def test_a_long_wait_keeps_the_toolbar_live_and_ctrl_c_cancels_it(
        maestro: Daemon, shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    _command_session(maestro, "sleeper")
    sh = shell_in()
    sh.wait_toolbar(lambda t: "sleeper idle" in t, "the session")
    sh.type("session wait sleeper --until exited --timeout 120\r")
    sh.wait_toolbar(lambda t: "running: session wait sleeper" in t, "the running command")
    # While it waits, the toolbar still follows the daemon (the command runs off the event loop).
    _command_session_again(maestro, "latecomer")
    sh.wait_toolbar(lambda t: "latecomer idle" in t and "running: session wait" in t, "a new session meanwhile")
    sh.type("\x03")  # Ctrl-C: the command, not the shell
    sh.wait_text("[cancelled]")
    sh.wait_toolbar(lambda t: "running:" not in t, "no command running")
    sh.type("rpc system.ping\r")
    sh.wait_text("pong")


def test_attach_hands_over_the_terminal_and_detach_comes_back(
        maestro: Daemon, shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    sid = _command_session(maestro, "catty")
    sh = shell_in()
    sh.wait_toolbar(lambda t: "catty idle" in t, "the session")
    sh.type("attach catty\r")
    # attach clears the screen once the terminal is raw and its own: from then on keys go to the session
    sh.wait(lambda s: "maestro>" not in s.text(), "the session's terminal")
    sh.type("meow-meow\r")
    sh.wait_text("meow-meow")
    sh.type("\x1d")  # Ctrl-] detaches
    sh.wait_text(f"[{sid}: detached]")
    sh.wait_toolbar(lambda t: "catty idle" in t, "the toolbar again")
    sh.type("session output catty --tail 5\r")
    sh.wait(lambda s: s.text().count("meow-meow") >= 2, "the session got the keys")


def test_prompt_opens_a_multiline_editor_and_sends_it(maestro: Daemon,  # noqa: F811
                                                      shell_in: Callable[..., Shell]) -> None:  # noqa: F811
    _command_session(maestro, "reader")
    sh = shell_in()
    sh.wait_toolbar(lambda t: "reader idle" in t, "the session")
    sh.type("prompt reader\r")
    sh.wait_text("prompt for reader (Alt-Enter or Esc Enter sends")
    sh.type("first line\rsecond line")
    sh.wait_text("second line")
    _command_session_again(maestro, "bystander")  # the editor's toolbar follows events too
    sh.wait_toolbar(lambda t: "bystander idle" in t, "a session spawned while the editor is open")
    sh.type("\x1b\r")  # Esc Enter submits the editor
    sh.wait_text("maestro>")
    deadline = time.monotonic() + 15
    while "second line" not in maestro.ctl("session", "output", "reader", "--tail", "20").stdout:
        assert time.monotonic() < deadline, "the prompt did not reach the session"
        time.sleep(0.1)
    assert "first line" in maestro.ctl("session", "output", "reader", "--tail", "20").stdout


def test_after_a_gap_in_the_kept_events_the_shell_loads_everything_again(
        maestro: Daemon, shell_in: Callable[..., Shell], short_tmp: Path) -> None:  # noqa: F811
    """The daemon kept fewer events than the shell missed (``[events] retention``): the replay answers
    ``gap: true`` and the shell starts again from a fresh snapshot instead of replaying a hole."""
    config = Path(maestro.env["XDG_CONFIG_HOME"]) / "maestro" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[events]\nretention = 10\n")
    maestro.stop()
    maestro.start()
    _command_session(maestro, "before")
    sh = shell_in()
    sh.wait_toolbar(lambda t: "before idle" in t, "the session")
    maestro.stop()
    sh.wait_toolbar(lambda t: "maestrod unreachable" in t, "the daemon gone")
    # Meanwhile a daemon on another socket (same store) writes more events than it keeps (it prunes every
    # 500 events), out of the shell's sight.
    other = short_tmp / "other.sock"
    maestro.start("--socket", str(other))
    batch = [{"jsonrpc": "2.0", "id": i, "method": "task.create", "params": {"project": "demo", "title": f"t{i}"}}
             for i in range(520)]
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(other))
        conn.sendall(json.dumps(batch).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            answer += conn.recv(1 << 20)
    assert len(json.loads(answer)) == 520
    replay = json.loads(maestro.ctl("--socket", str(other), "rpc", "events.replay", '{"since": 1}').stdout)
    assert replay["gap"] is True
    maestro.stop()
    maestro.start()
    sh.wait_toolbar(lambda t: "unreachable" not in t and "no live sessions" in t, "a fresh snapshot")
    _command_session_again(maestro, "after")
    sh.wait_toolbar(lambda t: "after idle" in t, "events after the reload")
    sh.type("task get t-\t")  # the tasks made during the gap are in the completion lists (id, status, title)
    sh.wait(lambda s: s.text().count(" todo t") >= 10, "the gap's tasks offered")
