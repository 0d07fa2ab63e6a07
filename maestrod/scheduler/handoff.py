"""Context hand-off: a run worker whose conversation nears its model's context window checkpoints, and a
fresh session takes its task over.

How full a Claude session's context is comes from its transcript: the last main-chain assistant record's
``usage`` (``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``: what the model read to
write that turn), against the window of its ``model`` (:data:`KNOWN_WINDOWS`, ``[handoff] windows`` to add or
override, ``default_window`` for an unknown one). At ``[handoff] at`` (0.8) of the window:

1. the worker is prompted to checkpoint: commit its work and write a short note to a path maestrod gives;
2. once its turn has ended (or ``checkpoint_timeout_seconds`` passed) the note is read, and the worker is
   hibernated (kept: ``session wake`` resumes it on demand);
3. a successor is spawned on the same task with the run's options, in the predecessor's worktree
   (``--worktree-of``) or its directory, its first prompt seeded with the note, the task and maestro's digest
   of the predecessor (within ``seed_budget_tokens``); the run's assignment moves to it; mail addressed to the
   predecessor reaches it (unread mail is copied, later mail forwarded); both timelines link the two.

The pure parts (reading the usage, the window table, the seed within its budget) are functions here; the
:class:`Handoffs` service watches the workers and carries the steps out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from maestrod.scheduler.config import HandoffConfig
from maestrod.sessions.store import SessionStore
from shared import errors

log = logging.getLogger("maestrod.handoff")

SYSTEM = "system"
#: Context windows by model-name prefix (the longest matching prefix wins); a ``[1m]`` model gets 1,000,000.
KNOWN_WINDOWS: dict[str, int] = {
    "claude-opus-4": 200_000, "claude-sonnet-4": 200_000, "claude-haiku-4": 200_000, "claude-3": 200_000,
}
#: How much of a transcript's end is read to find its last turn's usage.
TAIL_BYTES = 512 * 1024
#: A hand-off note longer than this is cut (it goes into a prompt).
NOTE_MAX_CHARS = 8000
CHARS_PER_TOKEN = 4
#: A worker's transcript is looked at no more than this often (seconds) while it keeps changing.
CHECK_INTERVAL = 1.0


@attrs.frozen
class ContextUse:
    model: str
    tokens: int
    window: int

    @property
    def share(self) -> float:
        return self.tokens / self.window if self.window else 0.0


def window_for(model: str, cfg: HandoffConfig) -> int:
    table = {**KNOWN_WINDOWS, **cfg.windows}
    if "[1m]" in model and model not in cfg.windows:
        return 1_000_000
    best = max((p for p in table if model.startswith(p)), key=len, default=None)
    return table[best] if best is not None else cfg.default_window


def last_usage(tail: bytes) -> tuple[str, int] | None:
    """(model, context tokens) of the last main-chain assistant turn in the end of a transcript."""
    for line in reversed(tail.splitlines()):
        if b'"usage"' not in line or b'"assistant"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the first line of the tail may be cut, the last one half-written
        if not isinstance(record, dict) or record.get("type") != "assistant" or record.get("isSidechain"):
            continue
        message = record.get("message") or {}
        usage = message.get("usage") or {}
        model = str(message.get("model") or "")
        if model == "<synthetic>" or not usage:
            continue
        tokens = sum(int(usage.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                                     "cache_read_input_tokens"))
        return model, tokens
    return None


def read_tail(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        f.seek(max(0, end - size))
        return f.read()


def context_use(path: str | None, cfg: HandoffConfig) -> ContextUse | None:
    if not path:
        return None
    found = None
    try:
        # The last turn is nearly always in the last few KB; a big tool result after it needs more.
        for size in (64 * 1024, TAIL_BYTES):
            found = last_usage(read_tail(path, size))
            if found is not None:
                break
    except OSError:
        return None
    if found is None:
        return None
    model, tokens = found
    return ContextUse(model, tokens, window_for(model, cfg))


def checkpoint_prompt(use: ContextUse, note_path: Path) -> str:
    return (f"maestro: your context is {use.share:.0%} full ({use.tokens:,} of {use.window:,} tokens). Checkpoint "
            f"now, a fresh session will continue your task: 1) commit your work so far (git add and git commit "
            f"with a message saying where you are), 2) write a short hand-off note to {note_path}: what is done, "
            "what is left, what you learned that is not obvious from the code, where the relevant files are. Then "
            "stop: do not start anything new.")


def _cut(text: str, tokens: int) -> str:
    limit = max(0, tokens * CHARS_PER_TOKEN)
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1:]


def seed_prompt(task: dict[str, Any], predecessor: str, note: str | None, digest: str, budget_tokens: int) -> str:
    """The successor's first prompt: the task, the note (first), then as much of the digest (its latest
    steps) as the budget leaves."""
    head = (f"You take over task {task['id']}: {task['title']} from session {predecessor}, whose context was "
            "nearly full. It committed its work and left the note below; the digest shows its last steps. Go on "
            f"from there. When the task is done and verified, run `maestroctl task report complete {task['id']} "
            f"--message \"<what changed>\"`; if you cannot finish it, `maestroctl task report blocked {task['id']} "
            "--message \"<why>\"`.")
    if task.get("description"):
        head += f"\n\n<task_description>\n{task['description']}\n</task_description>"
    note_text = (note or "(the predecessor wrote no note)").strip()[:NOTE_MAX_CHARS]
    used = (len(head) + len(note_text)) // CHARS_PER_TOKEN + 40
    left = max(0, budget_tokens - used)
    parts = [head, f"<handoff_note from=\"{predecessor}\">\n{note_text}\n</handoff_note>"]
    if digest.strip() and left > 0:
        parts.append(f"<predecessor_digest session=\"{predecessor}\">\n{_cut(digest.strip(), left)}\n"
                     "</predecessor_digest>")
    return "\n\n".join(parts)


#: What the hand-off needs of the run: the worker's assignment, and a successor spawned on it.
Assignment = tuple[str, str]  # (run id, task id)
FindAssignment = Callable[[str], "Assignment | None"]
SpawnSuccessor = Callable[[str, str, str, str], Awaitable[str]]  # (run, task, predecessor, seed) -> new id


class Handoffs:
    def __init__(self, cfg: HandoffConfig, sessions: SessionStore, data_dir: Path, *,
                 assignment_of: FindAssignment, successor: SpawnSuccessor,
                 prompt: Callable[[str, str], Awaitable[Any]], hibernate: Callable[[str], Awaitable[Any]],
                 digest_text: Callable[[str], str], forward_mail: Callable[[str, str], int],
                 task_of: Callable[[str], dict[str, Any]]) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.data_dir = data_dir
        self._assignment_of = assignment_of
        self._successor = successor
        self._prompt = prompt
        self._hibernate = hibernate
        self._digest_text = digest_text
        self._forward_mail = forward_mail
        self._task_of = task_of
        #: Sessions whose hand-off is under way (checked no more).
        self.active: set[str] = set()
        self._checking: set[str] = set()
        self._again: set[str] = set()
        self._waiters: list[tuple[Callable[[dict[str, Any]], bool], trio.Event]] = []
        self._nursery: trio.Nursery | None = None

    def context_of(self, transcript_path: str | None) -> dict[str, Any] | None:
        use = context_use(transcript_path, self.cfg)
        return None if use is None else {"model": use.model, "tokens": use.tokens, "window": use.window,
                                         "share": round(use.share, 3)}

    def on_event(self, event: dict[str, Any]) -> None:
        for pred, done in list(self._waiters):
            if pred(event):
                done.set()
        if not self.cfg.enabled or self._nursery is None:
            return
        topic, data = event["topic"], event["data"]
        if topic == "session.digest" or (topic == "session.status" and data.get("to") == "idle"):
            sid = data.get("session_id")
            if not sid or sid in self.active:
                return
            if sid in self._checking:
                self._again.add(sid)  # looked at once more when the check under way is over
            else:
                self._checking.add(sid)
                self._nursery.start_soon(self._watch, sid)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def _watch(self, sid: str) -> None:
        """Check ``sid`` now, then at most once a second while its transcript keeps changing."""
        try:
            while True:
                try:
                    found = await self._check(sid)
                except Exception:  # a bad transcript or row must not take the service down
                    log.exception("session %s: its context use could not be read", sid)
                    return
                if found is not None:
                    break
                await trio.sleep(CHECK_INTERVAL)
                if sid not in self._again:
                    return
                self._again.discard(sid)
        finally:
            self._checking.discard(sid)
            self._again.discard(sid)
        await self._run_hand_off(sid, *found)

    async def _check(self, sid: str) -> tuple[Assignment, ContextUse] | None:
        row = self.sessions.find(sid)
        if row is None or row["agent"] != "claude" or row["status"] in ("exited", "hibernated"):
            return None
        found = self._assignment_of(sid)
        if found is None:
            return None
        use = await trio.to_thread.run_sync(context_use, row["transcript_path"], self.cfg)
        if use is None or use.share < self.cfg.at:
            return None
        self.active.add(sid)
        return found, use

    async def _run_hand_off(self, sid: str, found: Assignment, use: ContextUse) -> None:
        try:
            await self.hand_off(sid, found, use)
        except Exception as exc:
            log.exception("session %s: the hand-off failed", sid)
            self.active.discard(sid)  # its slot is its own again (it keeps its task)
            self.sessions.record(SYSTEM, sid, "session.handoff", {"stage": "failed", "reason": str(exc)})

    async def _event(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        done = trio.Event()
        entry = (pred, done)
        self._waiters.append(entry)
        try:
            with trio.move_on_after(timeout):
                await done.wait()
        finally:
            self._waiters.remove(entry)
        return done.is_set()

    async def hand_off(self, sid: str, found: Assignment, use: ContextUse) -> str:
        rid, tid = found
        note_path = self.data_dir / "sessions" / sid / "handoff.md"
        note_path.parent.mkdir(parents=True, exist_ok=True)
        note_path.unlink(missing_ok=True)
        self.sessions.record(SYSTEM, sid, "session.handoff", {
            "stage": "checkpoint", "run_id": rid, "task_id": tid, "model": use.model, "context_tokens": use.tokens,
            "window": use.window, "note_path": str(note_path),
            "reason": f"context {use.share:.0%} full (>= [handoff] at = {self.cfg.at:g})"})
        ended = trio.Event()

        def turn_ended(e: dict[str, Any]) -> bool:
            d = e["data"]
            if e["topic"] == "session.prompt_delivered" and d.get("session_id") == sid:
                delivered.set()
            return (delivered.is_set() and e["topic"] == "session.status" and d.get("session_id") == sid
                    and d.get("to") in ("idle", "exited", "hibernated"))

        delivered = trio.Event()
        self._waiters.append((turn_ended, ended))
        try:
            await self._prompt(sid, checkpoint_prompt(use, note_path))
            with trio.move_on_after(self.cfg.checkpoint_timeout_seconds):
                await ended.wait()
        finally:
            self._waiters.remove((turn_ended, ended))
        try:
            note: str | None = note_path.read_text(errors="replace")
        except OSError:
            note = None
        digest = self._digest_text(sid)
        try:
            await self._hibernate(sid)
        except errors.RpcError as exc:
            log.info("session %s: not hibernated after its checkpoint: %s", sid, exc.message)
        seed = seed_prompt(self._task_of(tid), sid, note, digest, self.cfg.seed_budget_tokens)
        new = await self._successor(rid, tid, sid, seed)
        copied = self._forward_mail(sid, new)
        self.sessions.record(SYSTEM, sid, "session.handoff", {
            "stage": "handed_off", "successor": new, "run_id": rid, "task_id": tid, "note": note is not None,
            "mail_copied": copied})
        self.sessions.record(SYSTEM, new, "session.handoff", {
            "stage": "took_over", "predecessor": sid, "run_id": rid, "task_id": tid})
        return new
