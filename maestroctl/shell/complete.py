"""Tab completion: commands and flags read from maestroctl's real argparse parser, values from the daemon.

The parser is walked once (on the first Tab, so start-up does not pay for building every group) into a
tree of commands, options and positionals.  Which live list a value comes from is decided by the
argument's name and its group (``session stop ID``: sessions; ``--depends-on``: tasks); the lists
themselves are :attr:`Live.words`, kept current by the feed.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from maestroctl.output import safe

if TYPE_CHECKING:
    import argparse
from maestroctl.shell.live import Live

#: The shell's own words (beside the command groups), with what they take.
SHELL_WORDS = {"help": "help [GROUP [COMMAND]]: what you can type",
               "exit": "leave the shell (or Ctrl-D)",
               "attach": "attach ID: use a session's terminal; Ctrl-] comes back here",
               "prompt": "prompt ID: write a prompt in an editor (Alt-Enter or Esc Enter sends it)"}
#: Groups the shell does not offer (it is the shell; hooks are for agents).
HIDDEN_GROUPS = {"shell", "hook"}

#: Options whose value is a live name, whatever the group.
OPTION_KINDS = {"--project": "projects", "--to": "sessions", "--mailbox": "sessions", "--task": "tasks",
                "--depends-on": "tasks", "--no-depends-on": "tasks", "--template": "templates",
                "--thread": "mail"}
#: A group's positional ids (and ``--parent``) name things of that group.
GROUP_KINDS = {"session": "sessions", "task": "tasks", "project": "projects", "mail": "mail",
               "template": "templates"}


@dataclass
class Option:
    takes_value: bool
    many: bool = False
    choices: list[str] | None = None
    kind: str | None = None


@dataclass
class Positional:
    many: bool
    choices: list[str] | None = None
    kind: str | None = None


@dataclass
class Node:
    help: str = ""
    commands: dict[str, Node] = field(default_factory=dict)
    options: dict[str, Option] = field(default_factory=dict)
    positionals: list[Positional] = field(default_factory=list)


def tree_from_parser(parser: argparse.ArgumentParser, group: str = "", help_: str = "") -> Node:
    import argparse  # here, not at the top: the first prompt does not wait for it

    node = Node(help=help_)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not group and name in HIDDEN_GROUPS:
                    continue
                node.commands[name] = tree_from_parser(sub, group or name, helps.get(name, ""))
            continue
        choices = [str(c) for c in action.choices] if action.choices else None
        many = action.nargs in ("+", "*", argparse.REMAINDER)
        if action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            for opt in action.option_strings:
                if not opt.startswith("--"):
                    continue
                kind = OPTION_KINDS.get(opt)
                if opt == "--parent":
                    kind = GROUP_KINDS.get(group)
                node.options[opt] = Option(takes_value=action.nargs != 0, many=many, choices=choices, kind=kind)
        else:
            kind = GROUP_KINDS.get(group) if action.dest in ("id", "ids", "name") else None
            node.positionals.append(Positional(many=many, choices=choices, kind=kind))
    return node


def shell_tree() -> Node:
    """The whole command tree, plus the shell's own words."""
    from maestroctl.main import build_parser

    root = tree_from_parser(build_parser())
    for word, help_ in SHELL_WORDS.items():
        node = Node(help=help_)
        if word in ("attach", "prompt"):
            node.positionals.append(Positional(many=False, kind="sessions"))
        if word == "prompt":
            node.options = dict(root.commands["session"].commands["prompt"].options)
            node.options.pop("--message", None)
        if word == "help":
            node.positionals.append(Positional(many=False, choices=sorted(root.commands)))
        root.commands[word] = node
    return root


def split_line(text: str) -> tuple[list[str], str]:
    """The complete words before the cursor and the word being typed (quotes honoured when balanced)."""
    try:
        words = shlex.split(text)
    except ValueError:  # an open quote: fall back to whitespace, which is what the person sees
        words = text.split()
    if not text or text[-1].isspace():
        return words, ""
    return words[:-1], (words[-1] if words else "")


@dataclass
class Want:
    """What the word under the cursor may be."""
    commands: dict[str, Node] = field(default_factory=dict)
    options: dict[str, Option] = field(default_factory=dict)
    choices: list[str] | None = None
    kind: str | None = None


def wanted(root: Node, words: list[str], current: str) -> Want:
    node = root
    pending: Option | None = None  # an option waiting for its value(s)
    consumed = 0  # values given to ``pending``
    pos = 0
    after_dashdash = False
    for w in words:
        if after_dashdash:
            continue
        if pending is not None and not w.startswith("-"):
            consumed += 1
            if not pending.many:
                pending = None
            continue
        pending = None
        if w == "--":
            after_dashdash = True
            continue
        if w.startswith("-"):
            name, eq, _ = w.partition("=")
            opt = node.options.get(name)
            if opt is not None and opt.takes_value and not eq:
                pending, consumed = opt, 0
            continue
        if node.commands:
            if w in node.commands:
                node, pos = node.commands[w], 0
            continue
        if pos < len(node.positionals) and not node.positionals[pos].many:
            pos += 1
    if after_dashdash:
        return Want()
    if pending is not None and not current.startswith("-"):
        return Want(choices=pending.choices, kind=pending.kind)
    if current.startswith("-"):
        return Want(options=node.options)
    if node.commands:
        return Want(commands=node.commands)
    if pos < len(node.positionals):
        p = node.positionals[pos]
        return Want(options=node.options if not current else {}, choices=p.choices, kind=p.kind)
    return Want(options=node.options if not current else {})


class ShellCompleter(Completer):
    def __init__(self, live: Live) -> None:
        self.live = live
        self._root: Node | None = None

    @property
    def root(self) -> Node:
        if self._root is None:
            self._root = shell_tree()
        return self._root

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        words, current = split_line(document.text_before_cursor)
        want = wanted(self.root, words, current)
        back = -len(current)
        for name in sorted(want.commands):
            if name.startswith(current):
                yield Completion(name, back, display_meta=want.commands[name].help)
        for opt in sorted(want.options):
            if opt.startswith(current):
                yield Completion(opt, back)
        for choice in want.choices or ():
            if choice.startswith(current):
                yield Completion(choice, back)
        if want.kind:
            for word, meta in sorted(self.live.words.get(want.kind, {}).items()):
                if word.startswith(current):
                    yield Completion(_quoted(word), back, display=safe(word), display_meta=safe(meta))


def _quoted(word: str) -> str:
    return word if word and shlex.quote(word) == word else shlex.quote(word)

