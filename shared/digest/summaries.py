"""One-line summaries of steps: tool calls with their outcome, the first sentence of the agent's words.

Why a module of its own: what a coordinator must see of a step (the command or path that identifies it,
the verbs that matter, the failure) changes with the agents' tools, not with how entries are kept.
Summarizers are chosen by tool name; every adapter reports its tools under their own names
(Claude Code's ``Bash``, ``Edit``...; Codex's ``exec_command``, ``apply_patch``...).
"""

from __future__ import annotations

import re
from typing import Any

from shared.lazy_re import lazy_pattern
from shared.transcript.events import FailureKind, ToolOutcome

__all__ = [
    "MAX_SUMMARY",
    "clip",
    "first_sentence",
    "format_duration",
    "format_tokens",
    "short_path",
    "summarize_tool_call",
    "tool_summary",
]

MAX_SUMMARY = 120
#: Characters of a Bash command kept in a summary (at least 40, so a command stays recognisable).
BASH_CHARS = 56
#: Characters of a prompt / assistant sentence kept.
TEXT_CHARS = 96
ARG_CHARS = 40


_SENTENCE_MARKS = ((". ", 23), ("! ", 23), ("? ", 23), (".\t", 23), ("。", 8), ("！", 8), ("？", 8))
#: ``_SENTENCE_MARKS`` as one pattern per shortest length (the match starts at the mark's first character).
_SENTENCE_MARK_RES = tuple(
    (re.compile("|".join(re.escape(mark) for mark, at in _SENTENCE_MARKS if at == shortest)), shortest)
    for shortest in sorted({at for _mark, at in _SENTENCE_MARKS}, reverse=True)
)
_MARKUP_RE = lazy_pattern(r"\*\*|__|`")


