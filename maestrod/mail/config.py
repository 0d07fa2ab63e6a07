"""The ``[mail]`` section of config.toml (``maestrod.config.Config.mail``)."""

from __future__ import annotations

from typing import Literal

import attrs


@attrs.define
class MailConfig:
    #: Bodies larger than this (UTF-8 bytes) are refused with TOO_LARGE.
    max_body_bytes: int = 64 * 1024
    #: Subjects longer than this (characters) are refused.
    max_subject_chars: int = 500
    #: The Stop hook keeps an agent working while it has unread mail of at least this priority.
    wake_priority: Literal["critical", "high", "normal", "low"] = "high"
    #: ... but lets it stop after this many consecutive blocks (0 disables the Stop-hook blocks).
    wake_max_blocks: int = 3
    #: Mail of at least ``wake_priority`` for a Claude session that is already idle is announced
    #: with a short ``system`` prompt (one per burst) instead of waiting for its next turn.
    prompt_idle: bool = True
