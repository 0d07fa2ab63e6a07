"""template.*: the workflow templates (built in, or overridden in $XDG_CONFIG_HOME/maestro/templates)."""

from __future__ import annotations

from typing import Any

from maestrod import paging
from maestrod.dispatch import Context, handler
from shared import errors
from shared.messages.template import TemplateGet, TemplateList
from shared.templates import BUILTIN, BadTemplateName, TemplateError, UnknownTemplate, get_template, list_templates


@handler("template.list")
async def list_(ctx: Context, p: TemplateList) -> list[dict[str, Any]] | dict[str, Any]:
    found = [t.to_json(with_text=False) for t in list_templates()]
    if paging.paged(p.limit, p.cursor):
        # in list_templates' order: the built-in ones in theirs, then the user's own by name
        rank = {name: i for i, name in enumerate(BUILTIN)}
        return paging.slice_page("template.list", found, lambda t: (rank.get(t["name"], len(rank)), t["name"]),
                                 p.cursor, p.limit, (int, str))
    return found


@handler("template.get")
async def get(ctx: Context, p: TemplateGet) -> dict[str, Any]:
    try:
        return get_template(p.name).to_json()
    except UnknownTemplate as exc:
        raise errors.RpcError(errors.NOT_FOUND, str(exc), {"kind": "template", "id": p.name}) from None
    except BadTemplateName as exc:
        raise errors.invalid_params([f"name: {exc}"]) from None
    except TemplateError as exc:  # the user's file is broken: say which and why
        raise errors.conflict(str(exc), {"template": p.name}) from None
