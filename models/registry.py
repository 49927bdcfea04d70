"""Model names -> builders. A variant is a functools.partial entry, so "go to definition" works.

    build_model("ntm", 9, 8, heads=2, memory_size="64")  # CLI strings are converted per field type
    build_model("ntm-ff", 9, 8)                           # the NTM with a feedforward controller
    build_model("lstm", 9, 8, layers=3, size=256)

Unknown names, unknown options and values of the wrong type raise OptionError naming the valid ones.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from functools import partial
from typing import Any

from torch import nn

from .config import OptionError, check_int, coerce
from .lstm import LSTMBaseline, LSTMConfig
from .ntm import NTM, NTMConfig


def build(
    model_cls: type[nn.Module], config_cls: type, input_size: int, output_size: int, **options: Any
) -> nn.Module:
    """`model_cls(input_size, output_size, config_cls(**options))`, options coerced and checked."""
    check_int("input_size", input_size, 1)
    check_int("output_size", output_size, 1)
    return model_cls(input_size, output_size, config_cls(**coerce(config_cls, options)))


MODELS: dict[str, partial] = {
    "ntm": partial(build, NTM, NTMConfig, controller="lstm"),
    "ntm-ff": partial(build, NTM, NTMConfig, controller="ff"),
    "lstm": partial(build, LSTMBaseline, LSTMConfig),
}


def _builder(name: str) -> partial:
    if name not in MODELS:
        raise OptionError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def _check_fixed(name: str, options: dict[str, Any]) -> None:
    builder = _builder(name)
    config_cls = builder.args[1]
    for key, fixed in builder.keywords.items():  # e.g. "ntm" fixes controller="lstm"
        if key in options and coerce(config_cls, {key: options[key]})[key] != fixed:
            others = [n for n, b in MODELS.items() if b.keywords.get(key) == options[key]]
            hint = f"; use model {others[0]!r}" if others else ""
            raise OptionError(f"model {name!r} fixes {key}={fixed!r} (got {options[key]!r}){hint}")


def build_model(name: str, input_size: int, output_size: int, **options: Any) -> nn.Module:
    """The network called `name` mapping (B, T, input_size) to (B, T, output_size) logits."""
    _check_fixed(name, options)
    return _builder(name)(input_size, output_size, **options)


def model_config(name: str, **options: Any) -> Any:
    """The checked config dataclass model `name` would be built with (e.g. NTMConfig), without
    building it: nothing is allocated (core/footprint.py sizes a run from it)."""
    _check_fixed(name, options)
    builder = _builder(name)
    config_cls = builder.args[1]
    return config_cls(**coerce(config_cls, {**options, **builder.keywords}))


def model_options(name: str) -> dict[str, Any]:
    """Every option of model `name` with its default (fixed options at their fixed value)."""
    builder = _builder(name)
    defaults = {
        f.name: f.default for f in fields(builder.args[1]) if f.default is not MISSING
    }
    return defaults | builder.keywords


def batches_members(name: str) -> bool:
    """Whether model `name` runs a population's members in one batched pass (the NTM), rather
    than one after another (the LSTM: a population of it is no faster than its solo runs)."""
    return _builder(name).args[0].BATCHED_MEMBERS


def parameter_count(net: nn.Module) -> int:
    """Trainable parameters of `net`: the count the paper's tables and the results table give."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
