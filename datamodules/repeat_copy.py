"""Repeat copy: see a sequence and a repeat count R, write the sequence R times, then an end marker.

Worked example (W = 2 for brevity, L = 1, R = 2, repeats trained on 1..10 so R is fed as
(2 - 5.5) / 2.8723 = -1.2185):

    step     0          1          2                3        4        5
    input  [1 0 0 0 ][0 0 1 0 ][0 0 0 -1.2185][0 0 0 0][0 0 0 0][0 0 0 0]
    target [0 0 0   ][0 0 0   ][0 0 0        ][1 0 0  ][1 0 0  ][0 0 1  ]  channel W: end marker
    mask      F          F          F                T        T        T     T = L + 2 + L*R + 1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import (Batch, Shape, ShapeError, Task, empty_batch, grown, randint, random_bits,
                   require)


@dataclass(frozen=True)
class RepeatCopy(Task):
    name = "repeat_copy"
    shape_names = ("length", "repeats")
    size_axis = "length x repeats"

    @classmethod
    def size(cls, shape: Shape) -> float:
        """Length x repeats: the number of vectors the network writes out."""
        return float(shape["length"] * shape["repeats"])

    width: int = 8
    min_length: int = 1
    max_length: int = 10
    min_repeats: int = 1
    max_repeats: int = 10
    test_pairs: tuple[tuple[int, int], ...] = ((10, 20), (20, 10), (10, 15))

    def __post_init__(self) -> None:
        require(self.name, "width", self.width, 1)
        require(self.name, "min_length", self.min_length, 1)
        require(self.name, "max_length", self.max_length, self.min_length)
        require(self.name, "min_repeats", self.min_repeats, 1)
        require(self.name, "max_repeats", self.max_repeats, self.min_repeats)
        if not self.test_pairs:
            raise ShapeError(f"{self.name}: test_pairs must name at least one (length, repeats)")
        for length, repeats in self.test_pairs:
            self.check_shape(length, repeats)

    @property
    def input_size(self) -> int:
        return self.width + 2

    @property
    def output_size(self) -> int:
        return self.width + 1

    def normalised_repeats(self, repeats: int) -> float:
        """(R - mean) / std of the discrete uniform distribution on the training range of R."""
        count = self.max_repeats - self.min_repeats + 1
        mean = (self.min_repeats + self.max_repeats) / 2
        std = math.sqrt((count * count - 1) / 12) or 1.0  # a one-value range has std 0
        return (repeats - mean) / std

    def check_shape(self, length: int, repeats: int) -> None:
        require(self.name, "length", length, 1)
        require(self.name, "repeats", repeats, 1)

    def _sample(self, generator: torch.Generator, batch: int, length: int, repeats: int) -> Batch:
        W, L, R = self.width, length, repeats
        out = empty_batch(batch, L + 2 + L * R + 1, W + 2, W + 1)
        bits = random_bits(generator, batch, L, W)  # (B, L, W)
        out["inputs"][:, :L, :W] = bits
        out["inputs"][:, L, W] = 1.0
        out["inputs"][:, L + 1, W + 1] = self.normalised_repeats(R)
        out["targets"][:, L + 2 : L + 2 + L * R, :W] = bits.repeat(1, R, 1)  # (B, L*R, W)
        out["targets"][:, -1, W] = 1.0
        out["mask"][:, L + 2 :] = True
        return out

    def train_shape(self, generator: torch.Generator, fraction: float = 1.0) -> Shape:
        return {
            "length": randint(generator, self.min_length,
                              grown(self.min_length, self.max_length, fraction)),
            "repeats": randint(generator, self.min_repeats,
                               grown(self.min_repeats, self.max_repeats, fraction)),
        }

    def test_shapes(self) -> list[Shape]:
        return [{"length": L, "repeats": R} for L, R in self.test_pairs]

    def label(self, shape: Shape) -> str:
        return f"len_{shape['length']:03d}_rep_{shape['repeats']:02d}"
