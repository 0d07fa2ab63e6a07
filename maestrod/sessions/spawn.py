"""Spawning a session, up to the exec: checks, identity, the store's rows, the briefing, the first prompt.

Everything that can be refused is refused here, before a process exists; everything recorded is recorded in
one transaction (the session row, its tasks, the ``session.spawned`` row, the directive mail and the first
prompt), so a spawn that failed leaves nothing half-made. The caller then starts the process.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs

from maestrod import policy
from maestrod.config import ClaudeConfig, CodexConfig
from maestrod.sessions import briefing, launch, resume
from maestrod.sessions.prompts import prompt_source
from maestrod.sessions.store import NewSession, SessionStore, token_hash
from maestrod.store.projects import ProjectStore
from maestrod.store.tasks import TaskStore
from shared import errors
from shared.messages.session import SessionSpawn

log = logging.getLogger("maestrod.sessions")


class DirectiveMail(Protocol):
    """What spawning needs of the mail service: the first mail of a new session."""

    def check_content(self, subject: str, body: str) -> None: ...

    def send_directive(self, sender: str, session_id: str, subject: str, message: str,
                       task_id: str | None = None) -> dict[str, Any]: ...


@attrs.frozen
class Prepared:
    """A session recorded and ready to exec."""

    session_id: str
    #: As stored and shown.
    argv: list[str]
    #: As executed (the composed system prompt in place of its placeholder).
    exec_argv: list[str]
    env: dict[str, str]
    cwd: str


class Spawner:
    def __init__(self, store: SessionStore, projects: ProjectStore, tasks: TaskStore, mail: DirectiveMail,
                 claude: ClaudeConfig, data_dir: Path, socket_path: Path,
                 check_prompt: Callable[[str], None], codex: CodexConfig | None = None) -> None:
        self.store = store
        self.codex = codex or CodexConfig()
        self.projects = projects
        self.tasks = tasks
        self.mail = mail
        self.claude = claude
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.check_prompt = check_prompt

    def prepare(self, p: SessionSpawn, actor: str, caller: str | None) -> Prepared:
        """``caller`` is the session bound to the request's token (None: the human): it becomes the parent
        unless ``p.parent`` names one, and only a coordinator may spawn."""
        project_id = self.projects.resolve(p.project)
        project = self.projects.get(project_id)
        cwd = p.cwd if p.cwd is not None else project.dir
        if not os.path.isabs(cwd):
            raise errors.invalid_params([f"cwd: must be an absolute path, got {cwd!r}"])
        if not os.path.isdir(cwd):
            raise errors.invalid_params([f"cwd: no such directory: {cwd}"])
        cwd = os.path.normpath(cwd)
        parent_id = self.store.resolve(p.parent) if p.parent else caller
        policy.check_spawn(self.store, caller, parent_id)
        root_parent = self.store.row(parent_id)["root_id"] if parent_id else None
        task_ids = list(dict.fromkeys(self.tasks.resolve(t) for t in p.task_ids))
        if p.prompt is not None:
            self.check_prompt(p.prompt)
        template = briefing.resolve_template(p.template, p.role)
        directive = briefing.directive_from(p.subject, p.message)
        if directive is not None:
            self.mail.check_content(directive.subject, directive.message)
        self.store.check_name_free(project_id, p.name)

        sid = self.store.db.new_id("sessions", "s")
        token = secrets.token_urlsafe(32)
        root_id = root_parent or sid
        session_dir = self.data_dir / "sessions" / sid
        prompt_file = session_dir / briefing.SYSTEM_PROMPT_FILE
        env = launch.session_env(p, {
            "MAESTRO_SESSION_ID": sid, "MAESTRO_SESSION_TOKEN": token, "MAESTRO_SOCKET": str(self.socket_path),
            "MAESTRO_PROJECT_ID": project_id, "MAESTRO_TASK_IDS": ",".join(task_ids),
            "MAESTRO_COORDINATOR_SESSION_ID": parent_id or "", "MAESTRO_ROOT_SESSION_ID": root_id,
            "MAESTRO_SYSTEM_PROMPT_FILE": str(prompt_file)}, self.claude)
        if p.agent == "claude":
            started = launch.claude_launch(p, env, cwd, session_dir, prompt_file, self.claude)
        elif p.agent == "codex":
            started = launch.codex_launch(p, env, cwd, session_dir, prompt_file, self.codex)
        else:
            started = launch.command_launch(p, env, cwd, session_dir)
        argv = started.argv

        new = NewSession(sid, project_id, p.name, p.role, parent_id, root_id, p.agent, argv, cwd, dict(p.env),
                         token_hash(token), started.claude_session_id, started.transcript_path, p.rows, p.cols,
                         task_ids)
        spawned = {"name": p.name, "role": p.role, "agent": p.agent, "cwd": cwd, "parent_id": parent_id,
                   "root_id": root_id, "project_id": project_id, "task_ids": task_ids,
                   "template": template.name if template else None,
                   **({"argv": argv} if p.agent == "command" else {})}
        with self.store.db.transaction() as c:
            self.store.insert(c, new, launch.stored_env(p.env), actor, spawned)
            mail_id = None
            if directive is not None:
                # The directive is the first mail of the new session (a thread of its own).
                mail_id = self.mail.send_directive(actor, sid, directive.subject, directive.message,
                                                   task_id=task_ids[0] if len(task_ids) == 1 else None)["id"]
            text = briefing.compose(session={"id": sid, "name": p.name, "parent_id": parent_id}, project=project,
                                    tasks=[self.tasks.get(t) for t in task_ids], role=p.role, directive=directive,
                                    sender=actor, mail_id=mail_id, template=template)
            first = p.prompt
            if not first and directive is not None and p.agent in ("claude", "codex"):
                first = briefing.kickoff_prompt(directive, mail_id)
            if first:
                self.store.queue_prompt(c, sid, first, "send", prompt_source(actor), actor, now=False)
        try:
            prompt_file.write_text(text)
            if p.agent in ("claude", "codex"):  # a relaunch (resume) needs the --env values the store redacts
                resume.save_spawn_env(session_dir, p.env)
        except OSError as exc:
            log.warning("session %s: could not write %s: %s", sid, prompt_file, exc)
        if p.agent in ("claude", "codex"):
            exec_argv = started.real_argv(text)
        else:
            exec_argv = argv
            env["MAESTRO_SYSTEM_PROMPT"] = text
        return Prepared(sid, argv, exec_argv, env, cwd)
