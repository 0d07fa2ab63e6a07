"""The pure session status machine: every witness in every state, the races, the input gate. No I/O."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from maestrod.sessions.status import (AGENT_KINDS, MISSED_STOP_GRACE, PERSON_HOLD, STATUSES, Decision,
                                      Hibernated, HookSeen, Observation, PersonTyped, ProcessExited,
                                      ProcessStarted, Queued, ScreenSeen, StatusMachine, TranscriptSeen)

CLAUDE = AGENT_KINDS["claude"]
COMMAND = AGENT_KINDS["command"]

TRUST = ScreenSeen(0, "dialog", "trust-folder", "Claude Code asks whether to trust /w")
APIKEY = ScreenSeen(0, "dialog", "api-key", "Claude Code asks whether to use the API key")
PROMPT = ScreenSeen(0, "prompt", "empty-prompt")
BUSY = ScreenSeen(0, "busy", "busy-prompt")
OTHER = ScreenSeen(0, "other")
STALE = ScreenSeen(0, "stale")
RETRY = ScreenSeen(0, "notice", "api-retrying", "Claude Code is retrying the model API: 529 overloaded")
LOGIN = ScreenSeen(0, "blocked", "not-logged-in", "Claude Code is not logged in")


def at(obs: Observation, t: float) -> Observation:
    import attrs

    return attrs.evolve(obs, at=t)  # type: ignore[misc]


def run(seq: Sequence[Observation], now: float | None = None, kind: str = "claude") -> tuple[StatusMachine, Decision]:
    """Feed ``seq`` (each observation at its index + 1 seconds) to a fresh machine; the decision after it."""
    m = StatusMachine(AGENT_KINDS[kind])
    t = 0.0
    for i, obs in enumerate(seq):
        t = float(i + 1)
        m.observe(at(obs, t))
    return m, m.decide(t + 0.01 if now is None else now)


START = ProcessStarted(0)
UP = HookSeen(0, "SessionStart", "startup")
UPS = HookSeen(0, "UserPromptSubmit")
PRE = HookSeen(0, "PreToolUse", "Bash")
POST = HookSeen(0, "PostToolUse", "Bash")
FAIL = HookSeen(0, "PostToolUseFailure", "Bash")
STOP = HookSeen(0, "Stop")
STOP_BLOCKED = HookSeen(0, "Stop", blocked=True)
PERMISSION = HookSeen(0, "Notification", "permission_prompt", "Claude needs your permission to use Bash")
IDLE_REMINDER = HookSeen(0, "Notification", "idle_prompt", "Claude is waiting for your input")


def tr(state: str) -> TranscriptSeen:
    return TranscriptSeen(0, state)  # type: ignore[arg-type]


# -- every witness, every state (Claude Code) -----------------------------------------------------------

CASES: list[tuple[str, list[Observation], str, str | None, str]] = [
    # (name, observations, status, attention, witness)
    ("nothing yet", [], "spawning", None, "daemon"),
    ("process started", [START], "spawning", None, "process"),
    ("process exited 0", [START, ProcessExited(0, 0, "completed")], "exited", None, "process"),
    ("exit is final", [START, ProcessExited(0, 1, "failed"), UPS, TRUST], "exited", None, "process"),
    ("hook SessionStart", [START, UP], "idle", None, "hook:SessionStart"),
    ("hook UserPromptSubmit", [START, UP, UPS], "working", None, "hook:UserPromptSubmit"),
    ("hook PreToolUse", [START, UP, UPS, PRE], "working", None, "hook:PreToolUse"),
    ("hook PostToolUse", [START, UP, UPS, PRE, POST], "working", None, "hook:PostToolUse"),
    ("hook PostToolUseFailure", [START, UP, UPS, PRE, FAIL], "working", None, "hook:PostToolUseFailure"),
    ("hook Stop", [START, UP, UPS, STOP], "idle", None, "hook:Stop"),
    ("hook Stop blocked", [START, UP, UPS, STOP_BLOCKED], "working", None, "hook:Stop"),
    ("hook permission dialog", [START, UP, UPS, PRE, PERMISSION], "waiting_input",
     "Claude needs your permission to use Bash", "hook:Notification:permission_prompt"),
    ("dialog answered: the tool ran", [START, UP, UPS, PRE, PERMISSION, POST], "working", None, "hook:PostToolUse"),
    ("idle reminder is not a dialog", [START, UP, UPS, STOP, IDLE_REMINDER], "idle", None, "hook:Stop"),
    ("transcript working (hook lost)", [START, UP, tr("working")], "working", None, "transcript:working"),
    ("transcript compacting", [START, UP, tr("compacting")], "working", None, "transcript:compacting"),
    ("transcript question", [START, UP, UPS, tr("waiting_input")], "waiting_input",
     "the agent asked a question and waits for an answer", "transcript:waiting_input"),
    ("transcript interrupted", [START, UP, UPS, PRE, tr("interrupted")], "idle", None, "transcript:interrupted"),
    ("transcript api_error", [START, UP, UPS, tr("api_error")], "idle", None, "transcript:api_error"),
    ("transcript idle after Stop", [START, UP, UPS, STOP, tr("idle")], "idle", None, "hook:Stop"),
    ("transcript older than the hook", [START, UP, tr("working"), UPS, STOP], "idle", None, "hook:Stop"),
    # Read after the Stop hook (at 4) but written before it (at 3.5): the turn's own prompt, flushed late.
    ("transcript read late, written before Stop", [START, UP, UPS, STOP, TranscriptSeen(0, "working", 3.5)],
     "idle", None, "hook:Stop"),
    ("transcript written after Stop (hook lost)", [START, UP, UPS, STOP, TranscriptSeen(0, "working", 4.5)],
     "working", None, "transcript:working"),
    ("screen trust dialog at start", [START, TRUST], "waiting_input", "Claude Code asks whether to trust /w",
     "screen:trust-folder"),
    ("screen api-key dialog after trust", [START, TRUST, APIKEY], "waiting_input",
     "Claude Code asks whether to use the API key", "screen:api-key"),
    ("screen dialog over a working turn", [START, UP, UPS, PRE, TRUST], "waiting_input",
     "Claude Code asks whether to trust /w", "screen:trust-folder"),
    ("screen dialog gone, turn goes on", [START, UP, UPS, PRE, TRUST, OTHER], "working", None, "hook:PreToolUse"),
    ("screen not logged in", [START, UP, LOGIN], "waiting_input", "Claude Code is not logged in",
     "screen:not-logged-in"),
    ("screen retry notice while working", [START, UP, UPS, RETRY], "working",
     "Claude Code is retrying the model API: 529 overloaded", "hook:UserPromptSubmit"),
    ("screen retry notice while idle", [START, UP, RETRY], "idle", None, "hook:SessionStart"),
    ("screen prompt without hooks: up", [START, PROMPT], "idle", None, "screen:empty-prompt"),
    ("screen other says nothing", [START, UP, UPS, OTHER], "working", None, "hook:UserPromptSubmit"),
    ("screen stale says nothing", [START, UP, STALE], "idle", None, "hook:SessionStart"),
    ("hibernated", [Hibernated(0)], "hibernated", None, "daemon"),
    ("queued", [Queued(0)], "queued", None, "daemon"),
]


@pytest.mark.parametrize(("name", "seq", "status", "attention", "witness"), CASES, ids=[c[0] for c in CASES])
def test_every_witness_every_state(name: str, seq: list[Observation], status: str, attention: str | None,
                                   witness: str) -> None:
    _, d = run(seq)
    assert (d.status, d.attention, d.witness) == (status, attention, witness)
    assert d.reason  # always says why


def test_every_status_is_reachable_and_listed() -> None:
    reached = {run(seq)[1].status for _, seq, *_ in CASES}
    reached.add("unknown")  # the status of a session found after a restart: set by the daemon, not here
    assert reached == set(STATUSES)


def test_exited_carries_code_and_reason() -> None:
    _, d = run([START, UP, ProcessExited(0, 3, "failed")])
    assert (d.exit_code, d.exit_reason, d.source) == (3, "failed", "process")


# -- every source x every state: a full matrix -------------------------------------------------------------

#: Each state, reached by a sequence of observations.
STATES: dict[str, list[Observation]] = {
    "spawning": [START],
    "idle": [START, UP],
    "working": [START, UP, UPS],
    "dialog(screen)": [START, UP, UPS, TRUST],
    "dialog(hook)": [START, UP, UPS, PERMISSION],
    "question(transcript)": [START, UP, UPS, tr("waiting_input")],
    "exited": [START, UP, ProcessExited(0, 0, "completed")],
}
#: Every observation every witness can make.
OBSERVATIONS: dict[str, Observation] = {
    "exit": ProcessExited(0, 1, "failed"),
    "SessionStart": UP, "UserPromptSubmit": UPS, "PreToolUse": PRE, "PostToolUse": POST, "Stop": STOP,
    "Stop(blocked)": STOP_BLOCKED, "Notification(permission)": PERMISSION, "Notification(idle)": IDLE_REMINDER,
    "t:working": tr("working"), "t:compacting": tr("compacting"), "t:waiting_input": tr("waiting_input"),
    "t:idle": tr("idle"), "t:interrupted": tr("interrupted"), "t:api_error": tr("api_error"),
    "s:dialog": TRUST, "s:blocked": LOGIN, "s:notice": RETRY, "s:prompt": PROMPT, "s:busy": BUSY,
    "s:other": OTHER, "s:stale": STALE,
}
# The status after each observation, in OBSERVATIONS' order; "!" marks needs_attention.
S, D, W, Q, X = "spawning", "idle", "working", "waiting_input!", "exited"  # D: done (idle)
MATRIX: dict[str, list[str]] = {
    #                     exit SS UPS PRE POST Stop Stp(b) perm idle  t:w t:c t:q t:i t:int t:err  s:dia s:blk s:not    s:pr s:busy s:oth s:st
    "spawning":           [X, D, W, W, W, D, W, Q, S,                 W, W, Q, D, D, D,              Q, Q, S + "!", D, S, S, S],
    "idle":               [X, D, W, W, W, D, W, Q, D,                 W, W, Q, D, D, D,              Q, Q, D, D, D, D, D],
    "working":            [X, D, W, W, W, D, W, Q, W,                 W, W, Q, W, D, D,              Q, Q, W + "!", W, W, W, W],
    "dialog(screen)":     [X, Q, Q, Q, Q, Q, Q, Q, Q,                 Q, Q, Q, Q, Q, Q,              Q, Q, W + "!", W, W, W, W],
    "dialog(hook)":       [X, D, W, W, W, D, W, Q, Q,                 Q, Q, Q, Q, D, D,              Q, Q, Q, W, Q, Q, Q],
    "question(transcript)": [X, D, W, W, W, D, W, Q, Q,               W, W, Q, W, D, D,              Q, Q, Q, Q, Q, Q, Q],
    "exited":             [X] * len(OBSERVATIONS),
}


@pytest.mark.parametrize("state", list(STATES))
def test_every_source_in_every_state(state: str) -> None:
    got = []
    for obs in OBSERVATIONS.values():
        m, _ = run(STATES[state])
        m.observe(at(obs, 100.0))
        d = m.decide(100.5)
        got.append(d.status + ("!" if d.attention else ""))
    want = MATRIX[state]
    assert len(want) == len(OBSERVATIONS)
    diff = {name: (g, w) for name, g, w in zip(OBSERVATIONS, got, want) if g != w}
    assert not diff, f"{state}: observation -> (got, want): {diff}"


def test_a_hook_dialog_ends_when_the_screen_returns_to_the_prompt_not_when_it_stays_there() -> None:
    m, _ = run([START, UP, PROMPT, UPS, PERMISSION])
    m.observe(ScreenSeen(10, "prompt", "empty-prompt"))  # the same prompt seen again: proves nothing
    assert m.decide(10).status == "waiting_input"
    m.observe(ScreenSeen(11, "dialog", "permission-bash", "Claude Code asks permission to run ls"))
    m.observe(ScreenSeen(12, "prompt", "empty-prompt"))  # answered: the prompt is back
    assert m.decide(12).status == "working" and m.decide(12).attention is None


# -- races -------------------------------------------------------------------------------------------


def test_stop_hook_late_the_transcript_may_not_end_the_turn() -> None:
    """Claude Code 2.1.332 writes the end of the turn to the transcript before its Stop hook returns (and the
    hook may block to keep the agent working): idle only once the Stop hook says so."""
    m, d = run([START, UP, UPS, PRE, POST, tr("idle")])
    assert d.status == "working" and d.recheck_at is None
    m.observe(HookSeen(10, "Stop", blocked=True))  # urgent mail: the agent goes on
    assert m.decide(10).status == "working"
    m.observe(HookSeen(20, "Stop"))
    assert m.decide(20).status == "idle"


def test_a_lost_stop_hook_is_bounded_by_the_empty_prompt_on_screen() -> None:
    m, d = run([START, UP, UPS, tr("idle"), PROMPT])
    assert d.status == "working" and d.recheck_at == 5 + MISSED_STOP_GRACE
    assert m.decide(5 + MISSED_STOP_GRACE - 0.1).status == "working"
    late = m.decide(5 + MISSED_STOP_GRACE)
    assert late.status == "idle" and late.witness == "transcript:idle"


def test_the_input_box_of_a_running_turn_never_ends_the_turn() -> None:
    m, d = run([START, UP, UPS, tr("idle"), BUSY])
    assert d.status == "working" and d.recheck_at is None
    assert m.decide(100).status == "working"


def test_interrupt_fires_no_stop_hook_the_transcript_ends_the_turn() -> None:
    m, d = run([START, UP, UPS, PRE, tr("interrupted")])
    assert d.status == "idle"
    m.observe(HookSeen(10, "UserPromptSubmit"))  # the next prompt starts a turn again
    assert m.decide(10).status == "working"


# -- async hooks: reports out of order (``at`` is when the hook's process started) -------------------------


def test_a_late_pre_tool_use_after_stop_leaves_the_session_idle() -> None:
    """PreToolUse runs in the background: a fast tool's PreToolUse may report after the turn's Stop. It
    started before the Stop, so the Stop stays the turn's witness and a queued prompt may be typed."""
    m, d = run([START, UP, PROMPT, UPS, POST])
    assert d.status == "working"
    m.observe(HookSeen(10, "Stop"))
    m.observe(ScreenSeen(10.5, "prompt", "empty-prompt"))
    m.observe(HookSeen(9.0, "PreToolUse", "Bash"))  # arrives last, started before the Stop
    d = m.decide(11)
    assert (d.status, d.witness) == ("idle", "hook:Stop")
    assert m.input_gate(11).open
    m.observe(HookSeen(9.5, "PostToolUseFailure", "Bash"))  # the same for a late failure report
    assert m.decide(11).status == "idle"
    assert m.evidence(11)["hooks"] == {"observation": "HookSeen", "event": "Stop", "age_s": 1.0}


