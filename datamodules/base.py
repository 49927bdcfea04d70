"""What every task is: sizes, a sampler that takes its shape at call time, and its splits.

A task is a small frozen dataclass. Its fields are the configurable parts (training ranges, test
shapes); its `sample(generator, batch, **shape)` draws one batch in the layout of `docs/TASKS.md`:

    inputs  float32 (B, T, I)
    targets float32 (B, T, O)   zero wherever mask is False
    mask    bool    (B, T)      the scored steps

Because the shape is an argument, every split and curriculum is just a different choice of shapes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor

from .checks import ShapeError, check_int

Batch = dict[str, Tensor]
Shape = dict[str, int]


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """One integer from U{low..high} (both ends included), drawn from `generator`."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def stable_seed(*parts: object) -> int:
    """A seed that depends only on `parts` (same on every machine and Python run)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def grown(low: int, high: int, fraction: float) -> int:
    """The top of a training range that a curriculum grows: `low` at fraction 0, `high` at 1."""
    return low + round(min(max(fraction, 0.0), 1.0) * (high - low))


def require(task: str, name: str, value: object, low: int, high: int | None = None) -> int:
    """Check that a shape parameter is an integer in [low, high]; raise a one-line ShapeError if not."""
    return check_int(f"{task}: {name}", value, low, high, error=ShapeError)


@dataclass(frozen=True)
class Task:
    """Base of the five tasks. Subclasses set `name`, `shape_names` and implement the hooks."""

    name: ClassVar[str]
    shape_names: ClassVar[tuple[str, ...]]
    size_axis: ClassVar[str] = "size"  # what `size` measures, for a plot's axis
    grows: ClassVar[bool] = True  # whether `train_shape(fraction < 1)` draws smaller shapes

    @classmethod
    def size(cls, shape: Shape) -> float:
        """The number a test shape is plotted against: its first shape parameter."""
        return float(shape[cls.shape_names[0]])

    @property
    def input_size(self) -> int:
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    def sample(self, generator: torch.Generator, batch: int, **shape: int) -> Batch:
        """One batch of `batch` sequences sharing `shape`."""
        require(self.name, "batch", batch, 1)
        unknown = sorted(set(shape) - set(self.shape_names))
        missing = sorted(set(self.shape_names) - set(shape))
        if unknown or missing:
            raise ShapeError(
                f"{self.name}: shape takes {', '.join(self.shape_names)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        self.check_shape(**shape)
        return self._sample(generator, batch, **shape)

    def check_shape(self, **shape: int) -> None:
        raise NotImplementedError

    def _sample(self, generator: torch.Generator, batch: int, **shape: int) -> Batch:
        raise NotImplementedError

    def train_shape(self, generator: torch.Generator, fraction: float = 1.0) -> Shape:
        """A shape drawn from the training range (also used for the validation set). A curriculum
        passes `fraction` < 1: the range's top is then `grown(low, high, fraction)`, so the draw
        takes the same random numbers from `generator` and equals the full range's at 1."""
        raise NotImplementedError

    def test_shapes(self) -> list[Shape]:
        """The generalization shapes, one test set each."""
        raise NotImplementedError

    def label(self, shape: Shape) -> str:
        """The name a shape's metrics are logged under, e.g. `len_050`."""
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        """The task's configuration, as plain values (for logging)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def empty_batch(batch: int, steps: int, inputs: int, outputs: int) -> Batch:
    """Zero inputs and targets and an all-False mask, to be filled in by a task."""
    return {
        "inputs": torch.zeros(batch, steps, inputs),
        "targets": torch.zeros(batch, steps, outputs),
        "mask": torch.zeros(batch, steps, dtype=torch.bool),
    }


def random_bits(generator: torch.Generator, *size: int) -> Tensor:
    """Bernoulli(0.5) bits as float32."""
    return torch.randint(0, 2, size, generator=generator).float()
