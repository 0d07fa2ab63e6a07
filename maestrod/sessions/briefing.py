"""What a spawned agent is told: its session context, its coordinator's directive and its workflow.

:func:`resolve_template` and :func:`directive_from` check a ``session.spawn`` request before
anything is created; :func:`compose` renders the text (``shared.templates.compose``) once the
session id and the directive's mail id are known. The session manager then hands it over:

* Claude Code: ``--append-system-prompt TEXT`` (the stored argv shows a placeholder naming the
  file instead of the text, so ``session list`` stays small);
* any other program (``-- ARGV``): ``$MAESTRO_SYSTEM_PROMPT``;
* both: the file ``<data dir>/sessions/<id>/system-prompt.md``, named by
  ``$MAESTRO_SYSTEM_PROMPT_FILE``.

The first prompt is not padded with the context (it is in the system prompt, on every turn):
``--prompt`` is delivered as given; without one, a Claude session that got a directive is started
with :func:`kickoff_prompt`, so a worker spawned with ``--subject/--message`` starts working at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from shared import errors
from shared.templates import (
    BadTemplateName,
    Template,
    TemplateError,
    UnknownTemplate,
    default_template,
    get_template,
)
from shared.templates.compose import compose_system_prompt

#: ``session spawn --template none``: the session context (and directive) only, no workflow.
NO_TEMPLATE = "none"
SYSTEM_PROMPT_FILE = "system-prompt.md"
#: The argv element stored (and shown) instead of the composed text.
ARGV_PLACEHOLDER = "<composed system prompt: {path}>"
_SUBJECT_FROM_MESSAGE = 80


@attrs.define
class Directive:
    subject: str
    message: str


def resolve_template(name: str | None, role: str) -> Template | None:
    """The spawn's workflow template (None for ``none``); clear errors for unknown names, broken
    user files and a template written for the other role."""
    if name == NO_TEMPLATE:
        return None
    wanted = name or default_template(role)
    try:
        template = get_template(wanted)
    except UnknownTemplate as exc:
        raise errors.invalid_params([f"template: {exc} (or `none` for no workflow)"]) from None
    except BadTemplateName as exc:
        raise errors.invalid_params([f"template: {exc}"]) from None
    except TemplateError as exc:  # the user's override is broken: say which file and why
        raise errors.conflict(str(exc), {"template": wanted}) from None
    if template.role != role:
        why = (f"template: {template.name!r} is a {template.role} workflow but the session's role is "
               f"{role} (spawn it with --role {template.role}, or pick a {role} template)")
        raise errors.invalid_params([why])
    return template


def directive_from(subject: str | None, message: str | None) -> Directive | None:
    """``--subject/--message``: both, or only a message (its first line becomes the subject)."""
    if subject is None and message is None:
        return None
    if message is None or not message.strip():
        raise errors.invalid_params(["message: a directive needs a message (--message); --subject alone is not one"])
    if subject is None or not subject.strip():
        first = message.strip().splitlines()[0].strip()
        subject = first if len(first) <= _SUBJECT_FROM_MESSAGE else first[: _SUBJECT_FROM_MESSAGE - 1] + "…"
    return Directive(subject=subject, message=message)


def compose(
    *,
    session: dict[str, Any],
    project: Any,
    tasks: Sequence[Any],
    role: str,
    directive: Directive | None,
    sender: str,
    mail_id: str | None,
    template: Template | None,
) -> str:
    d = None
    if directive is not None:
        d = {"subject": directive.subject, "message": directive.message, "from": sender, "id": mail_id}
    return compose_system_prompt(
        session,
        project,
        tasks,
        role,
        d,
        template.text if template else None,
        template_name=template.name if template else None,
    )


def kickoff_prompt(directive: Directive, mail_id: str | None) -> str:
    subject = " ".join(directive.subject.split())
    if len(subject) > 60:
        subject = subject[:59] + "…"
    where = f" (also mail {mail_id})" if mail_id else ""
    return (
        f"Begin. Your coordinator's directive '{subject}' is in <coordinator_directive>{where}: "
        "carry it out following your <workflow>."
    )
