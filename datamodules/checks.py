"""The one integer check and the one choice check behind every option of the project (a task's
shapes and options, a model's options, a run's settings), and the tasks' own error. Kept apart
from base.py (which needs torch) so that the command line can name them without importing torch.

    check_int("memory_size", 0, 1, error=OptionError)
        -> OptionError: memory_size must be an integer >= 1 (got 0)
    check_choice("optimizer", "sgd", ("rmsprop", "adam"), error=ConfigError)
        -> ConfigError: optimizer must be one of rmsprop, adam (got 'sgd')
"""

from __future__ import annotations

from collections.abc import Iterable


class ShapeError(ValueError):
    """An impossible shape parameter or task option; the message names the valid values."""


def check_int(name: str, value: object, low: int, high: int | None = None, *,
              allow_none: bool = False, error: type[Exception] = ValueError) -> int | None:
    """`value` if it is an int in low..high (or None where allowed); else raise `error` with
    one line naming the valid range."""
    if allow_none and value is None:
        return None
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and value >= low and (high is None or value <= high):
        return value
    valid = f">= {low}" if high is None else f"in {low}..{high}"
    suffix = " or None" if allow_none else ""
    raise error(f"{name} must be an integer {valid}{suffix} (got {value!r})")


def check_choice(name: str, value: object, choices: Iterable[str], *,
                 error: type[Exception] = ValueError) -> str:
    """`value` if it is one of `choices`; else raise `error` naming them."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise error(f"{name} must be one of {', '.join(choices)} (got {value!r})")
    return value
