"""The screen rules (maestrod.sessions.screens) against the screens of the real Claude Code.

The fixtures in tests/fixtures/screens/claude/ were captured from Claude Code 2.1.328 by
scripts/capture_claude_screens.py (one is synthetic, and says so); each names in its header the rule
it must match (``expect``). No PTY and no binary here: every test reads files.
"""

from __future__ import annotations

import random
import re
import string
import time
from pathlib import Path

import attrs
import pytest

from maestrod.sessions.screens import (
    ScreenRule,
    ScreenRules,
    ScreenRulesError,
    _required_literal,
    load_rules,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "screens" / "claude"
CAPTURED = "/tmp/maestro-screen-capture"


@attrs.frozen
class Fixture:
    name: str
    header: dict[str, str]
    lines: list[str]
    raw: bytes | None

    @property
    def expect(self) -> str | None:
        value = self.header["expect"]
        return None if value == "none" else value

    @property
    def synthetic(self) -> bool:
        return self.header["source"].startswith("SYNTHETIC")


def read_fixture(path: Path) -> Fixture:
    """``# key: value`` header lines, then exactly ``rows`` screen lines (the header's ``size``)."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path.name}: the last screen line ends with a newline"
    all_lines = text[:-1].split("\n")
    size = next(line for line in all_lines if line.startswith("# size: "))
    rows, cols = (int(n) for n in size.removeprefix("# size: ").split("x"))
    head, lines = all_lines[:-rows], all_lines[-rows:]
    assert head and all(line.startswith("# ") for line in head), f"{path.name}: header lines start with '# '"
    header = dict(line[2:].split(": ", 1) for line in head)
    assert {"source", "size", "expect"} <= set(header), f"{path.name}: header keys"
    assert all(len(line) <= cols for line in lines), f"{path.name}: a line wider than {cols}"
    raw_path = path.with_suffix(".raw")
    return Fixture(path.stem, header, lines, raw_path.read_bytes() if raw_path.exists() else None)


FIXTURE_FILES = sorted(FIXTURES.glob("*.txt"))
ALL = {p.stem: read_fixture(p) for p in FIXTURE_FILES}

#: What each fixture must be recognised as, word for word (None: nothing).
EXPECTED_REASONS: dict[str, str | None] = {
    "trust-folder": f"Claude Code asks whether to trust the folder {CAPTURED}/first-run/work "
                    "(its default answer, No, ends the session)",
    "trust-folder-80x24": f"Claude Code asks whether to trust the folder {CAPTURED}/narrow/work "
                          "(its default answer, No, ends the session)",
    "api-key": "Claude Code asks whether to use the API key in ANTHROPIC_API_KEY (sk-ant-...0123456789abcdefghij); "
               "its default answer, No, stores the key as rejected in ~/.claude.json",
    "auto-mode-cannot-check": "Claude Code's auto mode cannot reach its safety check; it asks whether to stay in "
                              "auto mode (approving each action by hand) or leave for accept-edits mode",
    "ask-user-question": "Claude Code asks the user to choose: Which database should the service use?",
    "permission-bash-unverifiable": "Claude Code asks permission to run a Bash command it cannot check (A variable "
                                    "in this command can't be checked before it runs): for f in a b; do touch $f; done",
    "permission-bash": "Claude Code asks permission to run the Bash command: curl -s http://127.0.0.1:9",
    "permission-file": "Claude Code asks for permission: Do you want to create notes.txt?",
    "not-logged-in": "Claude Code is not logged in: it has no API key and no login, so a person must run /login "
                     "or give the session ANTHROPIC_API_KEY",
    "not-logged-in-status": "Claude Code is not logged in: it has no API key and no login, so a person must run "
                            "/login or give the session ANTHROPIC_API_KEY",
    "invalid-api-key": "The model API refused Claude Code's API key (Invalid API key); a person must fix the key, "
                       "then resend the message",
    "api-key-refused-retrying": "The model API refuses Claude Code's API key (401 invalid x-api-key); it keeps "
                                "retrying (attempt 3/10), but a person must fix the key",
    "rate-limited": "The model API turned Claude Code away with 429 (This request would exceed your account's rate "
                    "limit); the turn was dropped and must be resent later",
    "usage-limit": "Claude Code hit its usage limit: You've hit your session limit · resets 3pm (UTC)",
    "api-retrying": "Claude Code is retrying the model API: 529 Overloaded (attempt 3/10)",
    "turn-failed": "Claude Code's last turn failed with an API error: Repeated 529 Overloaded errors",
    "empty-prompt": "Claude Code is at its input prompt, ready for text",
    "answer-on-screen": "Claude Code is at its input prompt, ready for text",
    "prompt-with-text": None,
    "working": "Claude Code is working; its input box takes text for after the turn",
}


@pytest.fixture(scope="module")
def rules() -> ScreenRules:
    loaded = load_rules("claude")
    assert loaded is not None
    return loaded


def test_the_builtin_table(rules: ScreenRules) -> None:
    assert rules.agent == "claude" and rules.version == "2.1.328"
    assert len(rules.sources) == 1 and rules.sources[0].endswith("maestrod/sessions/screens/claude.toml")
    kinds = [r.kind for r in rules.rules]
    assert "prompt" in kinds and kinds.index("prompt") == len(kinds) - kinds.count("prompt"), "prompt rules last"
    assert {r.name for r in rules.rules} >= {
        "trust-folder", "api-key", "auto-mode-cannot-check", "ask-user-question", "permission-bash-unverifiable",
        "permission-bash",
        "permission", "not-logged-in", "invalid-api-key", "api-key-refused-retrying", "rate-limited",
        "usage-limit", "api-retrying", "turn-failed", "empty-prompt",
    }
    assert [r.name for r in rules.rules if r.synthetic] == ["usage-limit"]


def test_no_agent_no_table() -> None:
    assert load_rules("command") is None
    assert load_rules("../screens/claude") is None  # never a path
    assert load_rules("") is None


def test_every_fixture_has_an_expected_reason() -> None:
    assert set(ALL) == set(EXPECTED_REASONS)


@pytest.mark.parametrize("name", sorted(ALL))
def test_fixture_is_recognised_as_its_header_says(rules: ScreenRules, name: str) -> None:
    fixture = ALL[name]
    found = rules.match(fixture.lines)
    assert (found.rule if found else None) == fixture.expect
    assert (found.reason if found else None) == EXPECTED_REASONS[name]
    if found is not None:
        rule = rules.rule(found.rule)
        assert rule is not None and found.kind == rule.kind


def test_every_rule_matches_its_own_fixture(rules: ScreenRules) -> None:
    for rule in rules.rules:
        fixture = ALL[Path(rule.fixture).stem]
        assert fixture.expect == rule.name, f"{rule.name}: its fixture {rule.fixture} expects {fixture.expect}"
        assert rule.search("\n".join(fixture.lines)) is not None
        assert rule.synthetic == fixture.synthetic, f"{rule.name}: synthetic flag and fixture header disagree"


def test_negative_fixtures_are_never_a_dialog_or_blocked(rules: ScreenRules) -> None:
    negatives = [f for f in ALL.values() if f.expect in (None, "empty-prompt", "busy-prompt")]
    assert {f.name for f in negatives} >= {"working", "prompt-with-text", "answer-on-screen", "empty-prompt"}
    for fixture in negatives:
        found = rules.match(fixture.lines)
        assert found is None or found.kind in ("prompt", "busy"), f"{fixture.name}: {found}"


def test_an_answer_quoting_a_dialog_is_not_that_dialog(rules: ScreenRules) -> None:
    answer = "\n".join(ALL["answer-on-screen"].lines)
    assert "Do you want to proceed?" in answer and "❯ 1. Yes" in answer  # the quote is on screen ...
    for name in ("permission", "permission-bash", "permission-bash-unverifiable"):
        rule = rules.rule(name)
        assert rule is not None and rule.search(answer) is None  # ... but above the input box


def test_text_in_the_prompt_is_not_an_empty_prompt(rules: ScreenRules) -> None:
    empty_prompt = rules.rule("empty-prompt")
    assert empty_prompt is not None
    assert empty_prompt.search("\n".join(ALL["prompt-with-text"].lines)) is None
    lines = ALL["empty-prompt"].lines
    at = lines.index("❯")
    for typed in ("❯\xa0x", "❯\xa0Resend your message to try again later", "❯\xa0/login"):
        assert rules.match([*lines[:at], typed, *lines[at + 1:]]) is None, typed
    # The grey hint after a failed turn is not text: the box is still empty.
    hint = [*lines[:at], "❯\xa0Resend your message to try again", *lines[at + 1:]]
    found = rules.match(hint)
    assert found is not None and found.rule == "empty-prompt"


def test_a_running_turn_is_not_an_empty_prompt(rules: ScreenRules) -> None:
    working = ALL["working"].lines
    assert "❯" in working and any("esc to interrupt" in line for line in working)
    found = rules.match(working)  # the input box of a running turn: only `--now` types there
    assert found is not None and found.kind == "busy"


def test_a_usage_limit_with_newer_messages_below_is_old_news(rules: ScreenRules) -> None:
    lines = list(ALL["usage-limit"].lines)
    at = next(i for i, line in enumerate(lines) if "You've hit your" in line)
    lines[at + 1:at + 3] = ["", "❯ carry on, the limit has reset", "", "● Carrying on."]
    found = rules.match(lines[: len(ALL["usage-limit"].lines)])
    assert found is None or found.rule != "usage-limit"


def test_a_dialog_wins_over_the_prompt(tmp_path: Path, rules: ScreenRules) -> None:
    empty = ALL["empty-prompt"].lines
    assert rules.match(empty) is not None
    # A dialog rule listed after the prompt in an override still comes first.
    (tmp_path / "claude.toml").write_text(
        "[[rule]]\n"
        'name = "empty-prompt"\nkind = "prompt"\nreason = "ready"\n'
        "patterns = ['^❯ *$']\ntriggers = ['❯']\n\n"
        "[[rule]]\n"
        'name = "banner-dialog"\nkind = "dialog"\nreason = "a dialog drawn with the input box"\n'
        "patterns = ['Claude Code v2']\ntriggers = ['Claude']\n"
    )
    overridden = load_rules("claude", tmp_path)
    assert overridden is not None
    found = overridden.match(empty)
    assert found is not None and (found.rule, found.kind) == ("banner-dialog", "dialog")
    assert [r.kind for r in overridden.rules][-1] == "prompt"


# -- overrides ----------------------------------------------------------------------------------------


def write_override(directory: Path, text: str) -> Path:
    path = directory / "claude.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_override_replaces_adds_and_disables(tmp_path: Path, rules: ScreenRules) -> None:
    path = write_override(tmp_path, """
version = "2.1.400"

[[rule]]
name = "trust-folder"
kind = "dialog"
reason = "Trust {path}?"
patterns = ['''^ *Accessing workspace:\\s*\\n\\s*(?P<path>\\S+)''']
triggers = ["Accessing"]

[[rule]]
name = "spinner-brewing"
kind = "notice"
reason = "still {verb}"
patterns = ['''^\\S (?P<verb>\\w+)…$''']
triggers = ["…"]

[[rule]]
name = "turn-failed"
enabled = false
""")
    overridden = load_rules("claude", tmp_path)
    assert overridden is not None
    assert overridden.sources == (*rules.sources, str(path))
    assert overridden.version == rules.version  # the built-in table's: the override only changes rules
    names = [r.name for r in overridden.rules]
    before = [r.name for r in rules.rules]
    # Replaced in place; the new rule just before the prompt rules; the disabled one gone.
    assert names.index("trust-folder") == before.index("trust-folder")
    assert names[-3:] == ["spinner-brewing", "busy-prompt", "empty-prompt"]
    assert "turn-failed" not in names and len(names) == len(before)

    found = overridden.match(ALL["trust-folder"].lines)
    assert found is not None and found.reason == f"Trust {CAPTURED}/first-run/work?"
    working = ALL["working"].lines
    verb = next(m.group(1) for line in working if (m := re.match(r"^\S (\w+)…$", line)))  # random per capture
    found = overridden.match(working)
    assert found is not None and (found.rule, found.kind, found.reason) == ("spinner-brewing", "notice", f"still {verb}")
    # Without its rule, the failed turn's screen is just the (empty) prompt with the resend hint.
    found = overridden.match(ALL["turn-failed"].lines)
    assert found is not None and found.rule == "empty-prompt"
    spinner = overridden.rule("spinner-brewing")
    assert spinner is not None and spinner.fixture == ""
    pattern = overridden.trigger_pattern()
    assert pattern is not None and pattern.search("…".encode())


def test_no_override_file_is_the_builtin_table(tmp_path: Path, rules: ScreenRules) -> None:
    assert load_rules("claude", tmp_path) == rules
    assert load_rules("claude", tmp_path / "missing") == rules


def test_an_override_alone_is_a_table(tmp_path: Path) -> None:
    (tmp_path / "aider.toml").write_text(
        'version = "0.80"\n[[rule]]\nname = "ready"\nkind = "prompt"\nreason = "ready"\n'
        "patterns = ['^> $']\ntriggers = ['> ']\n"
    )
    table = load_rules("aider", tmp_path)
    assert table is not None and table.version == "0.80" and [r.name for r in table.rules] == ["ready"]


BAD_OVERRIDES = [
    ("[[rule]]\nname = 'x'\nkind = 'dialog'\nreason = 'r'\npatterns = ['(unclosed']\ntriggers = ['t']\n",
     "rule 'x'", "pattern 1 does not compile"),
    ("[[rule]]\nname = 'x'\nkind = 'popup'\nreason = 'r'\npatterns = ['a']\ntriggers = ['t']\n",
     "rule 'x'", "`kind` must be one of"),
    ("[[rule]]\nname = 'x'\nkind = 'dialog'\nreason = 'r'\npatterns = ['a']\ntriggers = ['t']\ncolour = 1\n",
     "rule 'x'", "unknown key 'colour'"),
    ("[[rule]]\nname = 'x'\nkind = 'dialog'\nreason = 'about {thing}'\npatterns = ['a']\ntriggers = ['t']\n",
     "rule 'x'", "{thing}"),
    ("[[rule]]\nname = 'x'\nkind = 'dialog'\nreason = 'r'\npatterns = ['a']\ntriggers = []\n",
     "rule 'x'", "`triggers` must be a non-empty list"),
    ("[[rule]]\nname = 'x'\nkind = 'dialog'\nreason = 'r'\npatterns = []\ntriggers = ['t']\n",
     "rule 'x'", "`patterns` must be a non-empty list"),
    ("[[rule]]\nname = 'no-such-rule'\nenabled = false\n", "rule 'no-such-rule'", "names no built-in rule"),
    ("[[rule]]\nname = 'trust-folder'\nenabled = false\nkind = 'dialog'\n", "rule 'trust-folder'",
     "takes only `name`"),
    ("[[rule]]\nname = 'x'\nenabled = false\n[[rule]]\nname = 'x'\nenabled = false\n", "rule 'x'", "defined twice"),
    ("[[rule]]\nname = 'Bad Name'\n", "rule 'Bad Name'", "`name` must be"),
    ("[[rule]]\nkind = 'dialog'\n", "[[rule]] number 1", "`name` must be"),
    ("rules = []\n", "claude.toml", "unknown top-level key 'rules'"),
    ("format = 2\n", "claude.toml", "format = 2"),
    ("agent = 'codex'\n", "claude.toml", "agent = 'codex'"),
    ("[[rule]\n", "claude.toml", "not valid TOML"),
]


@pytest.mark.parametrize(("content", "names", "says"), BAD_OVERRIDES)
def test_a_bad_override_names_the_file_and_the_rule(tmp_path: Path, content: str, names: str, says: str) -> None:
    path = write_override(tmp_path, content)
    with pytest.raises(ScreenRulesError) as caught:
        load_rules("claude", tmp_path)
    message = str(caught.value)
    assert str(path) in message and names in message and says in message


# -- triggers -----------------------------------------------------------------------------------------


def test_the_paint_of_each_captured_screen_holds_a_trigger_of_its_rule(rules: ScreenRules) -> None:
    pattern = rules.trigger_pattern()
    assert pattern is not None
    for fixture in ALL.values():
        if fixture.expect is None:
            continue
        rule = rules.rule(fixture.expect)
        assert rule is not None
        if fixture.synthetic:
            assert fixture.raw is None
            continue
        assert fixture.raw is not None, f"{fixture.name}: captured without its .raw"
        assert len(fixture.raw) <= 48 * 1024
        assert rule.triggered_by(fixture.raw), f"{fixture.name}: none of {rule.triggers} in the raw output"
        assert pattern.search(fixture.raw), fixture.name


def test_every_trigger_occurs_where_its_rule_was_drawn(rules: ScreenRules) -> None:
    """No dead triggers: each is in a raw capture (or, for a synthetic rule, on its fixture's screen)."""
    raws = [f.raw for f in ALL.values() if f.raw is not None]
    for rule in rules.rules:
        for trigger in rule.triggers:
            if rule.synthetic:
                screen = "\n".join(ALL[Path(rule.fixture).stem].lines).encode()
                assert trigger in screen, f"{rule.name}: {trigger!r}"
            else:
                assert any(trigger in raw for raw in raws), f"{rule.name}: {trigger!r} is in no capture"


def test_trigger_pattern_is_compiled_once(rules: ScreenRules) -> None:
    assert rules.trigger_pattern() is rules.trigger_pattern()
    assert load_rules("claude") == rules  # the same table (equality ignores the compiled caches)


# -- speed and the literal pre-check ------------------------------------------------------------------


def test_match_is_fast(rules: ScreenRules) -> None:
    rng = random.Random(7)
    dense = ["".join(rng.choice(string.ascii_letters + " ·─❯") for _ in range(120)) for _ in range(40)]
    boxes = ["─" * 120, "❯", "─" * 120] * 13 + ["  esc to interrupt"]
    screens = [f.lines for f in ALL.values()] + [dense, boxes]
    started = time.perf_counter()
    rounds = 50
    for _ in range(rounds):
        for lines in screens:
            rules.match(lines)
    per_match = (time.perf_counter() - started) / (rounds * len(screens))
    # Measured ~0.05 ms; the bound only catches a pathological pattern (a few per second per session).
    assert per_match < 0.005, f"{per_match * 1000:.2f} ms per match"


@pytest.mark.parametrize(("pattern", "literal"), [
    (r"^ *Accessing workspace:\s*\n", "Accessing workspace:"),
    (r"Do you want to proceed\?", "Do you want to proceed?"),
    (r"^─{20,}\n❯ *$", None),  # counted and optional pieces are not required text
    (r"abcx?yz", "abc"),
    (r"abc|defgh", None),  # an alternative at the top level: nothing is required
    (r"(?P<x>long required-looking text)?tail", "tail"),  # groups are skipped
    (r"[xyz]{3}abcd", "abcd"),
    (r"(?i)Invalid API key", None),
    (r"API Error: \(429\)", "API Error: (429)"),
])
def test_required_literal(pattern: str, literal: str | None) -> None:
    assert _required_literal(re.compile(pattern, re.MULTILINE)) == literal


def test_the_literal_pre_check_never_loses_a_match(rules: ScreenRules) -> None:
    for rule in rules.rules:
        text = "\n".join(ALL[Path(rule.fixture).stem].lines)
        bare = ScreenRule(rule.name, rule.kind, rule.reason, rule.patterns, rule.triggers, rule.fixture)
        assert all(p.search(text) for p in bare.patterns)
        for pattern in rule.patterns:
            needle = _required_literal(pattern)
            assert needle is None or needle in text, f"{rule.name}: {needle!r}"


def test_the_session_manager_tables_parse_a_builtin_table_when_first_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: ScreenRules) -> None:
    """RuleTables: a built-in table is read at start-up but parsed at first use (its patterns cost every
    start a few ms otherwise), from the bytes read then, not from a file an upgrade may have replaced since."""
    from maestrod.sessions import screens

    builtin = tmp_path / "builtin"
    builtin.mkdir()
    for kind in ("claude", "codex"):
        (builtin / f"{kind}.toml").write_bytes((screens.BUILTIN_DIR / f"{kind}.toml").read_bytes())
    monkeypatch.setattr(screens, "BUILTIN_DIR", builtin)
    tables = screens.RuleTables(["claude", "codex"])
    assert set(tables._unparsed) == {"claude", "codex"}  # read, nothing parsed yet
    (builtin / "claude.toml").write_text("not = [toml")  # replaced on disk after start-up
    claude = tables.get("claude")
    assert claude is not None and set(tables._unparsed) == {"codex"}
    assert claude.version == rules.version
    assert [(r.name, r.kind, [p.pattern for p in r.patterns]) for r in claude.rules] == \
        [(r.name, r.kind, [p.pattern for p in r.patterns]) for r in rules.rules]
    assert tables.get("claude") is claude  # parsed once
    assert tables.get("codex") is not None and not tables._unparsed
    assert tables.get("command") is None


def test_the_session_manager_tables_load_an_override_at_once(tmp_path: Path) -> None:
    """An override is loaded (and checked) when the tables are made, so a broken one stops the daemon at
    start-up, as before."""
    from maestrod.sessions.screens import RuleTables

    (tmp_path / "claude.toml").write_text('[[rule]]\nname = "x"\nkind = "nonsense"\nreason = "r"\n')
    with pytest.raises(ScreenRulesError, match="kind"):
        RuleTables(["claude", "codex"], tmp_path)
    (tmp_path / "claude.toml").write_text('[[rule]]\nname = "trust-folder"\nenabled = false\n')
    tables = RuleTables(["claude", "codex"], tmp_path)
    assert "claude" not in tables._unparsed and "codex" in tables._unparsed
    claude = tables.get("claude")
    assert claude is not None and "trust-folder" not in [r.name for r in claude.rules]
    assert len(claude.sources) == 2