def test_hooks_in_order_behave_as_before() -> None:
    """A tool hook that started after the Stop (a turn the agent starts by itself) is a running turn."""
    m, _ = run([START, UP, PROMPT, UPS, STOP])
    assert m.decide(6).status == "idle"
    m.observe(HookSeen(10, "PreToolUse", "Bash"))
    assert (m.decide(10).status, m.decide(10).witness) == ("working", "hook:PreToolUse")
    m.observe(HookSeen(11, "PostToolUse", "Bash"))
    m.observe(HookSeen(12, "Stop"))
    assert (m.decide(12).status, m.decide(12).witness) == ("idle", "hook:Stop")


def test_codex_session_start_comes_with_the_first_prompt_and_ends_no_turn() -> None:
    """Codex runs SessionStart with the first prompt, after that prompt's rollout record: the turn the
    transcript shows running stays `working` (it once went `idle` for a moment, until UserPromptSubmit)."""
    m, d = run([START, PROMPT, tr("working"), UP], kind="codex")
    assert (d.status, d.witness) == ("working", "transcript:working")
    m.observe(HookSeen(5, "UserPromptSubmit"))
    assert (m.decide(5).status, m.decide(5).witness) == ("working", "hook:UserPromptSubmit")
    m.observe(HookSeen(6, "Stop"))
    assert (m.decide(6).status, m.decide(6).witness) == ("idle", "hook:Stop")
    # Read in the other order, the hooks lead: idle at the composer, working from UserPromptSubmit on.
    m, d = run([START, PROMPT, UP], kind="codex")
    assert (d.status, d.witness) == ("idle", "screen:empty-prompt")
    assert m.evidence(4)["hooks"]["event"] == "SessionStart"  # still shown as the hook that started last
    m, d = run([START, PROMPT, UP, UPS, tr("working")], kind="codex")
    assert (d.status, d.witness) == ("working", "hook:UserPromptSubmit")
    # Claude Code's SessionStart (at launch, /clear, resume) still says the agent is up and idle.
    assert run([START, PROMPT, tr("working"), UP])[1].status == "idle"


