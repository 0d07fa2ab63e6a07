"""The exact `maestroctl mail ...` / `task report` / `template` invocations of issue 5, as agents and
the human run them: real maestroctl processes, an in-process daemon, a real Unix socket."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import trio

from tests.conftest import Daemon, maestroctl_env
from tests.test_mail_support import call, family

TOKENS = {"tok-coord": "s-coord", "tok-w1": "s-w1", "tok-w2": "s-w2", "tok-solo": "s-solo"}


def setup(daemon: Daemon) -> dict[str, str]:
    ids = family(daemon.app)
    daemon.app.token_lookup = TOKENS.get
    return ids


async def ctl(daemon: Daemon, *argv: str, token: str | None = None, stdin: bytes = b"") -> tuple[int, str, str]:
    extra = {"MAESTRO_SESSION_TOKEN": token} if token else {}
    proc = await trio.run_process([sys.executable, "-m", "maestroctl", *argv], stdin=stdin,
                                  capture_stdout=True, capture_stderr=True, check=False,
                                  env=maestroctl_env(daemon.socket_path, **extra))
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def ctl_json(daemon: Daemon, *argv: str, token: str | None = None) -> Any:
    code, out, err = await ctl(daemon, "--json", *argv, token=token)
    assert code == 0, err
    return json.loads(out)


async def test_the_issue_invocations(daemon: Daemon) -> None:
    setup(daemon)
    tid = daemon.app.tasks.create(daemon.app.projects.resolve("proj"), "Schema", "", "medium", "todo", None, []).id
    with trio.fail_after(60):
        sent = await ctl_json(daemon, "mail", "send", "--to", "s-w1", "--to", "worker-2", "--type", "query",
                              "--subject", "schema question", "--message", "v1 or v2?", "--priority", "high",
                              "--task", tid, token="tok-coord")
        assert sent["from"] == "s-coord" and sent["to"] == ["s-w1", "s-w2"] and sent["task_id"] == tid
        up = await ctl_json(daemon, "mail", "send", "--to-coordinator", "--type", "query", "--subject", "help",
                            "--message", "stuck", token="tok-w1")
        assert up["to"] == ["s-coord"] and up["from"] == "s-w1"
        b = await ctl_json(daemon, "mail", "broadcast", "--scope", "my-workers", "--type", "directive",
                           "--subject", "freeze", "--message", "stop merging", token="tok-coord")
        assert b["scope"] == "my-workers" and b["to"] == ["s-lead", "s-w1", "s-w2"]
        team = await ctl_json(daemon, "mail", "broadcast", "--scope", "team", "--type", "notification",
                              "--subject", "fyi", "--message", "x", token="tok-w1")
        assert team["to"] == ["s-lead", "s-w2"]
        inbox = await ctl_json(daemon, "mail", "inbox", "--unread", "--type", "query", "--thread", sent["id"],
                               token="tok-w1")
        assert [m["id"] for m in inbox] == [sent["id"]]
        everything = await ctl_json(daemon, "mail", "inbox", token="tok-w1")
        assert [m["subject"] for m in everything] == ["schema question", "freeze"]  # high before normal
        got = await ctl_json(daemon, "mail", "read", sent["id"], token="tok-w1")
        assert got["read_at"] and got["body"] == "v1 or v2?"
        rep = await ctl_json(daemon, "mail", "reply", sent["id"], "--message", "v2", token="tok-w1")
        assert rep["thread_id"] == sent["id"] and rep["to"] == ["s-coord"]
        thread = await ctl_json(daemon, "mail", "thread", rep["id"], token="tok-coord")
        assert [m["id"] for m in thread] == [sent["id"], rep["id"]]
        waited = await ctl_json(daemon, "mail", "wait", "--timeout", "5", "--type", "response", token="tok-coord")
        assert [m["id"] for m in waited] == [rep["id"]]
        # the human: sends as human, reads the human mailbox
        to_human = await ctl_json(daemon, "mail", "send", "--to", "human", "--subject", "done",
                                  "--message", "all good", token="tok-solo")
        mine = await ctl_json(daemon, "mail", "inbox")
        assert [m["id"] for m in mine] == [to_human["id"]]
        h = await ctl_json(daemon, "mail", "send", "--to", "solo", "--subject", "thanks", "--message", "!")
        assert h["from"] == "human"


async def test_wait_times_out_empty_with_exit_0(daemon: Daemon) -> None:
    setup(daemon)
    with trio.fail_after(60):
        t0 = time.monotonic()
        assert await ctl_json(daemon, "mail", "wait", "--timeout", "0.3", token="tok-w1") == []
        assert time.monotonic() - t0 >= 0.3
        code, out, _ = await ctl(daemon, "mail", "wait", "--timeout", "0", token="tok-w1")
        assert code == 0 and out.strip() == "no new mail"
        # the global --timeout also bounds the wait (and the socket outlives it)
        assert await ctl_json(daemon, "--timeout", "0.2", "mail", "wait", token="tok-w1") == []


async def test_cli_wait_is_woken_by_a_send(daemon: Daemon) -> None:
    setup(daemon)
    waiters = daemon.app.mail.waiters
    result: dict[str, Any] = {}

    async def waiter() -> None:
        result["r"] = await ctl(daemon, "--json", "mail", "wait", "--timeout", "30", token="tok-coord")

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            while waiters.count("s-coord") == 0:
                await trio.sleep(0.01)
            m = await call(daemon.app, "s-w2", "mail.send", {"to_coordinator": True, "type": "blocked",
                                                             "subject": "db down", "body": "help",
                                                             "priority": "critical"})
    code, out, err = result["r"]
    assert code == 0, err
    [got] = json.loads(out)
    assert got["id"] == m["id"] and got["priority"] == "critical" and got["read_at"]


async def test_errors_and_human_output(daemon: Daemon) -> None:
    setup(daemon)
    with trio.fail_after(60):
        code, _, err = await ctl(daemon, "mail", "send", "--to", "nobody", "--subject", "s", "--message", "m",
                                 token="tok-coord")
        assert code == 1 and "unknown recipient(s): nobody" in err
        code, _, err = await ctl(daemon, "mail", "broadcast", "--scope", "my-workers", "--subject", "s",
                                 "--message", "m", token="tok-w1")
        assert code == 1 and "scope my-workers is empty" in err
        code, _, err = await ctl(daemon, "mail", "send", "--to-coordinator", "--subject", "s", "--message", "-",
                                 token="tok-w1", stdin=b"x" * (64 * 1024 + 1))
        assert code == 1 and "too large" in err
        code, _, err = await ctl(daemon, "mail", "send", "--subject", "s", "--message", "m", token="tok-w1")
        assert code != 0 and "--to" in err
        code, out, err = await ctl(daemon, "mail", "send", "--to-coordinator", "--subject", "Build broke",
                                   "--message", "-", token="tok-w1", stdin=b"from stdin")
        assert code == 0 and out.startswith("sent m-") and "to s-coord" in out
        code, out, _ = await ctl(daemon, "mail", "inbox", token="tok-coord")
        assert code == 0 and "NEW" in out.splitlines()[0] and "Build broke" in out and "worker-1" in out
        mid = out.splitlines()[1].split()[1]
        code, out, _ = await ctl(daemon, "mail", "read", mid, token="tok-coord")
        assert code == 0 and "subject: Build broke" in out and out.rstrip().endswith("from stdin")


async def test_task_report_and_templates_from_the_cli(daemon: Daemon) -> None:
    setup(daemon)
    app = daemon.app
    tid = app.tasks.create(app.projects.resolve("proj"), "Migrate", "", "medium", "todo", None, []).id
    with trio.fail_after(60):
        r = await ctl_json(daemon, "task", "report", "blocked", tid, "--message", "no db access", token="tok-w1")
        assert r["task"]["status"] == "blocked" and r["mailed_to"] == "s-coord"
        code, out, _ = await ctl(daemon, "task", "report", "progress", tid[:6], "--message", "got access",
                                 token="tok-w1")
        assert code == 0 and "task in_progress, was blocked" in out and "mailed s-coord" in out
        inbox = await call(app, "s-coord", "mail.inbox")
        assert [(m["type"], m["priority"]) for m in inbox] == [("status_update", "high"), ("status_update", "normal")]
        code, _, err = await ctl(daemon, "task", "report", "complete", tid, "--message", "x")
        assert code == 1 and "task update" in err  # a human is told what to use instead
        listed = await ctl_json(daemon, "template", "list")
        assert [t["name"] for t in listed][:3] == ["execute-simple", "execute-tree", "execute-queue"]
        code, out, _ = await ctl(daemon, "template", "get", "execute-queue")
        assert code == 0 and out.startswith("# Workflow: execute-queue")


def test_cli_choices_match_the_daemon() -> None:
    # maestroctl spells the lists out (importing shared.messages would cost start-up time)
    from maestroctl.commands import mail as cli
    from shared.messages.mail import MAIL_PRIORITIES, MAIL_TYPES, SCOPES

    assert (cli.TYPES, cli.PRIORITIES, cli.SCOPES) == (list(MAIL_TYPES), list(MAIL_PRIORITIES), list(SCOPES))
