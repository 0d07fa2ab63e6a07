"""run.*: ``maestroctl task run`` -- drain a project's ready tasks with at most N worker sessions."""

from typing import Optional

import attrs

from shared.messages.session import _argv, _env, _no_nul
from shared.messages.spec import MethodSpec, between, doc


@attrs.define
class RunStart:
    project: str = attrs.field(metadata=doc("project id, prefix or name"))
    workers: int = attrs.field(default=2, validator=between(1, 64),
                               metadata=doc("at most this many live worker sessions (1..64)"))
    template: Optional[str] = attrs.field(
        default="execute-simple", metadata=doc("the workers' workflow template (`none`: no workflow)"))
    agent: str = attrs.field(
        default="claude",
        metadata=doc("the workers' agent kind, as `session spawn --agent` takes it (claude, codex, command)"))
    root: Optional[str] = attrs.field(default=None, metadata=doc("only this task and its descendants"))
    reuse: bool = attrs.field(default=False,
                              metadata=doc("give a worker whose task ended the next ready task instead of stopping it"))
    retries: int = attrs.field(default=0, validator=between(0, 10),
                               metadata=doc("a task whose worker failed goes back to todo this many times (0..10)"))
    worktree: bool = attrs.field(default=False, metadata=doc("each worker in a new git worktree of the project"))
    cwd: Optional[str] = attrs.field(default=None, validator=_no_nul,
                                     metadata=doc("the workers' directory (default: the project's)"))
    allowed_tools: Optional[str] = attrs.field(default=None, validator=_no_nul,
                                               metadata=doc("claude --allowedTools for the workers"))
    permission_mode: Optional[str] = attrs.field(default=None, validator=_no_nul,
                                                 metadata=doc("claude --permission-mode for the workers"))
    env: dict[str, str] = attrs.field(factory=dict, validator=_env,
                                      metadata=doc("extra environment for every worker"))
    argv: list[str] = attrs.field(factory=list, validator=_argv,
                                  metadata=doc("command: the program each worker runs; claude: extra args"))
    prompt: Optional[str] = attrs.field(
        default=None, validator=_no_nul,
        metadata=doc("added to each worker's first prompt (which names its task and how to report it)"))


@attrs.define
class RunRef:
    id: Optional[str] = attrs.field(
        default=None, metadata=doc("run id or prefix (default: the project's active run)"))
    project: Optional[str] = attrs.field(default=None, metadata=doc("with no id: the active run of this project"))


@attrs.define
class RunList:
    project: Optional[str] = None
    limit: int = attrs.field(default=50, validator=between(1, 1000))


METHODS = [
    MethodSpec("run.start", RunStart,
               "Start draining a project's ready tasks with at most N worker sessions (task run)."),
    MethodSpec("run.status", RunRef,
               "A run: its state, each worker (session, task, status, attention) and the tasks done, failed, "
               "running and queued."),
    MethodSpec("run.stop", RunRef, "Let the run's running workers finish and start no more."),
    MethodSpec("run.list", RunList, "Runs, newest first."),
]
