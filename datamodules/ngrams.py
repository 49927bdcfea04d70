"""Dynamic N-grams: predict the next bit of a sequence drawn from a fresh random 6-gram table.

For every sequence a table of 2^5 = 32 probabilities P(1 | previous 5 bits) is drawn from
Beta(1/2, 1/2); the first 5 bits are fair coins, each later bit follows the table. Input at step
t is bit t, target is bit t+1, so the mask is True for t = 0..S-2. Worked example (S = 7):

    bits    b0 b1 b2 b3 b4 b5 b6          b5 ~ table[b0..b4], b6 ~ table[b1..b5]
    input   b0 b1 b2 b3 b4 b5 b6
    target  b1 b2 b3 b4 b5 b6  0
    mask     T  T  T  T  T  T  F

The batch also carries `optimal`: the Bayesian optimal estimator's P(next bit = 1) at each step,
(N1 + 1/2) / (N1 + N0 + 1), counting what followed the same 5-bit context earlier in the sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .base import Batch, Shape, ShapeError, Task, empty_batch, require

CONTEXT = 5  # N - 1 for N = 6
CONTEXTS = 2**CONTEXT


def arcsine(generator: torch.Generator, *size: int) -> Tensor:
    """Beta(1/2, 1/2) samples by inverting its CDF, 2/pi asin(sqrt(x)), so a Generator drives them."""
    return torch.sin(torch.rand(size, generator=generator) * (math.pi / 2)) ** 2


def optimal_estimate(bits: Tensor) -> Tensor:
    """The optimal predictor of bit t+1 from bits 0..t, for every t; bits (B, S) -> (B, S)."""
    batch, steps = bits.shape
    estimate = torch.full((batch, steps), 0.5)
    if steps <= CONTEXT:
        return estimate
    weights = 2 ** torch.arange(CONTEXT - 1, -1, -1)  # (5,) most recent bit is the lowest
    windows = bits.long().unfold(1, CONTEXT, 1)  # (B, S-4, 5): bits t-4..t for t = 4..S-1
    context = (windows * weights).sum(-1)  # (B, S-4)
    onehot = torch.nn.functional.one_hot(context, CONTEXTS).float()  # (B, S-4, 32)
    nxt = torch.zeros_like(context, dtype=torch.float)  # (B, S-4): the bit that followed each t
    nxt[:, :-1] = bits[:, CONTEXT:]
    ones = onehot * nxt.unsqueeze(-1)  # (B, S-4, 32)
    seen = onehot.cumsum(1) - onehot  # counts strictly before t
    seen_ones = ones.cumsum(1) - ones
    n = seen.gather(2, context.unsqueeze(-1)).squeeze(-1)  # (B, S-4)
    n1 = seen_ones.gather(2, context.unsqueeze(-1)).squeeze(-1)
    estimate[:, CONTEXT - 1 :] = (n1 + 0.5) / (n + 1.0)
    return estimate


def follow_table(first: Tensor, coins: Tensor, table: Tensor) -> np.ndarray:
    """The bits after the first 5: bit t = coins[t] < table[context of bits t-5..t-1].

    first (B, 5) bits, coins (B, S') uniforms, table (B, 32) -> (B, S') float32 bits. Every
    step's outcome for all 32 contexts is one vectorized comparison, (B, S', 32); what is left
    sequential is the walk through it, one gather per step, in NumPy (a torch op costs ~10x a
    NumPy one at these sizes, and this loop decides the cost of a batch).
    """
    outcome = (coins.unsqueeze(-1) < table.unsqueeze(1)).numpy()  # (B, S', 32)
    weights = 2 ** np.arange(CONTEXT - 1, -1, -1)  # (5,): the most recent bit is the lowest
    context = first.numpy().astype(np.int64) @ weights  # (B,)
    rows = np.arange(first.shape[0])
    bits = np.empty(coins.shape, dtype=np.float32)  # (B, S')
    for t in range(coins.shape[1]):  # sequential in time, vectorized over the batch
        bit = outcome[rows, t, context]  # (B,)
        bits[:, t] = bit
        context = ((context << 1) | bit) & (CONTEXTS - 1)
    return bits


@dataclass(frozen=True)
class NGrams(Task):
    name = "ngrams"
    grows = False  # one training length
    shape_names = ("length",)
    size_axis = "sequence length"

    train_length: int = 200
    test_lengths: tuple[int, ...] = (400, 1000)

    def __post_init__(self) -> None:
        self.check_shape(self.train_length)
        if not self.test_lengths:
            raise ShapeError(f"{self.name}: test_lengths must name at least one length")
        for length in self.test_lengths:
            self.check_shape(length)

    @property
    def input_size(self) -> int:
        return 1

    @property
    def output_size(self) -> int:
        return 1

    def check_shape(self, length: int) -> None:
        require(self.name, "length", length, 2)

    def _sample(self, generator: torch.Generator, batch: int, length: int) -> Batch:
        S = length
        table = arcsine(generator, batch, CONTEXTS)  # (B, 32)
        coins = torch.rand(batch, S, generator=generator)  # (B, S)
        bits = torch.zeros(batch, S)
        bits[:, : min(S, CONTEXT)] = (coins[:, :CONTEXT] < 0.5).float()
        if S > CONTEXT:
            bits[:, CONTEXT:] = torch.from_numpy(follow_table(bits[:, :CONTEXT], coins[:, CONTEXT:],
                                                              table))
        out = empty_batch(batch, S, 1, 1)
        out["inputs"][:, :, 0] = bits
        out["targets"][:, :-1, 0] = bits[:, 1:]
        out["mask"][:, :-1] = True
        out["optimal"] = optimal_estimate(bits).unsqueeze(-1)  # (B, S, 1)
        return out

    def train_shape(self, generator: torch.Generator, fraction: float = 1.0) -> Shape:
        return {"length": self.train_length}

    def test_shapes(self) -> list[Shape]:
        return [{"length": S} for S in self.test_lengths]

    def label(self, shape: Shape) -> str:
        return f"len_{shape['length']:04d}"
