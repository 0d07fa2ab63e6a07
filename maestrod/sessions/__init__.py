"""Sessions: agents in PTYs the daemon owns.

* :mod:`maestrod.sessions.pty` -- PtyProcess: a child on a non-blocking PTY master under trio;
* :mod:`maestrod.sessions.terminal` -- Terminal: query answering, DECSET tracking, the screen model;
* :mod:`maestrod.sessions.scrollback` -- Scrollback: bounded raw output with absolute offsets;
* :mod:`maestrod.sessions.claude` -- how Claude Code is started: argv, hooks, environment;
* :mod:`maestrod.sessions.hooks` -- HookExtensions: what later modules plug into the hooks;
* :mod:`maestrod.sessions.manager` -- SessionManager: spawn, status, prompts, stop, attach, recovery.
"""
