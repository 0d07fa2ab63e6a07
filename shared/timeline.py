"""Every timeline event type the store accepts, with what it records.

One list for everyone who writes timeline rows: a type missing here is
refused at the first write (and by a test), never dropped silently.
"""

TIMELINE_TYPES: dict[str, str] = {
    "project.created": "a project was created",
    "project.updated": "a project's fields changed",
    "project.deleted": "a project was deleted",
    "task.created": "a task was created",
    "task.updated": "a task's fields (not its status) changed",
    "task.status_changed": "a task moved from one status to another",
    "task.deps_changed": "a task's dependencies changed",
    "task.deleted": "a task was deleted",
    "task.report": "an agent reported progress/blocked/complete/error on a task",
    "session.spawned": "a session was started",
    "session.status": "a session's status changed",
    "session.prompt": "a prompt was sent to (or queued for) a session",
    "session.prompt_delivered": "the session's agent confirmed a prompt arrived",
    "session.input": "raw keys were typed into a session",
    "session.resized": "a session's terminal size changed",
    "session.stop": "someone asked a session to stop or killed it",
    "session.resumed": "a Claude session's agent was relaunched resuming its conversation (after a daemon restart "
                       "that did not recover its terminal, or a wake from hibernation), with a fresh token",
    "session.adopted": "the daemon restarted after a crash and took the session's live terminal back from systemd's "
                       "file descriptor store: the same process goes on",
    "session.suspended": "the daemon stopped and took the session's process with it; it resumes when the daemon "
                         "starts again",
    "session.needs_attention": "a session started or stopped needing attention",
    "session.hook": "a Claude Code hook reported on the session",
    "session.transcript": "the file of a Codex session's transcript became known (its rollout, named by the "
                          "SessionStart hook or found in the session's own CODEX_HOME)",
    "session.attach": "a viewer attached to (or detached from) the session's terminal",
    "session.deleted": "exited sessions and their rows were removed (recorded on their project)",
    "worktree.created": "a git worktree was made for the session (and its setup ran)",
    "worktree.handed_on": "the session took over the worktree of an exited one",
    "worktree.removed": "the session's git worktree was removed",
    "run.started": "a task run started (task run): its project, workers, options",
    "run.task_started": "a task run gave a task to a worker (a new session, or a reused one)",
    "run.task_done": "a task run's worker reported its task complete",
    "run.task_failed": "a task run's worker failed its task (reported blocked/error, or exited without reporting)",
    "run.stopping": "a task run was asked to stop: running workers finish, no new ones start",
    "run.finished": "a task run ended (done: nothing ready and nothing running; stopped: on request)",
    "session.queued": "a spawn waits for room (the governor's limits: live agents, memory), and why",
    "session.admitted": "a queued spawn got room and its process starts",
    "session.handoff": "a context hand-off: the worker was asked to checkpoint (its context near the model's window), "
                       "handed its task to a successor, or took one over from its predecessor",
    "mail.sent": "a message was sent",
    "mail.read": "a message was read",
}