def test_a_late_pre_tool_use_before_a_session_start_or_prompt_changes_nothing() -> None:
    m, _ = run([START, UP, PROMPT, UPS])
    m.observe(HookSeen(2.5, "PreToolUse", "Bash"))  # started before the UserPromptSubmit it follows
    assert m.turn_hook is not None and m.turn_hook.event == "UserPromptSubmit"


def test_a_stale_permission_notification_does_not_reopen_the_dialog() -> None:
    """The permission Notification (async) reports after the PostToolUse of the tool it asked about: the
    dialog was answered before that, so it is not open."""
    m, _ = run([START, UP, PROMPT, UPS, PRE])
    m.observe(HookSeen(20, "PostToolUse", "Bash"))
    m.observe(at(PERMISSION, 15))  # asked at 15, answered (the tool ran) at 20
    d = m.decide(21)
    assert (d.status, d.attention, d.witness) == ("working", None, "hook:PostToolUse")


def test_a_stale_notification_after_an_interrupt_or_the_prompt_back_stays_closed() -> None:
    m, _ = run([START, UP, UPS, PRE])
    m.observe(TranscriptSeen(20, "interrupted"))  # Esc on the dialog: no hook fires
    m.observe(at(PERMISSION, 15))
    assert m.decide(21).status == "idle" and m.dialog_hook is None
    m, _ = run([START, UP, UPS, PRE, OTHER])
    m.observe(ScreenSeen(20, "prompt", "empty-prompt"))
    m.observe(at(PERMISSION, 15))
    assert m.dialog_hook is None and m.input_gate(21).open is False  # still working: no Stop yet
    assert m.input_gate(21).blocker == "turn"


