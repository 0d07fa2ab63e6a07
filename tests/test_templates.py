"""Workflow templates: loading and overriding, the composed system prompt, and -- the rule the old
system broke -- every `maestroctl ...` command a template tells an agent to run parses with the
real argument parser."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from maestroctl.main import GROUPS, build_parser
from shared import templates
from shared.templates import BadTemplateName, TemplateError, UnknownTemplate
from shared.templates.compose import compose_system_prompt, role_commands
from tests.test_mail_support import call, call_err, make_app

# -- extracting and parsing commands --------------------------------------------------------------

_INLINE = re.compile(r"`(maestroctl [^`]+)`")


def extract_commands(text: str) -> list[str]:
    """Every `maestroctl ...` in backticks, and every fenced-code line starting with maestroctl."""
    found = _INLINE.findall(text)
    fenced = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
        elif fenced and stripped.startswith("maestroctl "):
            found.append(stripped)
    return found


_SAMPLES = {"SECONDS": "60", "N": "20"}


def _placeholder(m: re.Match[str]) -> str:
    inner = m.group(1)
    if "|" in inner:
        return inner.split("|")[0]  # <progress|blocked|...> -> progress
    if inner in _SAMPLES:
        return _SAMPLES[inner]
    if re.fullmatch(r"[A-Z_0-9]+", inner):
        return "x-0a1b2c"  # <TASK_ID>, <WORKER_ID_2>, <PROJECT_DIR>...
    return "some text"  # "<what you need>"


def to_argv(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "maestroctl", command
    return [re.sub(r"<([^<>]+)>", _placeholder, w) for w in words[1:]]


def check_parses(command: str) -> None:
    argv = to_argv(command)
    group = next((w for w in argv if not w.startswith("-")), None)
    if group not in GROUPS:
        pytest.fail(f"`{command}`: no command group {group!r}")
    parser = build_parser(group)  # the real parser, with this group fully built
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"`{command}` does not parse: {err.getvalue().strip()}")
    assert callable(getattr(args, "func", None)), command


def _template_cases() -> list[Any]:
    cases = []
    for name in templates.BUILTIN:
        for i, cmd in enumerate(extract_commands(templates.builtin(name).text)):
            cases.append(pytest.param(cmd, id=f"{name}:{i}:{' '.join(cmd.split()[1:3])}"))
    return cases


TEMPLATE_COMMANDS = _template_cases()


@pytest.mark.parametrize("command", TEMPLATE_COMMANDS)
def test_every_template_command_parses(command: str) -> None:
    check_parses(command)


@pytest.mark.parametrize("role", ["worker", "coordinator"])
def test_every_command_in_session_context_parses(role: str) -> None:
    prompt = compose_system_prompt({"id": "s-1", "name": "w", "parent_id": None},
                                   {"id": "p-1", "name": "proj", "dir": "/work/my proj"}, [], role, None, None)
    lines = [ln.strip() for ln in prompt.splitlines() if ln.strip().startswith("maestroctl ")]
    assert len(lines) == len(role_commands(role)) >= 10
    for line in lines:
        check_parses(line)


def test_stop_hook_reason_commands_parse() -> None:
    from maestrod.mail.wake import summarise

    reason = summarise(1, [{"type": "query", "from_name": "w", "subject": "s", "priority": "high"}])
    cmds = extract_commands(reason)
    assert cmds
    for cmd in cmds:
        check_parses(cmd)


def test_extraction_finds_every_mention() -> None:
    for name in templates.BUILTIN:
        text = templates.builtin(name).text
        assert len(extract_commands(text)) == text.count("maestroctl "), name
    assert extract_commands("run `maestroctl mail inbox` then\n```\nmaestroctl mail wait --timeout 5\n```") == [
        "maestroctl mail inbox", "maestroctl mail wait --timeout 5"]


def test_a_wrong_command_is_caught() -> None:
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_parses("maestroctl task start <TASK_ID>")  # what the old system told its workers
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_parses('maestroctl mail send --to-coordinator --subject "<s>"')  # --message is required


# -- template content ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", templates.BUILTIN)
def test_templates_are_event_driven(name: str) -> None:
    t = templates.builtin(name)
    text = t.text.lower()
    assert "maestroctl mail wait" in text and "maestroctl task report complete" in text
    assert "sleep" not in text and "poll every" not in text  # event-driven: nothing on a timer
    assert re.search(r"\bmaestro (task|mail|session) ", text) is None  # the old CLI's name
    if t.role == "coordinator":
        for needed in ("maestroctl session spawn", "maestroctl session wait", "maestroctl mail reply",
                       "<coordinator_context>", "maestroctl session list --my-workers"):
            assert needed in text, (name, needed)
    else:
        for needed in ("<coordinator_directive>", "--to-coordinator", "maestroctl task report progress",
                       "maestroctl task report blocked"):
            assert needed in text, (name, needed)


# -- loading and overriding ----------------------------------------------------------------------

def test_builtins(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    listed = templates.list_templates(env)
    assert [t.name for t in listed] == list(templates.BUILTIN)
    roles = {t.name: t.role for t in listed}
    assert {n for n, r in roles.items() if r == "worker"} == {"execute-simple", "execute-tree", "execute-queue"}
    assert all(t.source == "builtin" and t.description and t.text.startswith("# Workflow: ") for t in listed)
    assert templates.default_template("worker") == "execute-simple"
    assert templates.default_template("coordinator") == "coordinate-default"


def test_user_override_and_new_template(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    d = tmp_path / "maestro" / "templates"
    d.mkdir(parents=True)
    (d / "execute-simple.md").write_text("Just do it, then `maestroctl task report complete <TASK_ID> "
                                         "--message \"<done>\"`.\n")
    (d / "review-only.md").write_text("---\nrole: coordinator\ndescription: reviews\n---\n\nReview things.\n")
    (d / "notes.txt~").write_text("ignored: not a template name")
    t = templates.get_template("execute-simple", env)
    assert t.source == "user" and t.text.startswith("Just do it") and t.path == str(d / "execute-simple.md")
    assert t.role == "worker" and t.description == templates.builtin("execute-simple").description
    new = templates.get_template("review-only", env)
    assert (new.role, new.description, new.text) == ("coordinator", "reviews", "Review things.\n")
    names = [x.name for x in templates.list_templates(env)]
    assert names == list(templates.BUILTIN) + ["review-only"]
    assert next(x.source for x in templates.list_templates(env)) == "user"
    # the override's commands are held to the same rule
    for cmd in extract_commands(t.text):
        check_parses(cmd)


def test_broken_and_bad_names(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    d = tmp_path / "maestro" / "templates"
    d.mkdir(parents=True)
    (d / "odd.md").write_text("---\nrole: manager\n---\ntext\n")
    (d / "empty.md").write_text("---\nrole: worker\n---\n\n")
    with pytest.raises(TemplateError, match="role must be worker or coordinator"):
        templates.get_template("odd", env)
    with pytest.raises(TemplateError, match="empty"):
        templates.get_template("empty", env)
    with pytest.raises(UnknownTemplate, match="unknown template 'nope'"):
        templates.get_template("nope", env)
    for bad in ("../secrets", "/etc/passwd", "A", "", "x/y"):
        with pytest.raises(BadTemplateName):
            templates.get_template(bad, env)
    assert "odd" not in [t.name for t in templates.list_templates(env)]


def test_front_matter_parsing() -> None:
    assert templates.parse("---\nrole: worker\ndescription: a: b\n---\nbody\n") == (
        {"role": "worker", "description": "a: b"}, "body\n")
    assert templates.parse("no front matter\n---\n") == ({}, "no front matter\n---\n")
    assert templates.parse("---\nunterminated\n") == ({}, "---\nunterminated\n")


async def test_template_methods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    app = make_app(tmp_path)
    try:
        listed = await call(app, None, "template.list")
        assert [t["name"] for t in listed] == list(templates.BUILTIN) and "text" not in listed[0]
        got = await call(app, None, "template.get", {"name": "coordinate-dag"})
        assert got["role"] == "coordinator" and "maestroctl task ready" in got["text"]
        assert (await call_err(app, None, "template.get", {"name": "nope"})).code == -32001
        assert (await call_err(app, None, "template.get", {"name": "../x"})).code == -32602
        d = tmp_path / "cfg" / "maestro" / "templates"
        d.mkdir(parents=True)
        (d / "execute-tree.md").write_text("")
        err = await call_err(app, None, "template.get", {"name": "execute-tree"})
        assert err.code == -32002 and "empty" in err.message
    finally:
        app.close()


# -- the composed prompt --------------------------------------------------------------------------

def test_compose_worker_prompt() -> None:
    session = {"id": "s-4f2a9c", "name": "worker-3", "parent_id": "s-c00rd1", "role": "worker"}
    project = {"id": "p-1", "name": "shop", "dir": "/srv/shop"}
    tasks = [{"id": "t-1", "title": "Parse <input> & check", "status": "todo"}, {"id": "t-2", "title": "Docs"}]
    text = templates.builtin("execute-simple").text
    out = compose_system_prompt(session, project, tasks, "worker",
                                {"subject": "Start with t-1", "message": "Keep the API stable", "from": "s-c00rd1"},
                                text, template_name="execute-simple")
    ctx = out.split("</session_context>")[0]
    assert "<session_id>s-4f2a9c</session_id>" in ctx and "<session_name>worker-3</session_name>" in ctx
    assert "<role>worker</role>" in ctx and "<coordinator_session_id>s-c00rd1</coordinator_session_id>" in ctx
    assert '<project id="p-1" name="shop" dir="/srv/shop"/>' in ctx
    assert '<task id="t-1" status="todo">Parse &lt;input&gt; &amp; check</task>' in ctx
    assert '<task id="t-2">Docs</task>' in ctx
    assert "maestroctl task report <progress|blocked|complete|error> <TASK_ID>" in ctx
    assert "maestroctl task ready --project p-1" in ctx
    assert "session spawn" not in ctx  # not a worker's command
    directive = out.split("<coordinator_directive>")[1].split("</coordinator_directive>")[0]
    assert "<subject>Start with t-1</subject>" in directive and "<message>Keep the API stable</message>" in directive
    assert out.index("</session_context>") < out.index("<coordinator_directive>") < out.index("<workflow")
    assert '<workflow name="execute-simple">\n# Workflow: execute-simple' in out
    assert out.rstrip().endswith("</workflow>")


def test_compose_coordinator_prompt_without_directive() -> None:
    out = compose_system_prompt({"id": "s-1", "name": "lead", "parent_id": None}, {"id": "p-1", "name": "x",
                                "dir": "/d"}, [], "coordinator", None, "Do the thing.")
    assert "<coordinator_directive>" not in out and "<tasks/>" in out
    assert "none: you were started by the human" in out
    assert "maestroctl session spawn --project p-1 --name <WORKER_NAME> --cwd /d" in out
    assert "maestroctl mail broadcast --scope" in out and "<workflow>\nDo the thing.\n</workflow>" in out


def test_compose_accepts_rows_and_objects(tmp_path: Path) -> None:
    from tests.test_mail_support import add_project, add_session

    app = make_app(tmp_path)
    try:
        pid = add_project(app, "rows", "/r")
        add_session(app, "s-r1", pid, name="r1", role="coordinator")
        row = app.db.conn.execute("SELECT * FROM sessions WHERE id='s-r1'").fetchone()
        task = app.tasks.create(pid, "A task", "", "medium", "todo", None, [])
        out = compose_system_prompt(row, app.projects.get(pid), [task], row["role"], None, None)
        assert "<session_id>s-r1</session_id>" in out and f'<task id="{task.id}" status="todo">A task</task>' in out
        assert 'name="rows" dir="/r"' in out and "<workflow" not in out
    finally:
        app.close()
