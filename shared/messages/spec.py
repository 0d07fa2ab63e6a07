"""The description of one RPC method, shared by the daemon and the docs."""

from typing import Any

import attrs

#: Who acts when no session token is bound: the timeline actor, the sender and the mailbox of people.
HUMAN = "human"


@attrs.frozen
class MethodSpec:
    name: str
    #: Any attrs class: type[Any] (not a bare ``type``) lets structure_params infer what it returns.
    params: type[Any]
    description: str
    #: Long-running methods (waits, follows) run concurrently with later requests
    #: on the same connection; everything else is answered in order.
    concurrent: bool = False


def doc(text: str) -> dict[str, str]:
    """Field metadata: a one-line description shown by ``system.methods``."""
    return {"doc": text}
