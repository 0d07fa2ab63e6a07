"""Forward-only schema migrations; ``PRAGMA user_version`` records how far a file got.

Append new steps; never edit a released one. Each step runs in its own
transaction together with the version bump, so a crash leaves the file at a
whole version.
"""

MIGRATIONS: list[str] = [
    # 1: projects, tasks, dependencies, audit timeline, event log
    """
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        dir TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects(id),
        parent_id TEXT REFERENCES tasks(id),
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN
            ('todo','in_progress','in_review','completed','blocked','cancelled','archived')),
        priority TEXT NOT NULL CHECK (priority IN ('low','medium','high','critical')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT
    );
    CREATE INDEX tasks_project ON tasks(project_id, status);
    CREATE INDEX tasks_parent ON tasks(parent_id);
    CREATE TABLE task_deps (
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        depends_on TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        PRIMARY KEY (task_id, depends_on)
    ) WITHOUT ROWID;
    CREATE INDEX task_deps_rev ON task_deps(depends_on);
    CREATE TABLE timeline (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX timeline_subject ON timeline(subject_kind, subject_id, id);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        topic TEXT NOT NULL,
        data TEXT NOT NULL
    );
    """,
    # 2: sessions (agents in PTYs the daemon owns), their tasks, queued prompts
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects(id),
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('worker','coordinator')),
        parent_id TEXT REFERENCES sessions(id),
        root_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        argv TEXT NOT NULL DEFAULT '[]',
        cwd TEXT NOT NULL,
        env TEXT NOT NULL DEFAULT '{}',
        template TEXT,
        token_hash TEXT UNIQUE,
        claude_session_id TEXT,
        transcript_path TEXT,
        status TEXT NOT NULL CHECK (status IN ('spawning','working','waiting_input','idle','exited')),
        exit_reason TEXT CHECK (exit_reason IN ('completed','failed','stopped','lost')),
        exit_code INTEGER,
        pid INTEGER,
        rows INTEGER NOT NULL DEFAULT 40,
        cols INTEGER NOT NULL DEFAULT 120,
        needs_attention TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        exited_at TEXT
    );
    CREATE INDEX sessions_project ON sessions(project_id, status);
    CREATE INDEX sessions_parent ON sessions(parent_id);
    CREATE TABLE session_tasks (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        task_id TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'assigned',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (session_id, task_id)
    ) WITHOUT ROWID;
    CREATE INDEX session_tasks_task ON session_tasks(task_id);
    CREATE TABLE session_prompts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('send','paste')),
        state TEXT NOT NULL CHECK (state IN ('queued','delivered','confirmed','failed')),
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        confirmed_at TEXT
    );
    CREATE INDEX session_prompts_pending ON session_prompts(session_id, state, id);
    """,
    # 3: the mailbox: one row per message, one row per (recipient, message) with its read receipt.
    # `prio` (0 critical .. 3 low) and `unread` are copied onto the recipient row so the inbox
    # ("unread first, then priority, then time") and the unread counts are index-only walks.
    """
    CREATE TABLE mail_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        thread_id TEXT NOT NULL,
        reply_to TEXT,
        sender TEXT NOT NULL,
        scope TEXT CHECK (scope IN ('all','my-workers','team')),
        type TEXT NOT NULL CHECK (type IN
            ('assignment','status_update','query','response','directive','notification','blocked')),
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        priority TEXT NOT NULL CHECK (priority IN ('critical','high','normal','low')),
        task_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX mail_messages_thread ON mail_messages(thread_id, seq);
    CREATE TABLE mail_recipients (
        recipient TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES mail_messages(seq) ON DELETE CASCADE,
        unread INTEGER NOT NULL DEFAULT 1 CHECK (unread IN (0,1)),
        prio INTEGER NOT NULL CHECK (prio BETWEEN 0 AND 3),
        read_at TEXT,
        PRIMARY KEY (recipient, seq)
    ) WITHOUT ROWID;
    CREATE INDEX mail_inbox ON mail_recipients(recipient, unread DESC, prio, seq DESC);
    CREATE INDEX mail_recipients_seq ON mail_recipients(seq);
    """,
    # 4: transcript digests (issue 4): per session, the SessionDigest checkpoint (JSON) and the tailed
    # files' offsets and fingerprints, written together so a restart neither loses nor repeats entries.
    # Keyed by session id without a foreign key: a checkpoint whose session row is gone is inert.
    """
    CREATE TABLE transcript_checkpoints (
        session_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        checkpoint TEXT NOT NULL,
        files TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL
    );
    """,
    # 5: why a queued prompt waits (a dialog, a person typing, the turn) -- shown by `session history`.
    """
    ALTER TABLE session_prompts ADD COLUMN held TEXT;
    """,
    # 6: unread mail in the order it is handled (priority, then oldest first: `mail.wait`, the Stop hook's
    # urgent-mail summary). mail_inbox keeps `seq DESC` for the inbox (newest first) and one index cannot be
    # walked in both orders, so those queries sorted every unread row of the mailbox to fill a page.
    """
    CREATE INDEX mail_unread ON mail_recipients(recipient, unread, prio, seq);
    """,
    # 7: git worktrees made for sessions (`session spawn --worktree`): one row per worktree, and which
    # sessions worked in it (`--worktree-of` hands a worktree on). `state` caches git's answer (JSON).
    """
    CREATE TABLE worktrees (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        repo TEXT NOT NULL,
        path TEXT NOT NULL,
        branch TEXT NOT NULL,
        base TEXT NOT NULL,
        base_commit TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        removed_at TEXT
    );
    CREATE INDEX worktrees_branch ON worktrees(branch);
    CREATE TABLE worktree_sessions (
        session_id TEXT PRIMARY KEY,
        worktree_id TEXT NOT NULL REFERENCES worktrees(id),
        created_at TEXT NOT NULL
    );
    CREATE INDEX worktree_sessions_worktree ON worktree_sessions(worktree_id);
    """,
    # 8: a project's tasks in list order (priority rank, then oldest first; rowid breaks ties): `task.list` and
    # `task.ready` walk this index instead of sorting every row of the project (the expression must stay
    # the one maestrod/store/tasks.py orders by, or SQLite sorts again).
    """
    CREATE INDEX tasks_order ON tasks(project_id,
        (CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END), created_at);
    """,
    # 9: each task's dependencies as a column (ids joined by spaces, in order), so a list reads one row per task
    # instead of running a subquery per task (that was half of a 300-task `task.list`). task_deps stays the
    # truth (foreign keys, cycle checks); triggers keep the copy, on cascades too (a deleted dependency).
    """
    ALTER TABLE tasks ADD COLUMN deps TEXT NOT NULL DEFAULT '';
    UPDATE tasks SET deps = coalesce((SELECT group_concat(depends_on, ' ') FROM
            (SELECT depends_on FROM task_deps WHERE task_id=tasks.id ORDER BY depends_on)), '');
    CREATE TRIGGER task_deps_added AFTER INSERT ON task_deps BEGIN
        UPDATE tasks SET deps = coalesce((SELECT group_concat(depends_on, ' ') FROM
            (SELECT depends_on FROM task_deps WHERE task_id=NEW.task_id ORDER BY depends_on)), '')
        WHERE id = NEW.task_id;
    END;
    CREATE TRIGGER task_deps_removed AFTER DELETE ON task_deps BEGIN
        UPDATE tasks SET deps = coalesce((SELECT group_concat(depends_on, ' ') FROM
            (SELECT depends_on FROM task_deps WHERE task_id=OLD.task_id ORDER BY depends_on)), '')
        WHERE id = OLD.task_id;
    END;
    """,
    # 10: resume and hibernate (issue 9). `pid_start`: the start time of the session's process (field 22 of
    # /proc/<pid>/stat) recorded at spawn, so a later daemon can tell that very process from a recycled pid
    # before it relaunches the conversation. The status CHECK gains `queued`, `hibernated` and `unknown`
    # (the status machine's states); SQLite cannot alter a CHECK, so the stored table text is edited in place
    # (https://sqlite.org/lang_altertable.html, "making other kinds of table schema changes": a CHECK change
    # does not touch the stored rows), after the ADD COLUMN, whose rewrite reads the stored text itself,
    # and the schema is then reloaded (writable_schema=RESET).
    """
    ALTER TABLE sessions ADD COLUMN pid_start INTEGER;
    PRAGMA writable_schema=ON;
    UPDATE sqlite_schema SET sql=replace(sql,
        'CHECK (status IN (''spawning'',''working'',''waiting_input'',''idle'',''exited''))',
        'CHECK (status IN (''queued'',''spawning'',''working'',''waiting_input'',''idle'',''hibernated'',''exited'',''unknown''))')
        WHERE type='table' AND name='sessions';
    PRAGMA writable_schema=RESET;
    """,
    # 11: task runs (issue 13, `task run`): what each run was asked to do (`options`: the spawn options and
    # the run's own, JSON) and every task it gave a worker (one row per attempt), so a run goes on after a
    # daemon restart; `handed_to`: the successor of a worker whose context filled up (its mail follows it).
    # Owned by maestrod/scheduler/store.py.
    """
    CREATE TABLE task_runs (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        root_task_id TEXT,
        workers INTEGER NOT NULL,
        options TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running','stopping','done','stopped')),
        started_by TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX task_runs_state ON task_runs(state);
    CREATE TABLE task_run_assignments (
        run_id TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
        task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        session_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running','done','failed','interrupted','handed_off')),
        reason TEXT NOT NULL DEFAULT '',
        handed_to TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        PRIMARY KEY (run_id, task_id, attempt)
    );
    CREATE INDEX task_run_assignments_session ON task_run_assignments(session_id);
    """,
]
