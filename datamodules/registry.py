"""Task names -> task classes. Adding a task is one file and one line here."""

from __future__ import annotations

from dataclasses import fields

from .associative_recall import AssociativeRecall
from .base import ShapeError, Task
from .copy import Copy
from .ngrams import NGrams
from .priority_sort import PrioritySort
from .repeat_copy import RepeatCopy

TASKS: dict[str, type[Task]] = {
    "copy": Copy,
    "repeat_copy": RepeatCopy,
    "associative_recall": AssociativeRecall,
    "ngrams": NGrams,
    "priority_sort": PrioritySort,
}


def build_task(name: str, **options: object) -> Task:
    """The task called `name`, configured by `options` (its dataclass fields)."""
    if name not in TASKS:
        raise ShapeError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    cls = TASKS[name]
    valid = {f.name: f for f in fields(cls)}
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ShapeError(
            f"{name}: unknown task option {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    converted = {k: _as_field_type(name, k, v, valid[k].default) for k, v in options.items()}
    return cls(**converted)


def _as_field_type(task: str, key: str, value: object, default: object) -> object:
    """Coerce lists from YAML/CLI into the tuples the frozen dataclasses hold."""
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
        raise ShapeError(f"{task}: option {key} must be an integer (got {value!r})")
    return value
