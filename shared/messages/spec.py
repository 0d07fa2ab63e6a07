"""The description of one RPC method, shared by the daemon and the docs."""

from typing import Any, Callable

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


def between(low: int, high: int) -> Callable[[Any, "attrs.Attribute[int]", int], None]:
    """A validator for a count such as ``limit``: ``low <= v <= high``, or -32602 naming the field."""

    def check(_inst: Any, a: "attrs.Attribute[int]", v: int) -> None:
        if not low <= v <= high:
            raise ValueError(f"{a.name}: must be between {low} and {high}, got {v}")

    return check


def doc(text: str) -> dict[str, str]:
    """Field metadata: a one-line description shown by ``system.methods``."""
    return {"doc": text}
