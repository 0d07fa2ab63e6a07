"""The Codex screen rules (maestrod/sessions/screens/codex.toml) against screens of the real Codex CLI.

The fixtures in tests/fixtures/screens/codex/ were captured from Codex CLI 0.171.0 by
scripts/capture_codex_screens.py, started the way maestrod starts it; each names in its header the rule it
must match. No PTY and no binary here: every test reads files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maestrod.sessions.screens import ScreenRules, load_rules
from tests.test_screen_rules import read_fixture

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "screens" / "codex"
ALL = {p.stem: read_fixture(p) for p in sorted(FIXTURES.glob("*.txt"))}
CAPTURED = "/tmp/maestro-codex-capture/x"

#: What each fixture must be recognised as, word for word (None: nothing).
EXPECTED_REASONS: dict[str, str | None] = {
    "trust-folder": f"Codex asks whether to trust the folder {CAPTURED}/work (maestrod trusts the session's folder "
                    "with -c; is the cwd another one?)",
    "hooks-review": "Codex asks a person to review hooks before they run (6 new or changed)",
    "approve-command": "Codex asks for approval to run: touch /etc/maestro-capture",
    "sign-in": "Codex is not signed in and no API provider is set: it shows its sign-in screen (set [codex] "
               "base_url/env_key, or use_login after `codex login`)",
    "working": "a turn is running (the composer is drawn below its working line)",
    "empty-prompt": "the empty composer",
    "answer-on-screen": "the empty composer",
    "prompt-with-text": None,
}


@pytest.fixture(scope="module")
def rules() -> ScreenRules:
    loaded = load_rules("codex")
    assert loaded is not None
    return loaded


def test_table_is_codex_0_171(rules: ScreenRules) -> None:
    assert rules.agent == "codex" and rules.version == "0.171.0"
    assert [r.kind for r in rules.rules][-2:] == ["busy", "prompt"]


def test_every_fixture_has_an_expected_reason() -> None:
    assert set(ALL) == set(EXPECTED_REASONS)


@pytest.mark.parametrize("name", sorted(EXPECTED_REASONS))
def test_fixture_is_recognised_as_its_header_says(rules: ScreenRules, name: str) -> None:
    fixture = ALL[name]
    found = rules.match(fixture.lines)
    assert (found.rule if found else None) == fixture.expect
    assert (found.reason if found else None) == EXPECTED_REASONS[name]


def test_every_rule_matches_its_own_fixture_and_is_triggered_by_its_paint(rules: ScreenRules) -> None:
    for rule in rules.rules:
        fixture = ALL[Path(rule.fixture).stem]
        assert fixture.expect == rule.name
        assert rule.search("\n".join(fixture.lines)) is not None
        assert fixture.raw is not None and rule.triggered_by(fixture.raw), f"{rule.name}: no trigger in its paint"


def test_a_quoted_dialog_above_the_composer_is_not_a_dialog(rules: ScreenRules) -> None:
    answer = ALL["answer-on-screen"]
    assert "Would you like to run the following command?" in "\n".join(answer.lines)
    found = rules.match(answer.lines)
    assert found is not None and found.kind == "prompt"


def test_typed_text_is_not_an_empty_prompt(rules: ScreenRules) -> None:
    # The placeholder and typed text look the same without colours; the footer tells them apart.
    assert rules.match(ALL["prompt-with-text"].lines) is None
    assert rules.match(ALL["working"].lines).kind == "busy"  # type: ignore[union-attr]
