"""Tool outcomes: did a tool call fail, how, and which line of its output says why.

Adapters call these on a result's text; the rules are explained in docs/transcripts.md ('Tool results').
Kept apart from the adapters because the texts to recognise (exit codes, harness errors, rejections,
tracebacks) change with the tools, not with the transcript format.
"""

from __future__ import annotations

import re

from shared.lazy_re import lazy_pattern
from shared.transcript.events import TOOL_OK, FailureKind, ToolOutcome

__all__ = ["INTERRUPT_PREFIX", "classify_exec_output", "classify_tool_result", "first_error_line", "first_line"]

_ANSI_RE = lazy_pattern(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\r")
_EXIT_RE = lazy_pattern(r"^(?:Error: )?Exit code (-?\d+)")
#: Lines that name an error outright (preferred) and lines that merely sound like one.
#: ``error\b`` is ``\berror\b`` or ``\w+Error\b`` (case is ignored) without the backtracking of ``\w+`` at
#: every letter of every word.  No alternative spans a newline, so the first match in the joined lines is in
#: the first line that matches.
_ERROR_STRONG_RE = lazy_pattern(
    r"error\b|\bERR!|\bfail(?:ed|ure|s)?\b|\bexception\b|\bfatal\b|\bpanic\b", re.IGNORECASE
)
_ERROR_WEAK = r"not found|no such|cannot|can't|unable|invalid|denied|refused|timed out|missing|undefined|✗|✘"
_ERROR_WEAK_RE = lazy_pattern(_ERROR_WEAK, re.IGNORECASE)
#: The same searches for ASCII text once lowered (same length, same positions, same word boundaries, so the
#: same lines match): case-sensitive, and every branch of the strong one starts with a letter, so the engine
#: skips to candidate letters in C (~10x faster on command output).  ``x(?<![0-9a-z_]x)`` is ``\bx``.
_ERROR_STRONG_ASCII_RE = lazy_pattern(
    r"e(?:rror\b|(?<![0-9a-z_]e)(?:xception\b|rr!))"
    r"|f(?<![0-9a-z_]f)(?:ail(?:ed|ure|s)?|atal)\b"
    r"|p(?<![0-9a-z_]p)anic\b"
)
_ERROR_WEAK_ASCII_RE = lazy_pattern(_ERROR_WEAK)
_NOISE_PREFIXES = ("npm warn", "npm WARN", "warning:", "Warning:", "WARN", "DeprecationWarning")
INTERRUPT_PREFIX = "[Request interrupted by user"
_REJECT_PREFIXES = ("The user doesn't want to proceed", "The user doesn't want to take this action")


def first_error_line(text: str, limit: int = 200) -> str:
    """Pick the most informative line of a failed command's output.

    A Python traceback is summarised by its final exception line; otherwise the first line that looks like
    an error (``error``, ``FAIL``, ``not found``…), else the last non-empty line.  ANSI escapes are removed.
    """
    if "\x1b" in text or "\r" in text:
        text = _ANSI_RE().sub("", text)
    lines = [line for line in map(str.strip, text.split("\n")) if line]
    if not lines:
        return ""
    chosen: str | None = None
    if "Traceback (most recent call last)" in text:
        for index, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last)"):
                for candidate in reversed(lines[index + 1 :]):
                    if not candidate.startswith(("File ", "^", "~")):
                        chosen = candidate
                        break
                break
    if chosen is None:
        candidates = lines
        if "arn" in text or "ARN" in text:  # every noise prefix has one of these
            candidates = [line for line in lines if not line.startswith(_NOISE_PREFIXES)] or lines
        joined = "\n".join(candidates)  # one search over all lines, not one per line
        if joined.isascii():
            lowered = joined.lower()
            match = _ERROR_STRONG_ASCII_RE().search(lowered) or _ERROR_WEAK_ASCII_RE().search(lowered)
        else:
            match = _ERROR_STRONG_RE().search(joined) or _ERROR_WEAK_RE().search(joined)
        if match is None:
            chosen = candidates[-1]
        else:
            start = joined.rfind("\n", 0, match.start()) + 1
            end = joined.find("\n", match.end())
            chosen = joined[start:] if end < 0 else joined[start:end]
    return chosen[:limit]


