"""The one typed run configuration: built from the CLI (or a sweep trial, or a plan's row),
resolved against a preset, handed to Lightning, and logged whole to W&B and next to the run's files.

Every file of settings (`train --config`, a plan, a sweep file, a run's config.yaml) is read by
`load_yaml`, and every mapping of RunConfig fields in it is checked by `RunConfig.from_dict`:

    load_yaml("lr: 1e-4")                    -> {"lr": 0.0001}   (a float, as YAML 1.2 reads it)
    RunConfig.from_dict({"lrr": 0.1})        -> ConfigError: unknown key 'lrr'; valid keys: task, ...
    RunConfig.from_dict({"max_steps": 100})  -> ConfigError: max_steps (100) < val_every (200): ...
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datamodules.checks import check_choice, check_int
from models.config import OptionError, coerce
from models.schedule import SCHEDULES

from .errors import ConfigError

OPTIMIZERS = ("rmsprop", "adam", "rmsprop-centered")  # see models/optim.py
ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
# which weights the test lengths score: the last step's, or the validation point with the lowest
# cost (checkpoints/best.ckpt; validation uses training lengths only, so no test data chooses)
TEST_ON = ("last", "best")
DEFAULT_LR = 1e-4
# a run has learned its task once its validation bit errors per sequence fall below this (fewer
# than one wrong bit in ten sequences): the report's and the bench's convergence point
CONVERGED_BELOW = 0.1
# fields that say how a run is shown or where it is filed, never what it computes: a run resumed
# or rerun with other values of these is the same run (see RunConfig.identity)
DISPLAY_FIELDS = ("out", "progress", "wandb_project", "wandb_entity", "wandb_mode", "wandb_log_model")
WANDB_MODES = ("offline", "online", "disabled")
# which checkpoints become the W&B run's model artifact: the one tested, both kept, or none
WANDB_LOG_MODEL = ("best", "all", "none")


@dataclass
class RunConfig:
    task: str = "copy"
    model: str = "ntm"
    preset: str = "paper"  # "paper" (sizes and lr of the paper's tables) or "none"
    model_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "rmsprop"
    lr: float | None = None  # None: the preset's learning rate
    momentum: float = 0.9
    clip: float = 10.0  # gradients clipped elementwise to [-clip, clip], as in the paper
    lr_schedule: str = "constant"  # see models/schedule.py: constant (the paper's) or cosine
    warmup_steps: int = 0  # updates of linear warm-up of the learning rate from 0
    batch_size: int = 16
    # updates over which the training range grows from its smallest shape to the full range
    # (datamodules/datamodule.py; 0: the full range from the start, the paper's)
    curriculum: int = 0
    max_steps: int = 1000
    seed: int = 0
    val_every: int = 200  # training steps between validations
    val_batches: int = 10
    val_batch_size: int = 100
    test_batch_size: int = 100
    checkpoint_every: int = 200
    test_on: str = "last"  # see TEST_ON
    devices: int = 1
    accelerator: str = "cpu"
    strategy: str = "auto"
    out: str = ""  # run folder; empty: runs/<task>-<model>-seed<seed>
    wandb_project: str = "ntmbench"
    wandb_entity: str = ""  # empty: the W&B login's default entity
    wandb_mode: str | None = None  # offline, online or disabled; None: WANDB_MODE, else offline
    wandb_log_model: str = "best"  # see WANDB_LOG_MODEL
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("batch_size", "max_steps", "val_every", "val_batches", "val_batch_size",
                     "test_batch_size", "checkpoint_every", "devices"):
            check_int(name, getattr(self, name), 1, error=ConfigError)
        check_int("seed", self.seed, 0, error=ConfigError)
        check_choice("optimizer", self.optimizer, OPTIMIZERS, error=ConfigError)
        check_choice("test_on", self.test_on, TEST_ON, error=ConfigError)
        check_choice("lr_schedule", self.lr_schedule, SCHEDULES, error=ConfigError)
        check_int("warmup_steps", self.warmup_steps, 0, error=ConfigError)
        check_int("curriculum", self.curriculum, 0, error=ConfigError)
        if self.curriculum > self.max_steps:
            raise ConfigError(f"curriculum ({self.curriculum}) > max_steps ({self.max_steps}): the "
                              f"run would never train on its full range; lower curriculum")
        if self.warmup_steps >= self.max_steps:
            raise ConfigError(f"warmup_steps ({self.warmup_steps}) >= max_steps ({self.max_steps}): "
                              f"the run would never reach its learning rate; lower warmup_steps")
        check_choice("accelerator", self.accelerator, ACCELERATORS, error=ConfigError)
        if self.wandb_mode is not None:
            check_choice("wandb_mode", self.wandb_mode, WANDB_MODES, error=ConfigError)
        check_choice("wandb_log_model", self.wandb_log_model, WANDB_LOG_MODEL, error=ConfigError)
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0 (got {self.lr})")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1) (got {self.momentum})")
        if not self.clip > 0:
            raise ConfigError(f"clip must be > 0 (got {self.clip})")
        if self.max_steps < self.val_every:
            raise ConfigError(
                f"max_steps ({self.max_steps}) < val_every ({self.val_every}): the run would end "
                f"before its first validation and log no validation metric; lower val_every or "
                f"raise max_steps"
            )

    @property
    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.task}-{self.model}-seed{self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what the run computes (all but DISPLAY_FIELDS): two configs
        with the same identity are the same run, whatever their folder, progress bar or project."""
        return {k: v for k, v in self.to_dict().items() if k not in DISPLAY_FIELDS}

    @classmethod
    def from_dict(cls, values: Any, where: str = "") -> "RunConfig":
        """Strict: unknown keys and wrong types are errors, not silently ignored; strings from a
        command line are converted to the field's type. `where` (e.g. `plan paper.yaml:
        defaults`) starts the error's one line."""
        prefix = f"{where}: " if where else ""
        cls.check_keys(values, where)
        try:
            return cls(**coerce(cls, values))
        except (ConfigError, OptionError) as error:
            raise ConfigError(f"{prefix}{error}") from None

    @classmethod
    def check_keys(cls, values: Any, where: str = "", placed: tuple[str, ...] = (),
                   why: str = "") -> None:
        """`values` is a mapping of RunConfig fields, none of them in `placed` (set elsewhere,
        for the reason `why`); else a one-line ConfigError naming the key and the valid ones,
        after `where`."""
        prefix = f"{where}: " if where else ""
        if not isinstance(values, dict):
            raise ConfigError(f"{prefix}expected a mapping of RunConfig fields (got {values!r})")
        names = [f.name for f in dataclasses.fields(cls) if f.name not in placed]
        unknown = sorted(set(map(str, values)) - set(names) - set(placed))
        if unknown:
            raise ConfigError(f"{prefix}unknown key {', '.join(map(repr, unknown))}; valid keys: "
                              f"{', '.join(names)}")
        if set(values) & set(placed):
            raise ConfigError(f"{prefix}{', '.join(sorted(set(values) & set(placed)))} cannot be "
                              f"set here" + (f" ({why})" if why else ""))

    def replace(self, **changes: Any) -> "RunConfig":
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def resolved(self) -> "RunConfig":
        """The preset applied: its model options and lr, under anything set explicitly."""
        from models.presets import preset  # here, for start-up time: presets import torch

        base = preset(self.preset, self.task, self.model)
        options = {**base.get("options", {}), **self.model_options}
        lr = self.lr if self.lr is not None else (base.get("lr") or DEFAULT_LR)
        return dataclasses.replace(self, model_options=options, lr=lr)


class _Loader(yaml.SafeLoader):
    """YAML with 1.2's floats: `1e-5` is a number (PyYAML, following YAML 1.1, reads a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """The one YAML reader of the project: plans, sweep files, configs, command-line values."""
    return yaml.load(text, Loader=_Loader)


def load_yaml_file(path: str | Path, what: str = "config") -> Any:
    """`load_yaml` of a file; an unreadable file or bad YAML is a one-line ConfigError."""
    try:
        return load_yaml(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path} ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {path} is not valid YAML ({str(error).splitlines()[0]})") from None
