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
]
