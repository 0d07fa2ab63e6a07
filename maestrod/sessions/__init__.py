"""Sessions: agents in PTYs the daemon owns. One module per reason to change:

* :mod:`maestrod.sessions.store` -- SessionStore: the only code that touches the session tables;
* :mod:`maestrod.sessions.status` -- the pure status machine: four witnesses in, a decision and an input gate out;
* :mod:`maestrod.sessions.screens` -- screen rules per agent kind (data), matched against the screen;
* :mod:`maestrod.sessions.screen` -- ScreenWatch: the screen witness (when to render, classify, report);
* :mod:`maestrod.sessions.terminal` -- Terminal: query answering, DECSET tracking, the screen model;
* :mod:`maestrod.sessions.scrollback` -- Scrollback: bounded raw output with absolute offsets;
* :mod:`maestrod.sessions.pty` -- PtyProcess: a child on a non-blocking PTY master under trio;
* :mod:`maestrod.sessions.terminal_io` -- the PTY reader, terminal-query replies, typing;
* :mod:`maestrod.sessions.live` -- LiveSession and Viewer: the in-memory side of a running session;
* :mod:`maestrod.sessions.prompts` -- PromptDesk: the prompt queue, the input gate's use, confirmation;
* :mod:`maestrod.sessions.hook_intake` -- HookIntake: the hooks witness and the hook plug-ins' answers;
* :mod:`maestrod.sessions.transcript_path` -- which transcript paths a hook may report, and opening them safely;
* :mod:`maestrod.sessions.hooks` -- HookExtensions: what other services plug into the hooks;
* :mod:`maestrod.sessions.attach`, :mod:`maestrod.sessions.waits` -- viewers; ``session.wait``;
* :mod:`maestrod.sessions.spawn`, :mod:`maestrod.sessions.launch`, :mod:`maestrod.sessions.claude`,
  :mod:`maestrod.sessions.briefing` -- spawning: checks and rows; argv and environment; Claude Code's
  flags and hooks; what a spawned agent is told;
* :mod:`maestrod.sessions.manager` -- SessionManager: the thin front that wires the rooms together.
"""
