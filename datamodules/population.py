"""Data for a population (S members of one model trained as one, models/members.py): each member
keeps the training stream a solo run with its seed draws, and the members' batches of one step
share one batch, padded at the end to the longest.

    PopulationStream(task, batch_size, seeds=[0, 1, 2]).batch(i)
        -> {"inputs": (S, B, T, I), "targets": (S, B, T, O), "mask": (S, B, T)}
           member s's [s] = TrainStream(task, batch_size, seeds[s]).batch(i), padded to T

Validation and test sets do not depend on the seed (datamodule.py), so the members share them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .base import Batch, Task
from .datamodule import TaskDataModule, TrainStream


def pad_to_longest(batches: Sequence[Batch]) -> dict[str, Tensor]:
    """S members' batches (each inputs (B, T_s, I), targets (B, T_s, O), mask (B, T_s), and any
    other per-step tensors) as one (S, B, T, .) batch, T = max T_s: each padded at its end with
    zeros and mask False. Exact for causal networks: a padded step comes after every scored one
    and is itself not scored, so it adds nothing to the loss or to any gradient."""
    steps = max(b["inputs"].shape[1] for b in batches)

    def pad(t: Tensor) -> Tensor:
        extra = steps - t.shape[1]
        if extra == 0:
            return t
        tail = t.new_zeros(t.shape[0], extra, *t.shape[2:])  # (B, T - T_s, ...): zeros / False
        return torch.cat([t, tail], dim=1)

    return {key: torch.stack([pad(b[key]) for b in batches]) for key in batches[0]}  # (S, B, T, .)


class PopulationStream(TrainStream):
    """Endless population batches: batch i holds every member's solo batch i (its own seed);
    iterated, and resumed from `start`, as TrainStream is."""

    def __init__(self, task: Task, batch_size: int, seeds: Sequence[int],
                 curriculum: int = 0) -> None:
        super().__init__(task, batch_size, seeds[0], curriculum)
        self.members = [TrainStream(task, batch_size, seed, curriculum) for seed in seeds]

    def batch(self, index: int, rank: int = 0) -> dict[str, Tensor]:
        return pad_to_longest([member.batch(index, rank) for member in self.members])


class PopulationDataModule(TaskDataModule):
    """TaskDataModule's splits for S members: the training stream of each member's seed, the
    validation and test sets they share (and where the stream resumes, in checkpoints)."""

    def __init__(self, task: Task, seeds: Sequence[int], batch_size: int = 16,
                 val_batches: int = 10, val_batch_size: int = 100, test_batch_size: int = 100,
                 curriculum: int = 0) -> None:
        super().__init__(task, batch_size, seeds[0], val_batches, val_batch_size, test_batch_size,
                         curriculum)
        self.seeds = list(seeds)
        self.stream = PopulationStream(task, batch_size, self.seeds, curriculum)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.stream, batch_size=None)