def classify_tool_result(text: str, is_error: bool | None, interrupted: bool = False) -> ToolOutcome:
    """Classify one ``tool_result`` (docs/transcripts.md, 'Tool results'): ``is_error`` decides failure, the text decides the kind."""
    if not is_error:
        if interrupted:
            return ToolOutcome(True, FailureKind.INTERRUPTED)
        return TOOL_OK
    body = text.lstrip()
    if body.startswith(_REJECT_PREFIXES) or body.startswith("User rejected tool use"):
        return ToolOutcome(True, FailureKind.REJECTED, message="rejected by user")
    if body.startswith(INTERRUPT_PREFIX):
        return ToolOutcome(True, FailureKind.INTERRUPTED, message="interrupted")
    match = _EXIT_RE().match(body)
    if match:
        rest = body[match.end() :]
        return ToolOutcome(True, FailureKind.EXIT, int(match.group(1)), first_error_line(rest))
    if body.startswith("<tool_use_error>"):
        inner = body[len("<tool_use_error>") :]
        inner = inner.split("</tool_use_error>", 1)[0].strip()
        message = " ".join(inner[:400].split())[:200]  # short by nature; its 2nd line often says why
        if inner.startswith(("Sibling tool call errored", "Cancelled: parallel tool call")):
            return ToolOutcome(True, FailureKind.CANCELLED, message=message)
        return ToolOutcome(True, FailureKind.TOOL_ERROR, message=message)
    first = first_line(body)
    lowered = first.lower()
    if "hook" in lowered and (
        "blocked" in lowered or "hook error" in lowered or "stopped by hook" in lowered
    ):
        return ToolOutcome(True, FailureKind.HOOK_BLOCKED, message=first)
    if "timed out" in lowered or "timeout" in lowered:
        return ToolOutcome(True, FailureKind.TIMEOUT, message=first)
    message = first_error_line(body)
    return ToolOutcome(True, FailureKind.ERROR, message=message.removeprefix("Error: "))


def first_line(text: str, limit: int = 200) -> str:
    if "\x1b" in text or "\r" in text:
        text = _ANSI_RE().sub("", text)
    for line in text.split("\n"):
        line = line.strip()
        if line:
            return line[:limit]
    return ""



_PROCESS_EXIT_RE = lazy_pattern(r"^(?:Process exited with code|Exit code:) (-?\d+)\s*$", re.MULTILINE)
_STILL_RUNNING_RE = lazy_pattern(r"^Process running with session ID \d+", re.MULTILINE)
_OUTPUT_MARK = "\nOutput:\n"


def classify_exec_output(text: str, exit_code: int | None = None) -> ToolOutcome:
    """Classify the output of a Codex command or patch (docs/transcripts.md, 'Codex CLI rollouts').

    ``exit_code`` is the authoritative status when the rollout carried one (``exec_command_end``, a
    ``CommandExecution`` item); otherwise it is read from the text Codex gave the model: ``Process exited
    with code N`` (unified exec) or ``Exit code: N`` (patches, the older shell tool).  A process still
    running (``Process running with session ID N``) has not failed; text with no status at all is Codex
    refusing the call before running anything (a bad argument, a sandbox or approval refusal): a tool error.
    """
    if exit_code == 0:
        return TOOL_OK
    body = text[text.rfind(_OUTPUT_MARK) + len(_OUTPUT_MARK) :] if _OUTPUT_MARK in text else ""
    if exit_code is None:
        match = _PROCESS_EXIT_RE().search(text)
        if match is None:
            if _STILL_RUNNING_RE().search(text):
                return TOOL_OK
            message = first_line(text)
            return ToolOutcome(True, FailureKind.TOOL_ERROR, message=message) if message else TOOL_OK
        exit_code = int(match.group(1))
    if exit_code == 0:
        return TOOL_OK
    return ToolOutcome(True, FailureKind.EXIT, exit_code, first_error_line(body) if body.strip() else "")
