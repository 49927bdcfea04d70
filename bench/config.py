"""The one typed run configuration: built from the CLI (or a sweep trial), resolved against a
preset, handed to Lightning, and logged whole to W&B and next to the run's files."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.config import coerce

OPTIMIZERS = ("rmsprop", "adam")
ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
# which weights the test lengths score: the last step's, or the validation point with the lowest
# cost (checkpoints/best.ckpt; validation uses training lengths only, so no test data chooses)
TEST_ON = ("last", "best")
DEFAULT_LR = 1e-4


class ConfigError(ValueError):
    """A bad configuration value; the message is one line and names the fix."""


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
    batch_size: int = 16
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
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("batch_size", "max_steps", "val_every", "val_batches", "val_batch_size",
                     "test_batch_size", "checkpoint_every", "devices"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name} must be >= 1 (got {value})")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0 (got {self.seed})")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})"
            )
        if self.test_on not in TEST_ON:
            raise ConfigError(f"test_on must be one of {', '.join(TEST_ON)} (got {self.test_on!r})")
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(
                f"accelerator must be one of {', '.join(ACCELERATORS)} (got {self.accelerator!r})"
            )
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0 (got {self.lr})")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1) (got {self.momentum})")
        if not self.clip > 0:
            raise ConfigError(f"clip must be > 0 (got {self.clip})")

    @property
    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.task}-{self.model}-seed{self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Strict: unknown keys and wrong types are errors, not silently ignored; strings from a
        command line are converted to the field's type."""
        try:
            return cls(**coerce(cls, values))
        except ConfigError:
            raise
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def replace(self, **changes: Any) -> "RunConfig":
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def resolved(self) -> "RunConfig":
        """The preset applied: its model options and lr, under anything set explicitly."""
        from models.presets import preset

        base = preset(self.preset, self.task, self.model)
        options = {**base.get("options", {}), **self.model_options}
        lr = self.lr if self.lr is not None else (base.get("lr") or DEFAULT_LR)
        return dataclasses.replace(self, model_options=options, lr=lr)