def clip(text: str, limit: int) -> str:
    """Whitespace-collapsed ``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    text = " ".join(text[: limit * 4].split())  # a prefix suffices: collapsing only shortens
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def short_path(path: Any) -> str:
    """Last two segments of a path (``/home/u/proj/src/api.py`` → ``src/api.py``): enough to recognise a
    file, short enough for a digest line.  A trailing slash (a directory) is kept."""
    if not isinstance(path, str) or not path:
        return "?"
    parts = [p for p in re.split(r"[/\\]", path) if p]
    if not parts:
        return path
    tail = "/" if path.endswith(("/", "\\")) else ""
    if len(parts) <= 2 and not path.startswith(("/", "\\")) and ":" not in parts[0]:
        return "/".join(parts) + tail
    return "/".join(parts[-2:]) + tail


def _line_count(text: Any) -> int:
    if not isinstance(text, str) or not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def first_sentence(text: str, limit: int = TEXT_CHARS) -> str:
    """First sentence of an assistant message, clipped to ``limit``.

    Markdown markup is removed; a heading is skipped when a paragraph follows it (``## Summary`` says
    nothing); a filler opener (``Perfect!``, ``Done.``) is extended by the next sentence.
    """
    lines: list[str] = []
    position = 0
    size = len(text)
    while position < size and len(lines) < 2:
        newline = text.find("\n", position)
        if newline < 0:
            newline = size
        line = text[position : min(newline, position + 2000)].strip()
        position = newline + 1
        if (
            not line
            or line.startswith("```")
            or not line.strip(_RULE_STRIP)
            or (line[0] == "<" and _TAG_LINE_RE().match(line))
        ):
            continue
        lines.append(line)
    if not lines:
        return ""
    if lines[0].startswith("#") and len(lines) > 1 and not lines[1].startswith("#"):
        lines.pop(0)
    line = lines[0][: limit * 3]
    if "*" in line or "`" in line or "_" in line:
        line = _MARKUP_RE().sub("", line)
    line = line.lstrip("#>*-•+ ").strip()
    if not line:
        return ""
    # The first sentence mark from the shortest sentence on (a shorter "sentence" is a filler opener,
    # Perfect!: keep going): one search per length instead of one per mark.
    end = len(line)
    for marks, shortest in _SENTENCE_MARK_RES:
        match = marks.search(line, shortest)
        if match is not None and match.start() + 1 < end:
            end = match.start() + 1
    return clip(line[:end], limit)


_RULE_STRIP = "-*_=#|: "
_TAG_LINE_RE = lazy_pattern(r"^</?[\w-]+>$")


def _scalar_args(tool_input: dict[str, Any], limit: int = ARG_CHARS) -> str:
    parts = []
    for key, value in tool_input.items():
        if isinstance(value, (str, int, float, bool)) and value != "":
            parts.append(f"{key}={value}")
        if len(parts) == 2:
            break
    return clip(" ".join(parts), limit)


#: Characters of a command kept when it must be cut and its description or verbs follow (at least 40 kept
#: whole, so the command stays recognisable and searchable).
CUT_COMMAND_CHARS = 48
DESCRIPTION_CHARS = 40
#: Steps a coordinator must not miss inside a long command (spawning workers, committing, running tests).
_VERB_RE = lazy_pattern(
    r"\bmaestroctl(?:\s+--?[\w-]+(?:[= ][^\s-][^\s]*)?)*\s+(session\s+(?:spawn|stop|kill|delete)|task\s+(?:create|update|done)"
    r"|mail\s+send|worktree\s+remove)\b"
    r"|\bgit\s+(?:-C\s+\S+\s+)?(commit|push|merge|rebase|reset\s+--hard|worktree\s+add|tag)\b"
    r"|\b(pytest|unittest|(?:npm|yarn|pnpm)\s+(?:run\s+)?test|cargo\s+test|go\s+test|jest|vitest|make\s+test|tox|nox"
    r"|rspec|ctest|(?:mvn|gradle)\s+test)\b"
)


def command_verbs(command: str, skip: int = 0) -> str:
    """The verbs that matter in ``command`` after its first ``skip`` characters, in order, with their count:
    ``…maestroctl session spawn ×2, …git commit``."""
    counts: dict[str, int] = {}
    for match in _VERB_RE().finditer(command, skip):
        if match.group(1):
            verb = "maestroctl " + " ".join(match.group(1).split())
        elif match.group(2):
            verb = "git " + " ".join(match.group(2).split())
        else:
            verb = " ".join(match.group(3).split())
        counts[verb] = counts.get(verb, 0) + 1
    return ", ".join(f"…{verb}" + (f" ×{n}" if n > 1 else "") for verb, n in counts.items())


def summarize_command(label: str, command: str, description: Any = None, suffix: str = "") -> str:
    """``Bash: npm test``; a command too long for the line keeps its first characters, then the agent's own
    description of the call and the verbs that matter from the cut part (``Bash: for t in $(maestroctl
    task ready… · spawn workers · …maestroctl session spawn ×2``)."""
    text = " ".join(command[: BASH_CHARS * 64].split())
    if len(text) <= BASH_CHARS:
        return f"{label}: {text}{suffix}"
    head = text[: CUT_COMMAND_CHARS - 1].rstrip()
    extras = []
    if isinstance(description, str) and description.strip():
        extras.append(clip(description, DESCRIPTION_CHARS))
    verbs = command_verbs(text, len(head))
    if verbs:
        extras.append(verbs)
    if not extras:
        return f"{label}: {clip(text, BASH_CHARS)}{suffix}"
    return f"{label}: {head}…{suffix} · " + " · ".join(extras)


def _summarize_bash(tool_input: dict[str, Any]) -> str:
    background = " (bg)" if tool_input.get("run_in_background") else ""
    return summarize_command("Bash", str(tool_input.get("command", "")), tool_input.get("description"), background)


def _summarize_edit(tool_input: dict[str, Any]) -> str:
    added = _line_count(tool_input.get("new_string"))
    removed = _line_count(tool_input.get("old_string"))
    return f"Edit: {short_path(tool_input.get('file_path'))} (+{added} -{removed})"


def _summarize_multi_edit(tool_input: dict[str, Any]) -> str:
    edits = tool_input.get("edits")
    added = removed = 0
    if isinstance(edits, list):
        for edit in edits:
            if isinstance(edit, dict):
                added += _line_count(edit.get("new_string"))
                removed += _line_count(edit.get("old_string"))
    return f"MultiEdit: {short_path(tool_input.get('file_path'))} (+{added} -{removed})"


def _summarize_write(tool_input: dict[str, Any]) -> str:
    return (
        f"Write: {short_path(tool_input.get('file_path'))} ({_line_count(tool_input.get('content'))} lines)"
    )


def _summarize_grep(tool_input: dict[str, Any]) -> str:
    pattern = clip(str(tool_input.get("pattern", "")), ARG_CHARS)
    where = tool_input.get("path")
    scope = short_path(where) if where else str(tool_input.get("glob") or tool_input.get("type") or "")
    return f'Grep: "{pattern}" {scope}'.rstrip()


def _summarize_glob(tool_input: dict[str, Any]) -> str:
    where = tool_input.get("path")
    scope = f" {short_path(where)}" if where else ""
    return f"Glob: {clip(str(tool_input.get('pattern', '')), ARG_CHARS)}{scope}"


def _summarize_task(name: str, tool_input: dict[str, Any]) -> str:
    kind = tool_input.get("subagent_type")
    label = f"{name}({kind})" if kind else name
    description = tool_input.get("description") or tool_input.get("prompt") or ""
    background = " (bg)" if tool_input.get("run_in_background") else ""
    return f"{label}: {clip(str(description), 60)}{background}"


def _summarize_todo(tool_input: dict[str, Any]) -> str:
    todos = tool_input.get("todos")
    if not isinstance(todos, list):
        return "TodoWrite"
    done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
    return f"TodoWrite: {done}/{len(todos)} done"


def _summarize_question(tool_input: dict[str, Any]) -> str:
    questions = tool_input.get("questions")
    text = ""
    if isinstance(questions, list) and questions and isinstance(questions[0], dict):
        text = str(questions[0].get("question", ""))
    return f"AskUserQuestion: {clip(text, 80)}"


def _summarize_plan(tool_input: dict[str, Any]) -> str:
    return f"ExitPlanMode: {first_sentence(str(tool_input.get('plan', '')), 80)}"


def _summarize_url(tool_input: dict[str, Any]) -> str:
    url = re.sub(r"^https?://(www\.)?", "", str(tool_input.get("url", "")))
    return f"WebFetch: {clip(url, 60)}"


_PATCH_FILE_RE = lazy_pattern(r"^\*\*\* (Add|Update|Delete) File: (.+)$|^\*\*\* Move to: (.+)$", re.MULTILINE)


def _summarize_patch(tool_input: dict[str, Any]) -> str:
    """Codex's ``apply_patch``: ``Patch: calc.py (+1 -1), tests/test_calc.py (new +8)`` (every file, as far as
    the line allows: a coordinator must see each edited path)."""
    patch = str(tool_input.get("input") or "")
    files: list[list[Any]] = []  # [path, kind, added, removed]
    for line in patch.splitlines():
        first = line[:1]
        if first == "+":  # (the file lines all start with "*** ")
            if files:
                files[-1][2] += 1
        elif first == "-":
            if files:
                files[-1][3] += 1
        elif first == "*":
            match = _PATCH_FILE_RE().match(line)
            if match:
                if match.group(3) and files:
                    files[-1][0] = match.group(3).strip()
                elif match.group(1):
                    files.append([match.group(2).strip(), match.group(1), 0, 0])
    if not files:
        return "Patch"
    parts = []
    for path, kind, added, removed in files:
        label = short_path(path)
        if kind == "Add":
            parts.append(f"{label} (new +{added})")
        elif kind == "Delete":
            parts.append(f"{label} (deleted)")
        else:
            parts.append(f"{label} (+{added} -{removed})")
    shown = "Patch: " + ", ".join(parts)
    for keep in range(len(parts) - 1, 0, -1):
        if len(shown) <= MAX_SUMMARY - 20:
            break
        shown = "Patch: " + ", ".join(parts[:keep]) + f", +{len(parts) - keep} more"
    return shown


def _summarize_shell(tool_input: dict[str, Any]) -> str:
    """Codex's command tools (``exec_command {cmd}``, ``shell``/``local_shell`` ``{command: argv}``)."""
    command = tool_input.get("cmd", tool_input.get("command"))
    if isinstance(command, list):  # an argv; ``bash -lc <script>`` is the script
        argv = [str(a) for a in command]
        shell = len(argv) == 3 and argv[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and argv[1] in ("-lc", "-c")
        command = argv[2] if shell else " ".join(argv)
    return summarize_command("Shell", str(command or ""), tool_input.get("justification"))


def _summarize_plan_update(tool_input: dict[str, Any]) -> str:
    steps = tool_input.get("plan")
    if not isinstance(steps, list):
        return "Plan"
    done = sum(1 for step in steps if isinstance(step, dict) and step.get("status") == "completed")
    return f"Plan: {done}/{len(steps)} done"


def _summarize_user_input(tool_input: dict[str, Any]) -> str:
    questions = tool_input.get("questions")
    text = ""
    if isinstance(questions, list) and questions and isinstance(questions[0], dict):
        text = str(questions[0].get("question") or questions[0].get("header") or "")
    return f"Question: {clip(text, 80)}".rstrip(": ")


def summarize_tool_call(name: str, tool_input: dict[str, Any] | None) -> str:
    """One-line description of a tool call (without its outcome).  Unknown tools show ``Name: k=v k=v``."""
    args = tool_input if isinstance(tool_input, dict) else {}
    simple = _SUMMARIZERS.get(name)
    if simple is not None:
        return simple(args)
    if name in ("Task", "Agent"):
        return _summarize_task(name, args)
    if name == "WebSearch":
        return f'WebSearch: "{clip(str(args.get("query", "")), 60)}"'
    if name in ("Read", "NotebookRead"):
        return f"Read: {short_path(args.get('file_path') or args.get('notebook_path'))}"
    if name == "NotebookEdit":
        return f"NotebookEdit: {short_path(args.get('notebook_path'))} ({args.get('edit_mode') or 'replace'})"
    if name == "Skill":
        return f"Skill: {clip(str(args.get('skill') or args.get('command') or ''), 60)}"
    if name == "TaskCreate":
        return f"TaskCreate: {clip(str(args.get('subject', '')), 60)}"
    if name == "TaskUpdate":
        return f"TaskUpdate: #{args.get('taskId', '?')} {args.get('status', '')}".rstrip()
    if name in ("BashOutput", "KillBash", "KillShell", "TaskOutput", "TaskStop", "TaskGet"):
        ident = args.get("bash_id") or args.get("shell_id") or args.get("task_id") or args.get("taskId") or ""
        return f"{name}: {ident}".rstrip(": ")
    if name.startswith("mcp__"):
        parts = name.split("__")
        label = "/".join(parts[1:]) if len(parts) > 2 else name
        return f"{label} {_scalar_args(args)}".rstrip()
    rendered = _scalar_args(args)
    return f"{name}: {rendered}" if rendered else name


def _summarize_web_search(tool_input: dict[str, Any]) -> str:
    return f'WebSearch: "{clip(str(tool_input.get("query", "")), 60)}"'


def _summarize_view_image(tool_input: dict[str, Any]) -> str:
    return f"ViewImage: {short_path(tool_input.get('path'))}"


def _summarize_stdin(tool_input: dict[str, Any]) -> str:
    return f"Stdin: session {tool_input.get('session_id', '?')}"


_SUMMARIZERS = {
    "Bash": _summarize_bash,
    "Edit": _summarize_edit,
    "MultiEdit": _summarize_multi_edit,
    "Write": _summarize_write,
    "Grep": _summarize_grep,
    "Glob": _summarize_glob,
    "TodoWrite": _summarize_todo,
    "AskUserQuestion": _summarize_question,
    "ExitPlanMode": _summarize_plan,
    "WebFetch": _summarize_url,
    # Codex CLI
    "exec_command": _summarize_shell,
    "shell": _summarize_shell,
    "shell_command": _summarize_shell,
    "local_shell": _summarize_shell,
    "container.exec": _summarize_shell,
    "apply_patch": _summarize_patch,
    "update_plan": _summarize_plan_update,
    "request_user_input": _summarize_user_input,
    "web_search": _summarize_web_search,
    "view_image": _summarize_view_image,
    "write_stdin": _summarize_stdin,
}


def _outcome_suffix(outcome: ToolOutcome, details: dict[str, Any] | None = None) -> str:
    if not outcome.failed:
        if details and details.get("status") == "async_launched":
            return " (bg)"
        if details and details.get("total_tokens"):
            seconds = int((details.get("total_duration_ms") or 0) / 1000)
            return f" ({format_tokens(int(details['total_tokens']))} tok, {format_duration(seconds)})"
        return ""
    kind = outcome.kind
    if kind is FailureKind.EXIT:
        detail = f" — {outcome.message}" if outcome.message else ""
        return f" ✗ exit {outcome.exit_code}{detail}"
    if kind in (FailureKind.REJECTED, FailureKind.CANCELLED, FailureKind.INTERRUPTED, FailureKind.ABORTED):
        return f" ✗ {kind.value}"
    return f" ✗ {outcome.message or (kind.value if kind else 'error')}"


def tool_summary(
    name: str | None,
    tool_input: dict[str, Any] | None,
    outcome: ToolOutcome,
    details: dict[str, Any] | None = None,
) -> str:
    """Call summary plus outcome, within :data:`MAX_SUMMARY`: the error detail is shortened first, so the
    command or path (what a reader needs to recognise the step) survives."""
    base = summarize_tool_call(name or "?", tool_input)
    suffix = _outcome_suffix(outcome, details)
    if suffix == " (bg)" and base.endswith(" (bg)"):
        suffix = ""
    if len(base) + len(suffix) > MAX_SUMMARY:
        suffix = " " + clip(suffix, max(16, MAX_SUMMARY - len(base) - 1))
        if len(base) + len(suffix) > MAX_SUMMARY:
            base = clip(base, MAX_SUMMARY - len(suffix))
    return base + suffix



def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"



def format_tokens(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return str(value)
