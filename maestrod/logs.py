"""Logging setup: human text or one JSON object per line (for journald / log shippers)."""

from __future__ import annotations

import logging
import sys
import traceback

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname.lower(),
               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(out).decode()


#: Control characters in text logs, spelled out: a method name, session name or path an agent chose must not
#: start a forged log line (newline, CR) or steer the terminal that tails the log (ESC, C1).
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
_TRACE_ESCAPES = {c: s for c, s in _ESCAPES.items() if c != 0x0A}


class TextFormatter(logging.Formatter):
    """``time level logger: message``, one line per record: the message's control characters are escaped;
    a traceback keeps its lines, indented, so that every line at column 0 starts a record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # logging.Formatter.format, with the escaping (exc_text stays cached plain for other handlers)
        record.message = record.getMessage().translate(_ESCAPES)
        record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if block:
                text += "\n" + "\n".join("  " + line for line in block.translate(_TRACE_ESCAPES).split("\n"))
        return text


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
