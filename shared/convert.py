"""The strict cattrs converter for RPC params and results (daemon side only).

cattrs' default converter coerces silently (``1 -> "1"``, ``None -> "None"``,
``"abc" -> ["a", "b", "c"]``); an agent that sends a wrong type must be told,
not guessed at. Every primitive hook below checks the exact JSON type, and
errors are reported all at once as ``field.path: what was wrong``.

``maestroctl`` never imports this module (cattrs costs start-up time).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, TypeVar

import attrs
import cattrs
from cattrs.cols import is_sequence, list_structure_factory
from cattrs.errors import (ClassValidationError, ForbiddenExtraKeysError, IterableValidationError,
                           IterableValidationNote)

from shared import limits
from shared.errors import TOO_LARGE, RpcError, invalid_params
from shared.messages.task import Task

T = TypeVar("T")


class WrongType(TypeError):
    """A value of the wrong JSON type; the message is shown to the caller verbatim."""


class FieldTooLarge(WrongType):
    """A value over its cap (shared/limits.py): answered with -32005 instead of -32602."""


def _str_hook(v: Any, _t: Any) -> str:
    if type(v) is not str:
        raise WrongType(f"expected string, got {_json_type(v)}")
    if len(v) > limits.STRING_MAX:
        raise FieldTooLarge(f"at most {limits.STRING_MAX} characters, got {len(v)}")
    return v


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _show(v: Any) -> str:
    if isinstance(v, str):
        return '"' + (v if len(v) <= 40 else v[:37] + "...") + '"'
    if isinstance(v, (dict, list)):
        return _json_type(v)
    return repr(v).lower() if isinstance(v, bool) or v is None else repr(v)


def _strict(name: str, ok: typing.Callable[[Any], bool],
            conv: typing.Callable[[Any], Any] = lambda v: v) -> typing.Callable[[Any, Any], Any]:
    def hook(v: Any, _t: Any) -> Any:
        if not ok(v):
            raise WrongType(f"expected {name}, got {_json_type(v)}")
        return conv(v)

    return hook


#: Every integer param must fit SQLite's INTEGER (signed 64 bits): larger ones overflow in the store.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_INT_RANGE = f"must be between {INT_MIN} and {INT_MAX}"


def _int_hook(v: Any, _t: Any) -> int:
    if type(v) is int:
        if INT_MIN <= v <= INT_MAX:
            return v
        raise WrongType(_INT_RANGE)
    if type(v) is float and v.is_integer() and abs(v) >= 2**63:
        raise WrongType(_INT_RANGE)  # orjson reads integers beyond 64 bits as floats (rounded: >= 2**63)
    raise WrongType(f"expected integer, got {_json_type(v)}")


def _float_hook(v: Any, _t: Any) -> float:
    if type(v) is float:
        return v
    if type(v) is int:
        try:
            return float(v)
        except OverflowError:
            raise WrongType("number out of range") from None
    raise WrongType(f"expected number, got {_json_type(v)}")


def make_converter() -> cattrs.Converter:
    c = cattrs.Converter(forbid_extra_keys=True)
    c.register_structure_hook(int, _int_hook)
    c.register_structure_hook(float, _float_hook)
    c.register_structure_hook(str, _str_hook)
    c.register_structure_hook(bool, _strict("boolean", lambda v: type(v) is bool))

    def guard_list(t: Any) -> Any:
        orig = list_structure_factory(t, c)

        def hook(v: Any, _t: Any) -> Any:
            if not isinstance(v, list):
                raise WrongType(f"expected array, got {_json_type(v)}")
            if len(v) > limits.LIST_MAX:
                raise FieldTooLarge(f"at most {limits.LIST_MAX} items, got {len(v)}")
            return orig(v, _t)

        return hook

    c.register_structure_hook_factory(lambda t: t not in (str, bytes) and is_sequence(t), guard_list)

    def literal_hook(t: Any) -> Any:
        allowed = typing.get_args(t)

        def hook(v: Any, _t: Any) -> Any:
            if type(v) is not str or v not in allowed:
                raise WrongType(f"expected one of {'|'.join(map(str, allowed))}, got {_show(v)}")
            return v

        return hook

    c.register_structure_hook_factory(lambda t: typing.get_origin(t) is Literal, literal_hook)  # type: ignore[comparison-overlap]

    def dict_guard(t: Any) -> Any:
        args = typing.get_args(t)
        key_t, val_t = (args + (Any, Any))[:2] if args else (Any, Any)

        def hook(v: Any, _t: Any) -> Any:
            if not isinstance(v, dict):
                raise WrongType(f"expected object, got {_json_type(v)}")
            out = {}
            for k, item in v.items():
                out[c.structure(k, key_t) if key_t is not Any else k] = (
                    c.structure(item, val_t) if val_t is not Any else item)
            return out

        return hook

    c.register_structure_hook_factory(
        lambda t: t is dict or typing.get_origin(t) is dict, dict_guard)  # type: ignore[comparison-overlap]
    c.register_structure_hook(typing.Any, lambda v, _t: v)
    c.register_unstructure_hook(Task, unstructure_task)
    unstructure_list = c.get_unstructure_hook(list)

    def list_hook(v: list[Any]) -> Any:
        # A list of tasks (the biggest results there are) skips cattrs' dispatch per element.
        if v and type(v[0]) is Task and all(type(t) is Task for t in v):
            return [unstructure_task(t) for t in v]
        return unstructure_list(v)

    c.register_unstructure_hook(list, list_hook)
    return c


def unstructure_task(t: Task) -> dict[str, Any]:
    """A task as JSON, by hand: lists of hundreds of tasks are the biggest results, and cattrs' generated
    hook (a dispatch per optional field and per dependency) was a third of a ``task.list`` under load."""
    return {"id": t.id, "project_id": t.project_id, "title": t.title, "description": t.description,
            "status": t.status, "priority": t.priority, "parent_id": t.parent_id, "depends_on": list(t.depends_on),
            "created_at": t.created_at, "updated_at": t.updated_at, "started_at": t.started_at,
            "completed_at": t.completed_at,
            "children": None if t.children is None else [unstructure_task(c) for c in t.children]}


converter = make_converter()


def _format(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc) or type(exc).__name__


def _flatten(exc: BaseException, path: str, out: list[str]) -> None:
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            if isinstance(note, IterableValidationNote):
                p = f"{path}[{note.index!r}]"
            else:
                p = f"{path}.{note.name}" if path else note.name
            _flatten(sub, p, out)
        for sub in without:
            if isinstance(exc, ClassValidationError) and type(sub) is ValueError:
                # raised by the class's own validators, whose messages name the field: `limit: must be ...`
                out.append(f"{path + '.' if path else ''}{sub}")
                continue
            _flatten(sub, path, out)
        return
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            out.append(f"{path + '.' if path else ''}{key}: unknown field")
        return
    out.append(f"{path or 'params'}: {_format(exc)}")


class _NoRequired(dict[type, bool]):
    """Classes whose every field has a default: ``{}`` structures to ``cls()``."""

    def __missing__(self, cls: type) -> bool:
        ok = attrs.has(cls) and all(f.default is not attrs.NOTHING for f in attrs.fields(cls))
        self[cls] = ok
        return ok


_NO_REQUIRED = _NoRequired()


class _FieldCaps(dict[type, list[tuple[str, limits.Cap]]]):
    """The capped fields of each params class (shared/limits.py), looked up once per class."""

    def __missing__(self, cls: type) -> list[tuple[str, limits.Cap]]:
        table = limits.FIELD_CAPS.get(cls.__name__, {})
        names = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
        caps = [(name, cap) for name, cap in table.items() if name in names]
        self[cls] = caps
        return caps


_CAPS = _FieldCaps()


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, kind):
        return True
    return isinstance(exc, BaseExceptionGroup) and any(_contains(e, kind) for e in exc.exceptions)


def too_large(problems: list[str]) -> RpcError:
    """-32005 naming each field over its cap (``title: at most 500 characters, got 501``)."""
    return RpcError(TOO_LARGE, "Too large: " + "; ".join(problems),
                    {"errors": problems, "fields": [p.split(":", 1)[0] for p in problems]})


def structure_params(params: Any, cls: type[T]) -> T:
    """Structure request params into ``cls`` or raise a -32602 naming every bad field."""
    if not isinstance(params, dict):
        raise invalid_params([f"params: expected object, got {_json_type(params)}"])
    if not params and _NO_REQUIRED[cls]:
        return cls()  # the common no-argument call skips cattrs' dispatch (~2 us)
    caps = _CAPS[cls]
    if caps:  # on the raw params, before validators: an oversized field is named as such, whatever else
        over = [p for name, cap in caps for p in limits.check(name, params.get(name), cap)]
        if over:
            raise too_large(over)
    try:
        obj = converter.structure(params, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        problems: list[str] = []
        _flatten(exc, "", problems)
        if _contains(exc, FieldTooLarge):
            raise too_large(problems) from None
        raise invalid_params(problems) from None
    except (TypeError, ValueError) as exc:  # attrs validators raise from __init__
        raise invalid_params([str(exc)]) from None
    return obj


def unstructure(obj: Any) -> Any:
    return converter.unstructure(obj)


def field_specs(cls: type) -> list[dict[str, Any]]:
    """A short description of each params field, for ``system.methods``."""
    specs = []
    for f in attrs.fields(cls):
        spec: dict[str, Any] = {"name": f.name, "type": _type_name(f.type),
                                "required": f.default is attrs.NOTHING}
        doc = f.metadata.get("doc")
        if doc:
            spec["doc"] = doc
        specs.append(spec)
    return specs


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    if origin is Literal:
        return "|".join(map(str, typing.get_args(t)))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(t))
    if origin in (list, tuple):
        args = typing.get_args(t)
        return f"array of {_type_name(args[0])}" if args else "array"
    if origin is dict:
        return "object"
    return {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null",
            dict: "object", list: "array"}.get(t, getattr(t, "__name__", str(t)))
