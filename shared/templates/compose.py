"""The text a spawned agent gets with ``--append-system-prompt``.

:func:`compose_system_prompt` renders three parts:

* ``<session_context>`` -- who the agent is (session id and name, role, its
  coordinator), its project (id, name, directory), its tasks (ids with titles),
  and the ``maestroctl`` commands available to its role;
* ``<coordinator_directive>`` -- subject and message, when the spawner gave them
  (the same text is also the first mail of the agent's inbox);
* ``<workflow>`` -- the role's workflow template.

Placeholders such as ``<TASK_ID>`` in the command lines are for the agent to
fill in; the project id and directory are filled in here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Commands every session may use (the caller is identified by its token).
WORKER_COMMANDS: tuple[str, ...] = (
    "maestroctl task get <TASK_ID>",
    "maestroctl task children <TASK_ID> --recursive",
    "maestroctl task create --title \"<title>\" --parent <TASK_ID> --description \"<what done means>\"",
    "maestroctl task ready --project {project_id}",
    "maestroctl task report <progress|blocked|complete|error> <TASK_ID> --message \"<what happened>\"",
    "maestroctl mail inbox --unread",
    "maestroctl mail read <MAIL_ID>",
    "maestroctl mail wait --timeout <SECONDS>",
    ("maestroctl mail send --to-coordinator --type <query|status_update|blocked> --subject \"<subject>\" "
    "--message \"<text>\""),
    ("maestroctl mail send --to <SESSION_ID> --type <query|notification> --subject \"<subject>\" "
    "--message \"<text>\""),
    "maestroctl mail reply <MAIL_ID> --message \"<text>\"",
    "maestroctl mail thread <MAIL_ID>",
    "maestroctl session list --siblings",
)

#: Commands a coordinator has on top of the worker's.
COORDINATOR_COMMANDS: tuple[str, ...] = (
    "maestroctl task update <TASK_ID> --status <todo|in_progress|blocked|completed|cancelled>",
    "maestroctl task create --title \"<title>\" --parent <TASK_ID> --depends-on <TASK_ID>",
    ("maestroctl session spawn --project {project_id} --name <WORKER_NAME> --cwd {project_dir} "
    "--template <execute-simple|execute-tree|execute-queue> --task <TASK_ID> "
    "--subject \"<one-line goal>\" --message \"<the brief>\""),
    "maestroctl session list --my-workers",
    "maestroctl session get <SESSION_ID>",
    "maestroctl session wait <SESSION_ID> <SESSION_ID_2> --until <idle|exited> --timeout <SECONDS>",
    "maestroctl session prompt <SESSION_ID> --message \"<text>\"",
    "maestroctl session log <SESSION_ID> --last <N>",
    "maestroctl session stop <SESSION_ID>",
    ("maestroctl mail broadcast --scope <my-workers|team|all> --type directive --subject \"<subject>\" "
    "--message \"<text>\""),
)


def role_commands(role: str, project_id: str = "<PROJECT_ID>", project_dir: str = "<PROJECT_DIR>") -> list[str]:
    """The ``maestroctl`` command lines shown to a session of ``role``."""
    lines = list(WORKER_COMMANDS) + (list(COORDINATOR_COMMANDS) if role == "coordinator" else [])
    return [line.format(project_id=_shell_word(project_id), project_dir=_shell_word(project_dir))
            for line in lines]


def _shell_word(s: str) -> str:
    if s and all(c.isalnum() or c in "-_./:@%+=," for c in s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    try:
        return obj[key]  # sqlite3.Row
    except (KeyError, IndexError, TypeError):
        return getattr(obj, key, default)


def _esc(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: Any) -> str:
    return _esc(value).replace('"', "&quot;")


def compose_system_prompt(session_row: Any, project: Any, tasks: Sequence[Any], role: str,
                          directive: Any, template_text: str | None, *,
                          template_name: str | None = None) -> str:
    """The appended system prompt of a new session.

    ``session_row`` (a ``sessions`` row or mapping: id, name, parent_id), ``project``
    (id, name, dir), ``tasks`` (id, title, optionally status): mappings, sqlite rows
    or attrs objects. ``directive`` is None or has ``subject`` and ``message``
    (and optionally ``from`` and ``id``, the directive's mail id). ``template_text`` is the role's workflow
    (None or empty leaves it out).
    """
    sid = _get(session_row, "id")
    name = _get(session_row, "name", "")
    parent = _get(session_row, "parent_id")
    pid, pname, pdir = _get(project, "id", ""), _get(project, "name", ""), _get(project, "dir", "")
    out = ["<session_context>",
           f"  <session_id>{_esc(sid)}</session_id>",
           f"  <session_name>{_esc(name)}</session_name>",
           f"  <role>{_esc(role)}</role>"]
    if parent:
        out.append(f"  <coordinator_session_id>{_esc(parent)}</coordinator_session_id>")
    else:
        out.append("  <coordinator_session_id>none: you were started by the human; "
                   "mail sent with --to-coordinator reaches the human</coordinator_session_id>")
    out.append(f'  <project id="{_attr(pid)}" name="{_attr(pname)}" dir="{_attr(pdir)}"/>')
    if tasks:
        out.append("  <tasks>")
        for t in tasks:
            status = _get(t, "status")
            st = f' status="{_attr(status)}"' if status else ""
            out.append(f'    <task id="{_attr(_get(t, "id"))}"{st}>{_esc(_get(t, "title", ""))}</task>')
        out.append("  </tasks>")
    else:
        out.append("  <tasks/>")
    out.append("  <commands>")
    out.append("    You are identified by your session token (MAESTRO_SESSION_TOKEN): never pass your own id.")
    out.append("    Fill in the <PLACEHOLDERS>; add --json for machine-readable output.")
    out.extend(f"    {line}" for line in role_commands(role, str(pid or "<PROJECT_ID>"),
                                                            str(pdir or "<PROJECT_DIR>")))
    out.append("  </commands>")
    out.append("</session_context>")
    if directive is not None and (_get(directive, "subject") or _get(directive, "message")):
        out += ["", "<coordinator_directive>"]
        sender = _get(directive, "from")
        if sender:
            out.append(f"  <from>{_esc(sender)}</from>")
        mail_id = _get(directive, "id")
        if mail_id:
            out.append(f"  <mail_id>{_esc(mail_id)}</mail_id>")
        out += [f"  <subject>{_esc(_get(directive, 'subject', ''))}</subject>",
                f"  <message>{_esc(_get(directive, 'message', ''))}</message>",
                "</coordinator_directive>"]
    if template_text and template_text.strip():
        attr = f' name="{_attr(template_name)}"' if template_name else ""
        out += ["", f"<workflow{attr}>", template_text.strip(), "</workflow>"]
    return "\n".join(out) + "\n"
