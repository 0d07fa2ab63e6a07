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
    "session.suspended": "the daemon stopped and took the session's process with it; it resumes when the daemon "
                         "starts again",
    "session.needs_attention": "a session started or stopped needing attention",
    "session.hook": "a Claude Code hook reported on the session",
    "session.attach": "a viewer attached to (or detached from) the session's terminal",
    "session.deleted": "exited sessions and their rows were removed (recorded on their project)",
    "worktree.created": "a git worktree was made for the session (and its setup ran)",
    "worktree.handed_on": "the session took over the worktree of an exited one",
    "worktree.removed": "the session's git worktree was removed",
    "mail.sent": "a message was sent",
    "mail.read": "a message was read",
}