def test_a_dialog_reported_before_the_older_tool_hook_stays_open() -> None:
    """Two async reports swapped: the Notification (started at 16) arrives before the PreToolUse (started
    at 15) of the tool it asks about. The PreToolUse is older than the dialog: the dialog stays open."""
    m, _ = run([START, UP, UPS])
    m.observe(at(PERMISSION, 16))
    m.observe(HookSeen(15, "PreToolUse", "Bash"))
    d = m.decide(17)
    assert (d.status, d.attention) == ("waiting_input", "Claude needs your permission to use Bash")
    m.observe(HookSeen(30, "PostToolUse", "Bash"))  # answered: the tool ran
    assert (m.decide(31).status, m.decide(31).attention) == ("working", None)


def test_dialog_over_a_working_turn_then_answered() -> None:
    m, d = run([START, UP, UPS, PRE])
    assert d.status == "working"
    m.observe(ScreenSeen(10, "dialog", "auto-mode", "Auto mode cannot check actions"))
    d = m.decide(10)
    assert (d.status, d.attention, d.source) == ("waiting_input", "Auto mode cannot check actions", "screen")
    m.observe(ScreenSeen(11, "other"))
    assert m.decide(11).status == "working" and m.decide(11).attention is None


def test_trust_then_key_then_prompt_a_person_answers_both() -> None:
    m, d = run([START, TRUST])
    assert d.status == "waiting_input"
    m.observe(at(APIKEY, 5))
    assert m.decide(5).attention == "Claude Code asks whether to use the API key"
    m.observe(ScreenSeen(6, "prompt", "empty-prompt"))
    m.observe(HookSeen(6.5, "SessionStart", "startup"))
    d = m.decide(7)
    assert (d.status, d.attention) == ("idle", None)


