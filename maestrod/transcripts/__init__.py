"""Live transcripts (issue 4): tail each Claude session's JSONL, keep its digest, push changes, escalate.

* :mod:`.tailer` - one file: offsets, truncation / rewrite / rotation, partial lines;
* :mod:`.watch` - change hints (inotify, watchfiles, or none) on top of a stat poll;
* :mod:`.service` - ``app.transcripts``: one tailer set and digest per session, events, checkpoints;
* :mod:`.context` - ``<coordinator_context>`` for coordinators' hooks and ``context.coordinator``.
"""
