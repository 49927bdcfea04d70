"""Priority sort: see vectors each tagged with a priority in U[-1, 1]; write the n_out of highest
priority back, highest first.

Worked example (W = 2 for brevity, n_in = 3, n_out = 2; channel W: priority, W+1: delimiter):

    step     0             1              2             3           4       5
    input  [1 0 0.3 0] [0 1 -0.7 0] [1 1 0.9 0] [0 0 0 1]   [0 0 0 0] [0 0 0 0]
    target                                                    [1 1]     [1 0]      (0.9, then 0.3)
    mask                                                        T         T        T = n_in + 1 + n_out
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Batch, Shape, ShapeError, Task, empty_batch, random_bits, require


@dataclass(frozen=True)
class PrioritySort(Task):
    name = "priority_sort"
    grows = False  # one training shape
    shape_names = ("n_in", "n_out")
    size_axis = "input vectors (n_in)"

    width: int = 8
    train_n_in: int = 20
    train_n_out: int = 16
    test_pairs: tuple[tuple[int, int], ...] = ((30, 24), (40, 32))

    def __post_init__(self) -> None:
        require(self.name, "width", self.width, 1)
        self.check_shape(self.train_n_in, self.train_n_out)
        if not self.test_pairs:
            raise ShapeError(f"{self.name}: test_pairs must name at least one (n_in, n_out)")
        for n_in, n_out in self.test_pairs:
            self.check_shape(n_in, n_out)

    @property
    def input_size(self) -> int:
        return self.width + 2

    @property
    def output_size(self) -> int:
        return self.width

    def check_shape(self, n_in: int, n_out: int) -> None:
        require(self.name, "n_in", n_in, 1)
        require(self.name, "n_out", n_out, 1, n_in)

    def _sample(self, generator: torch.Generator, batch: int, n_in: int, n_out: int) -> Batch:
        W = self.width
        out = empty_batch(batch, n_in + 1 + n_out, W + 2, W)
        vectors = random_bits(generator, batch, n_in, W)  # (B, n_in, W)
        priority = torch.rand(batch, n_in, generator=generator) * 2 - 1  # (B, n_in) in [-1, 1)
        order = priority.topk(n_out, dim=1, sorted=True).indices  # (B, n_out) highest first
        out["inputs"][:, :n_in, :W] = vectors
        out["inputs"][:, :n_in, W] = priority
        out["inputs"][:, n_in, W + 1] = 1.0
        out["targets"][:, n_in + 1 :] = vectors.gather(1, order.unsqueeze(-1).expand(-1, -1, W))
        out["mask"][:, n_in + 1 :] = True
        return out

    def train_shape(self, generator: torch.Generator, fraction: float = 1.0) -> Shape:
        return {"n_in": self.train_n_in, "n_out": self.train_n_out}

    def test_shapes(self) -> list[Shape]:
        return [{"n_in": a, "n_out": b} for a, b in self.test_pairs]

    def label(self, shape: Shape) -> str:
        return f"in_{shape['n_in']:03d}_out_{shape['n_out']:03d}"
