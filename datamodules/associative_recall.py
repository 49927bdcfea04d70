"""Associative recall: see K items, then a query item; answer with the item that followed it.

An item is 3 vectors of W = 6 bits, introduced by a step with the item delimiter (channel W).
The query is framed by the query delimiter (channel W+1). Worked example (K = 2, items a and b,
each of vectors a0 a1 a2 / b0 b1 b2; the query can only be a, so the answer is b):

    step    0    1  2  3    4    5  6  7    8    9  10 11   12   13 14 15
    input  [i] a0 a1 a2   [i] b0 b1 b2    [q] a0 a1 a2   [q]   .  .  .
    target                                                     b0 b1 b2
    mask                                                        T  T  T      T = 4K + 8
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import (Batch, Shape, ShapeError, Task, empty_batch, grown, randint, random_bits,
                   require)

VECTORS_PER_ITEM = 3


@dataclass(frozen=True)
class AssociativeRecall(Task):
    name = "associative_recall"
    shape_names = ("items",)
    size_axis = "items"

    width: int = 6
    min_items: int = 2
    max_items: int = 6
    test_items: tuple[int, ...] = (8, 10, 12, 15)

    def __post_init__(self) -> None:
        require(self.name, "width", self.width, 1)
        require(self.name, "min_items", self.min_items, 2)
        require(self.name, "max_items", self.max_items, self.min_items)
        if not self.test_items:
            raise ShapeError(f"{self.name}: test_items must name at least one item count")
        for items in self.test_items:
            self.check_shape(items)

    @property
    def input_size(self) -> int:
        return self.width + 2

    @property
    def output_size(self) -> int:
        return self.width

    def check_shape(self, items: int) -> None:
        require(self.name, "items", items, 2)

    def _sample(self, generator: torch.Generator, batch: int, items: int) -> Batch:
        W, K, V = self.width, items, VECTORS_PER_ITEM
        out = empty_batch(batch, 4 * K + 8, W + 2, W)
        vectors = random_bits(generator, batch, K, V, W)  # (B, K, 3, W)
        query = torch.randint(0, K - 1, (batch,), generator=generator)  # (B,) in 0..K-2
        rows = torch.arange(batch)

        framed = out["inputs"][:, : 4 * K].view(batch, K, V + 1, W + 2)  # (B, K, 4, I)
        framed[:, :, 0, W] = 1.0
        framed[:, :, 1:, :W] = vectors
        q = 4 * K
        out["inputs"][:, q, W + 1] = 1.0
        out["inputs"][:, q + 1 : q + 1 + V, :W] = vectors[rows, query]  # (B, 3, W)
        out["inputs"][:, q + 1 + V, W + 1] = 1.0
        out["targets"][:, q + 2 + V :, :] = vectors[rows, query + 1]  # (B, 3, W)
        out["mask"][:, q + 2 + V :] = True
        return out

    def train_shape(self, generator: torch.Generator, fraction: float = 1.0) -> Shape:
        top = grown(self.min_items, self.max_items, fraction)
        return {"items": randint(generator, self.min_items, top)}

    def test_shapes(self) -> list[Shape]:
        return [{"items": K} for K in self.test_items]

    def label(self, shape: Shape) -> str:
        return f"items_{shape['items']:02d}"
