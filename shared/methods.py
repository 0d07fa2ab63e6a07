"""The method catalogue: every RPC method by name."""

from shared.messages import events, project, system, task
from shared.messages import mail, report, template
from shared.messages import session
from shared.messages import digest
from shared.messages import worktree
from shared.messages import web
from shared.messages import daemon
from shared.messages import run
from shared.messages.spec import MethodSpec

CATALOGUE: dict[str, MethodSpec] = {}


def register_group(specs: list[MethodSpec]) -> None:
    for spec in specs:
        if spec.name in CATALOGUE:
            raise ValueError(f"duplicate method {spec.name}")
        CATALOGUE[spec.name] = spec


for _group in (system, project, task, events, mail, report, template, session, digest, worktree, web, daemon, run):
    register_group(_group.METHODS)
