"""The session status machine: pure, sans-I/O, in the style of h11's ``_state.py``.

Four witnesses report what they see; the machine keeps each one's latest observation and decides,
from those alone, the session's status, why, which witness decided it, whether a person is needed
(``needs_attention``), and whether a prompt may be typed now (:meth:`StatusMachine.input_gate`).
Nothing here reads a clock, a PTY or the store: time arrives inside the observations (``at``) and as
``now``; a decision that may change by itself later says when to look again (``recheck_at``).

The witnesses, and what each is trusted for:

* **process** -- ours. Started, exited (final, whatever anyone else said). Always right, sees little.
* **hooks** -- Claude Code's own reports. Precise about turns: ``UserPromptSubmit``/``PreToolUse``/
  ``PostToolUse`` mean a turn runs; only an unblocked ``Stop`` ends one (a Stop hook may block and keep
  the agent going, so nothing else may call a turn over before it ran -- the late-Stop race seen with
  Claude Code 2.1.332, whose transcript says "turn over" before the Stop hook returns).
  Blind to dialogs that open before the first hook, and to interrupts (no Stop hook fires).
  Some hooks run in the background (Claude Code's ``async``), so reports may arrive out of order: a hook's
  ``at`` is when its process started, and a report older than the turn hook already held is no witness of
  the turn (a PreToolUse arriving after the Stop that followed it leaves the session idle), nor does a
  dialog reported before the turn moved on open again.
* **transcript** -- the turn state read from the session's transcript. Lags the hooks; ends a turn the
  hooks cannot (``interrupted``, ``api_error``), sees an unanswered question (``waiting_input``),
  and starts a turn whose hook was lost.
* **screen** -- the screen rules matched on the terminal (:mod:`maestrod.sessions.screens`). The only
  witness of the agent's own dialogs (trust this folder, use this API key, permission prompts), of
  login trouble and of API retries, and of the empty input prompt; a dialog wins over every turn state.
  A screen that skipped output is ``stale``: it proves nothing, least of all an empty prompt.

Agent kinds are data (:data:`AGENT_KINDS`): which witnesses exist for a kind, so Codex slots in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

Status = Literal["queued", "spawning", "working", "waiting_input", "idle", "hibernated", "exited", "unknown"]
#: Every status, in the order people read them. ``queued``: the spawn waits for room; ``hibernated``: the
#: agent process was stopped on purpose and its identity kept (it can be resumed); ``unknown``: not enough
#: evidence yet (e.g. a session found running after a restart, before any witness spoke).
STATUSES: tuple[Status, ...] = ("queued", "spawning", "working", "waiting_input", "idle", "hibernated",
                                "exited", "unknown")
Source = Literal["process", "hook", "transcript", "screen", "person", "daemon"]
ScreenKind = Literal["dialog", "notice", "blocked", "prompt", "busy", "other", "stale"]
TurnState = Literal["working", "compacting", "waiting_input", "idle", "interrupted", "api_error"]

#: A person who typed into the session (attach, ``session input``) keeps automatic prompts out this long.
PERSON_HOLD = 3.0
#: A turn the transcript says is over, with the empty prompt on screen but no Stop hook, is taken as over
#: after this long (a lost hook call must not leave a session ``working`` for ever).
MISSED_STOP_GRACE = 5.0
#: Notification types that mean "a person must answer" (a dialog the hooks do report).
DIALOG_NOTIFICATIONS = frozenset({"permission_prompt", "agent_needs_input", "elicitation_dialog"})


@attrs.frozen
class AgentKind:
    """What can be known about an agent of this kind, and how it is driven."""

    name: str
    #: It reports its turns through hooks (Claude Code; Codex has hooks too).
    hooks: bool
    #: It writes a transcript whose turn state maestrod reads.
    transcript: bool
    #: A screen-rule table exists for it (dialogs, empty prompt): without one, a running process is
    #: simply ``idle`` and prompts are typed whenever no person is typing.
    screen_rules: bool
    #: The key that interrupts a turn.
    interrupt_key: bytes
    interrupt_name: str
    #: The agent's name for people ("Claude Code asks: ...").
    label: str = ""
    #: Its SessionStart hook says the agent is up and idle (Claude Code: at launch, /clear, resume). Codex's
    #: comes with the first prompt, after that prompt's rollout record and before its UserPromptSubmit: it
    #: says only that a thread began, neither that a turn runs nor that one ended.
    session_start_says_idle: bool = True


AGENT_KINDS: Mapping[str, AgentKind] = {
    "claude": AgentKind("claude", hooks=True, transcript=True, screen_rules=True, interrupt_key=b"\x1b",
                        interrupt_name="escape", label="Claude Code"),
    # Codex CLI: the same witnesses. Its hooks have no Notification (a PermissionRequest hook is taken as
    # Claude's permission_prompt), its rollout is found once the first prompt starts it (docs/codex.md).
    "codex": AgentKind("codex", hooks=True, transcript=True, screen_rules=True, interrupt_key=b"\x1b",
                       interrupt_name="escape", label="Codex", session_start_says_idle=False),
    "command": AgentKind("command", hooks=False, transcript=False, screen_rules=False, interrupt_key=b"\x03",
                         interrupt_name="ctrl-c"),
}


# -- observations (the machine's inputs) -------------------------------------------------------------


@attrs.frozen
class ProcessStarted:
    at: float


@attrs.frozen
class ProcessExited:
    at: float
    code: int | None
    #: ``completed`` (exit 0), ``failed``, ``stopped`` (someone asked), ``lost`` (a previous daemon's).
    reason: str


@attrs.frozen
class HookSeen:
    at: float
    event: str
    #: The notification type for ``Notification``; the tool name for tool events.
    detail: str | None = None
    message: str | None = None
    #: A Stop hook that a stop decider blocked: the agent goes on working.
    blocked: bool = False


@attrs.frozen
class TranscriptSeen:
    #: When maestrod read it (what orders it against the other witnesses).
    at: float
    state: TurnState
    #: When the agent wrote the newest record the state rests on (None: not known).  Claude Code flushes
    #: its transcript in batches, so this can be well before ``at``.
    written_at: float | None = None


@attrs.frozen
class ScreenSeen:
    at: float
    kind: ScreenKind
    rule: str | None = None
    reason: str | None = None


@attrs.frozen
class PersonTyped:
    """A person typed into the terminal (attach or ``session input``)."""

    at: float


@attrs.frozen
class Hibernated:
    at: float


@attrs.frozen
class Queued:
    at: float


Observation = (ProcessStarted | ProcessExited | HookSeen | TranscriptSeen | ScreenSeen | PersonTyped
               | Hibernated | Queued)


# -- outputs ---------------------------------------------------------------------------------------


@attrs.frozen
class Decision:
    status: Status
    #: Why, for people ("the Stop hook ended the turn", "Claude Code asks whether to trust /w").
    reason: str
    #: The witness whose observation decided the status.
    source: Source
    #: What a person must do or know, or None.
    attention: str | None = None
    attention_source: Source | None = None
    #: Only for ``exited``.
    exit_code: int | None = None
    exit_reason: str | None = None
    #: When the decision may change without a new observation (a grace period ends).
    recheck_at: float | None = None
    #: The deciding observation, short: ``hook:Stop``, ``transcript:interrupted``, ``screen:trust-folder``.
    witness: str = ""

    def same_as(self, other: Decision | None) -> bool:
        """Equal for what is recorded (status, attention): a new reason alone is not a change."""
        return other is not None and (self.status, self.attention) == (other.status, other.attention)


@attrs.frozen
class Gate:
    """Whether a prompt may be typed into the session now, and if not, why and until when."""

    open: bool
    reason: str
    recheck_at: float | None = None
    #: What closes it: ``parked`` (exited, hibernated, queued), ``person``, ``screen`` (not known or stale),
    #: ``dialog``, ``no_prompt`` (the empty prompt is not drawn), ``turn`` (the agent is working).
    blocker: str | None = None


_TURN_RUNNING = frozenset({"UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure"})
_TRANSCRIPT_WORKING = frozenset({"working", "compacting"})
_TRANSCRIPT_ENDED = frozenset({"interrupted", "api_error"})


class StatusMachine:
    """One session's witnesses and the status they decide.  Feed :meth:`observe`; read :meth:`decide`."""

    def __init__(self, kind: AgentKind, initial: Status = "spawning") -> None:
        self.kind = kind
        self.initial: Status = initial
        self.process: ProcessStarted | ProcessExited | None = None
        #: The hook that started last (by ``at``, not by arrival), for ``session explain``.
        self.hook: HookSeen | None = None
        #: The last hook that changed the turn (Notification idle reminders do not). A report that started
        #: before it (an ``async`` hook arriving late) does not replace it.
        self.turn_hook: HookSeen | None = None
        #: An open dialog reported by a Notification hook, until a later hook shows the turn moved on.
        self.dialog_hook: HookSeen | None = None
        #: When the turn last moved on (a turn hook, an interrupt, the empty prompt back): a dialog reported
        #: before that is over, however late its report arrives.
        self.moved_on_at: float | None = None
        self.transcript: TranscriptSeen | None = None
        self.screen: ScreenSeen | None = None
        self.person: PersonTyped | None = None
        self.parked: Hibernated | Queued | None = None
        #: The agent's empty input prompt has been on screen since the process started (its UI is up).
        self.prompt_seen = False

    # -- inputs --------------------------------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        if isinstance(self.process, ProcessExited) and not isinstance(obs, (Hibernated, Queued)):
            return  # exited is final until the session is resumed (a new process)
        if isinstance(obs, (ProcessStarted, ProcessExited)):
            self.process = obs
            if isinstance(obs, ProcessStarted):
                self.parked = None
                self.prompt_seen = False
        elif isinstance(obs, HookSeen):
            self._hook(obs)
        elif isinstance(obs, TranscriptSeen):
            self.transcript = obs
            if obs.state in _TRANSCRIPT_ENDED:
                self._moved_on(obs.at)  # an interrupt (Esc on the dialog) or an API error ended the turn
        elif isinstance(obs, ScreenSeen):
            if obs.kind == "prompt":
                self.prompt_seen = True
            if obs.kind == "prompt" and (self.screen is None or self.screen.kind != "prompt"):
                self._moved_on(obs.at)  # the screen went back to the empty prompt: no dialog is open any more
            self.screen = obs
        elif isinstance(obs, PersonTyped):
            self.person = obs
        else:
            self.parked = obs

    def _hook(self, obs: HookSeen) -> None:
        if self.hook is None or obs.at >= self.hook.at:
            self.hook = obs
        if obs.event == "Notification":
            if obs.detail in DIALOG_NOTIFICATIONS and (self.moved_on_at is None or obs.at >= self.moved_on_at):
                self.dialog_hook = obs  # (one asked before the turn moved on was answered already)
            return  # an idle reminder says nothing new about the turn
        if obs.event == "SessionStart" and not self.kind.session_start_says_idle:
            return  # (Codex) a turn's own hooks follow it: taken as idle, a running turn would flicker
        if obs.event in _TURN_RUNNING or obs.event in ("Stop", "SessionStart"):
            if self.turn_hook is not None and obs.at < self.turn_hook.at:
                return  # an async hook's late report: the turn has moved on since its process started
            self.turn_hook = obs
            self._moved_on(obs.at)  # the agent moved on: whatever it asked was answered

    def _moved_on(self, at: float) -> None:
        """The turn moved on at ``at``: a dialog reported before then is over (one reported after it, whose
        report merely arrived first, stays open)."""
        self.moved_on_at = at if self.moved_on_at is None else max(self.moved_on_at, at)
        if self.dialog_hook is not None and self.dialog_hook.at <= at:
            self.dialog_hook = None

    # -- the decision --------------------------------------------------------------------------------

    def decide(self, now: float) -> Decision:
        """The status from the latest observations (see the module docstring for the rules)."""
        d = self._decide(now)
        return attrs.evolve(d, witness=self._witness(d.source))

    def _witness(self, source: Source) -> str:
        if source == "hook":
            hook = self.dialog_hook if self.dialog_hook is not None else self.turn_hook
            if hook is None:
                return "hook"
            return f"hook:{hook.event}" + (f":{hook.detail}" if hook.event == "Notification" else "")
        if source == "transcript" and self.transcript is not None:
            return f"transcript:{self.transcript.state}"
        if source == "screen" and self.screen is not None:
            return f"screen:{self.screen.rule or self.screen.kind}"
        return source

    def _decide(self, now: float) -> Decision:
        if isinstance(self.process, ProcessExited):
            p = self.process
            return Decision("exited", f"the process exited ({p.reason}, code {p.code})", "process",
                            exit_code=p.code, exit_reason=p.reason)
        if isinstance(self.parked, Hibernated) and self.process is None:
            return Decision("hibernated", "hibernated: the agent was stopped and can be resumed", "daemon")
        if isinstance(self.parked, Queued) and self.process is None:
            return Decision("queued", "waiting for room to start", "daemon")
        if self.process is None:
            return Decision(self.initial, "no process yet", "daemon")
        if not self.kind.screen_rules and not self.kind.hooks:
            # A plain program: nothing reports its turns; it takes input whenever it runs.
            return Decision("idle", "the process runs (no witness reports its turns)", "process")

        turn = self._turn(now)
        screen = self.screen
        if screen is not None and screen.kind in ("dialog", "blocked"):
            reason = screen.reason or f"the screen shows {screen.rule}"
            return Decision("waiting_input", reason, "screen", attention=reason, attention_source="screen",
                            recheck_at=turn.recheck_at)
        if self.dialog_hook is not None:
            message = self.dialog_hook.message or self.dialog_hook.detail or "a dialog"
            return Decision("waiting_input", f"{self.kind.label or self.kind.name} asks: {message}", "hook",
                            attention=message,
                            attention_source="hook")
        if screen is not None and screen.kind == "notice" and turn.status in ("working", "spawning"):
            reason = screen.reason or f"the screen shows {screen.rule}"
            return attrs.evolve(turn, attention=reason, attention_source="screen")
        return turn

    def _turn(self, now: float) -> Decision:
        """Working, idle or waiting for an answer: hooks first, the transcript where hooks are blind,
        the screen to tell that the agent's UI is up."""
        hook, tr, screen = self.turn_hook, self.transcript, self.screen
        if hook is None and tr is None:
            if screen is not None and screen.kind == "prompt":
                return Decision("idle", "the empty input prompt is on screen", "screen")
            if self.prompt_seen:
                # Up, and no turn has started: Codex's first hook (SessionStart) comes with the first prompt,
                # so the screen of a prompt being typed must not send the session back to `spawning`.
                return Decision("idle", "the input prompt was on screen and no turn has started", "screen")
            return Decision("spawning", "the agent is starting", "process")
        hook_running = hook is not None and (
            hook.event in _TURN_RUNNING or (hook.event == "Stop" and hook.blocked))
        if tr is not None and (hook is None or tr.at > hook.at):
            # The transcript spoke last: it corrects what the hooks cannot see.
            if tr.state in _TRANSCRIPT_ENDED:
                what = "was interrupted" if tr.state == "interrupted" else "ended on an API error"
                return Decision("idle", f"the transcript says the turn {what} (no Stop hook fires then)",
                                "transcript")
            if tr.state == "waiting_input":
                return Decision("waiting_input", "the agent asked a question and waits for the answer",
                                "transcript", attention="the agent asked a question and waits for an answer",
                                attention_source="transcript")
            if tr.state in _TRANSCRIPT_WORKING and not hook_running and not self._written_before(tr, hook):
                return Decision("working", "the transcript shows a turn running (its hook was not seen)",
                                "transcript")
            if tr.state == "idle" and hook_running:
                # The Stop hook may still be running (and may block): the turn is not over before it says
                # so -- unless it never comes (a lost hook), which the empty prompt on screen bounds.
                if screen is not None and screen.kind == "prompt":
                    deadline = max(tr.at, screen.at) + MISSED_STOP_GRACE
                    if now >= deadline:
                        return Decision("idle", "the transcript and the screen say the turn is over; "
                                        "no Stop hook came", "transcript")
                    return Decision("working", "the turn ended in the transcript; waiting for the Stop hook",
                                    "hook", recheck_at=deadline)
                return Decision("working", "the turn ended in the transcript; waiting for the Stop hook",
                                "hook")
        if hook is None:
            return Decision("idle", f"the transcript says {tr.state if tr else 'nothing'}", "transcript")
        if hook_running:
            what = "a blocked Stop hook" if hook.event == "Stop" else f"the {hook.event} hook"
            return Decision("working", f"{what} shows a turn running", "hook")
        if hook.event == "SessionStart":
            return Decision("idle", "the SessionStart hook ran: the agent is up", "hook")
        return Decision("idle", "the Stop hook ended the turn", "hook")

    @staticmethod
    def _written_before(tr: TranscriptSeen, hook: HookSeen | None) -> bool:
        """The transcript's record was written before ``hook`` started, however late it was read: a turn's
        prompt flushed after that turn's Stop hook ran is old news, not a new turn whose hook was lost."""
        return hook is not None and tr.written_at is not None and tr.written_at <= hook.at

    # -- may a prompt be typed now? ----------------------------------------------------------------------

    def input_gate(self, now: float, *, skip_turn_wait: bool = False, from_person: bool = False) -> Gate:
        """A prompt is typed only at a verified empty input prompt, and never while a person types.

        ``skip_turn_wait`` (``--now``) skips only the wait for the running turn to end -- never the
        dialog gate: only a person (``session input``, attach) types into a dialog. ``from_person``: the
        prompt comes from a person, whose own typing does not hold it back.
        """
        d = self.decide(now)
        if d.status in ("exited", "hibernated", "queued"):
            return Gate(False, f"the session is {d.status}", blocker="parked")
        if not from_person and self.person is not None and now < self.person.at + PERSON_HOLD:
            return Gate(False, "a person is typing into the session", recheck_at=self.person.at + PERSON_HOLD, blocker="person")
        if not self.kind.screen_rules:
            if d.status in ("idle", "waiting_input") or skip_turn_wait:
                return Gate(True, "no screen rules apply to this program: it takes input while it runs")
            return Gate(False, f"the session is {d.status}", blocker="turn")
        screen = self.screen
        if screen is None or screen.kind == "stale":
            return Gate(False, "the screen is not known yet (or skipped output): waiting for a full repaint", blocker="screen")
        if screen.kind in ("dialog", "blocked"):
            return Gate(False, f"a dialog is open: {screen.reason or screen.rule}", blocker="dialog")
        if self.dialog_hook is not None:
            return Gate(False, f"a dialog is open: {self.dialog_hook.message or self.dialog_hook.detail}",
                        blocker="dialog")
        if screen.kind == "busy" and skip_turn_wait:
            return Gate(True, "--now: the input box of the running turn is on screen")
        if screen.kind != "prompt":
            return Gate(False, "the empty input prompt is not on screen", blocker="no_prompt")
        if d.status == "working" and not skip_turn_wait:
            return Gate(False, "the agent is working (the prompt waits for the turn to end)",
                        recheck_at=d.recheck_at, blocker="turn")
        if d.status == "waiting_input" and d.attention_source == "transcript" and not skip_turn_wait:
            return Gate(True, "the agent waits for an answer at its input prompt")
        return Gate(True, "the empty input prompt is on screen")

    # -- evidence, for ``session explain`` -------------------------------------------------------------

    def evidence(self, now: float) -> dict[str, dict[str, object] | None]:
        """Each witness's latest observation and its age in seconds."""

        def show(obs: object | None) -> dict[str, object] | None:
            if obs is None:
                return None
            data = attrs.asdict(obs)  # type: ignore[arg-type]
            at = data.pop("at")
            written_at = data.pop("written_at", None)
            shown = {"observation": type(obs).__name__,
                     **{k: v for k, v in data.items() if v not in (None, False)},
                     "age_s": round(max(0.0, now - float(at)), 3)}
            if written_at is not None:
                shown["written_age_s"] = round(max(0.0, now - float(written_at)), 3)
            return shown

        return {"process": show(self.process), "hooks": show(self.hook), "transcript": show(self.transcript),
                "screen": show(self.screen), "person": show(self.person)}