# -- the input gate ----------------------------------------------------------------------------------


GATES: list[tuple[str, list[Observation], bool, bool]] = [
    # (name, observations, skip_turn_wait, open)
    ("empty prompt, idle", [START, UP, PROMPT], False, True),
    ("no screen yet", [START, UP], False, False),
    ("stale screen", [START, UP, STALE], False, False),
    ("unrecognised screen", [START, UP, OTHER], False, False),
    ("trust dialog", [START, TRUST], False, False),
    ("trust dialog, --now", [START, TRUST], True, False),
    ("not logged in", [START, UP, LOGIN], True, False),
    ("working", [START, UP, UPS, PROMPT], False, False),
    ("working, --now", [START, UP, UPS, PROMPT], True, True),
    ("hook dialog, the prompt seen before it", [START, UP, PROMPT, UPS, PERMISSION], True, False),
    ("hook dialog, then the prompt back", [START, UP, UPS, PERMISSION, OTHER, PROMPT], False, False),
    ("hook dialog, then the prompt back, --now", [START, UP, UPS, PERMISSION, OTHER, PROMPT], True, True),
    ("exited", [START, PROMPT, ProcessExited(0, 0, "completed")], True, False),
    ("retry notice is not a dialog", [START, UP, PROMPT, RETRY], False, False),
    ("busy input box", [START, UP, UPS, BUSY], False, False),
    ("busy input box, --now", [START, UP, UPS, BUSY], True, True),
]


