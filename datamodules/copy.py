"""Copy: see a sequence of random bit vectors, then a delimiter, then write the sequence back.

Worked example (W = 2 for brevity, L = 2; the real task has W = 8):

    step     0      1      2      3      4
    input  [1 0 0][0 1 0][0 0 1][0 0 0][0 0 0]     channel W is the delimiter
    target [0 0  ][0 0  ][0 0  ][1 0  ][0 1  ]
    mask      F      F      F      T      T        T = 2L + 1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import (Batch, Shape, ShapeError, Task, empty_batch, grown, randint, random_bits,
                   require)


@dataclass(frozen=True)
class Copy(Task):
    name = "copy"
    shape_names = ("length",)
    size_axis = "sequence length"

    width: int = 8
    min_length: int = 1
    max_length: int = 20
    test_lengths: tuple[int, ...] = (30, 50, 80, 120)

    def __post_init__(self) -> None:
        require(self.name, "width", self.width, 1)
        require(self.name, "min_length", self.min_length, 1)
        require(self.name, "max_length", self.max_length, self.min_length)
        if not self.test_lengths:
            raise ShapeError(f"{self.name}: test_lengths must name at least one length")
        for length in self.test_lengths:
            require(self.name, "test length", length, 1)

    @property
    def input_size(self) -> int:
        return self.width + 1

    @property
    def output_size(self) -> int:
        return self.width

    def check_shape(self, length: int) -> None:
        require(self.name, "length", length, 1)

    def _sample(self, generator: torch.Generator, batch: int, length: int) -> Batch:
        W, L = self.width, length
        out = empty_batch(batch, 2 * L + 1, W + 1, W)
        bits = random_bits(generator, batch, L, W)  # (B, L, W)
        out["inputs"][:, :L, :W] = bits
        out["inputs"][:, L, W] = 1.0
        out["targets"][:, L + 1 :, :] = bits
        out["mask"][:, L + 1 :] = True
        return out

    def train_shape(self, generator: torch.Generator, fraction: float = 1.0) -> Shape:
        top = grown(self.min_length, self.max_length, fraction)
        return {"length": randint(generator, self.min_length, top)}

    def test_shapes(self) -> list[Shape]:
        return [{"length": L} for L in self.test_lengths]

    def label(self, shape: Shape) -> str:
        return f"len_{shape['length']:03d}"
