"""Checking and coercing model configs: where user options become typed, validated fields.

Each model has a ``@dataclass`` config whose ``__post_init__`` calls ``check_int`` and
``check_choice``, so a bad value fails at construction with one line that names the valid values:

    NTMConfig(memory_size=0)    -> OptionError: memory_size must be an integer >= 1 (got 0)
    NTMConfig(controller="gru") -> OptionError: controller must be one of lstm, ff (got 'gru')

``coerce(NTMConfig, {"heads": "3"})`` turns strings from a command line into the annotated field
type (``{"heads": 3}``) and rejects unknown keys and values of the wrong type.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from collections.abc import Iterable, Mapping

from datamodules import checks

class OptionError(ValueError):
    """A bad model option (unknown name, wrong type, out of range): the user's input, not a bug;
    the message is one line and names the valid values."""


_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def check_int(
    name: str, value: object, low: int, high: int | None = None, *, allow_none: bool = False
) -> None:
    """Raise OptionError unless `value` is an int in low..high (or None where allowed)."""
    checks.check_int(name, value, low, high, allow_none=allow_none, error=OptionError)


def check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    """Raise OptionError unless `value` is one of `choices`."""
    checks.check_choice(name, value, choices, error=OptionError)


def coerce(config_cls: type, options: Mapping[str, object]) -> dict[str, object]:
    """`options` converted to `config_cls`'s field types; unknown keys, bad values: OptionError."""
    hints = typing.get_type_hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise OptionError(
            f"unknown option {', '.join(map(repr, unknown))} for {config_cls.__name__}; "
            f"valid options: {', '.join(names)}"
        )
    return {key: _convert(key, value, hints[key]) for key, value in options.items()}


def _convert(key: str, value: object, hint: object) -> object:
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = typing.get_args(hint) if union else (hint,)
    allow_none = type(None) in kinds
    if allow_none and (value is None or str(value).strip().lower() in ("none", "null")):
        return None
    kinds = tuple(k for k in kinds if k is not type(None))
    for kind in kinds:
        try:
            return _to(kind, value)
        except (TypeError, ValueError):
            continue
    wanted = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
    wanted += " or None" if allow_none else ""
    raise OptionError(f"option {key!r} must be {wanted} (got {value!r})")


def _to(kind: object, value: object) -> object:
    """`value` as `kind` (bool, int, float or str); strings are parsed, other mismatches raise."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLS:
            return _BOOLS[value.strip().lower()]
    elif kind is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            return int(value.strip())  # "3.5" and "abc" raise
    elif kind is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    elif kind is str and isinstance(value, str):
        return value
    elif typing.get_origin(kind) is dict and isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot convert {value!r} to {kind}")