@pytest.mark.parametrize(("name", "seq", "skip", "open_"), GATES, ids=[g[0] for g in GATES])
def test_input_gate(name: str, seq: list[Observation], skip: bool, open_: bool) -> None:
    m, _ = run(seq)
    gate = m.input_gate(len(seq) + 0.01, skip_turn_wait=skip)
    assert gate.open is open_, gate.reason
    assert gate.reason


def test_a_person_typing_holds_prompts_back_for_a_while() -> None:
    m, _ = run([START, UP, PROMPT, PersonTyped(0)])
    gate = m.input_gate(4.5)
    assert not gate.open and "person" in gate.reason and gate.recheck_at == 4 + PERSON_HOLD
    assert m.input_gate(4 + PERSON_HOLD).open


def test_a_plain_program_has_no_screen_rules() -> None:
    m, d = run([START], kind="command")
    assert (d.status, d.source) == ("idle", "process")
    gate = m.input_gate(2)
    assert gate.open and "no screen rules" in gate.reason
    m.observe(PersonTyped(3))
    assert not m.input_gate(3.5).open
    m.observe(ProcessExited(4, 0, "completed"))
    assert m.decide(4).status == "exited" and not m.input_gate(5).open


def test_evidence_names_each_witness_with_its_age() -> None:
    m, _ = run([START, UP, UPS, tr("working"), TRUST])
    ev = m.evidence(10.0)
    assert ev["process"] == {"observation": "ProcessStarted", "age_s": 9.0}
    assert ev["hooks"] == {"observation": "HookSeen", "event": "UserPromptSubmit", "age_s": 7.0}
    assert ev["transcript"] == {"observation": "TranscriptSeen", "state": "working", "age_s": 6.0}
    assert ev["screen"] == {"observation": "ScreenSeen", "kind": "dialog", "rule": "trust-folder",
                            "reason": "Claude Code asks whether to trust /w", "age_s": 5.0}
    assert ev["person"] is None
