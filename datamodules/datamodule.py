"""One LightningDataModule for any task: which data, and which splits.

- train: an endless stream, seeded by the run's seed (and the DDP rank), a fresh shape per batch;
         with a curriculum of C updates, batch i draws from the training range with its top grown
         from the smallest shape to the largest over the first C batches (Task.train_shape);
- val:   a fixed set of shapes drawn from the training range;
- test:  one fixed set per generalization shape, so metrics are reported shape by shape.

Validation and test sets are seeded from the task name and split only, never from the run's seed,
so every run of a task is scored on the same sequences.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from .base import Batch, Shape, ShapeError, Task, require, stable_seed


def check_curriculum(task: Task, curriculum: int) -> int:
    """`curriculum` if `task` can take it (an integer >= 0, and > 0 only for a task whose training
    range can grow); else a one-line ShapeError naming the fix."""
    require("data", "curriculum", curriculum, 0)
    if curriculum and not task.grows:
        raise ShapeError(f"{task.name} trains on one shape, so a curriculum has nothing to grow; "
                         f"drop curriculum (or set it to 0)")
    return curriculum


class TrainStream(IterableDataset):
    """Endless batches of `task`. Batch i depends only on (task, seed, DDP rank, i, curriculum),
    so a resumed run continues with exactly the batches an uninterrupted run would have seen.
    `curriculum` > 0 grows the training range over that many batches (0: the full range from
    the start; from batch `curriculum - 1` on, every batch is the full range's)."""

    def __init__(self, task: Task, batch_size: int, seed: int, curriculum: int = 0) -> None:
        self.task, self.batch_size, self.seed = task, batch_size, seed
        self.curriculum = check_curriculum(task, curriculum)
        self.start = 0  # index of the next batch to draw; set when resuming

    def fraction(self, index: int) -> float:
        """How far batch `index` is through the curriculum: 1.0 once it is over (or without one)."""
        return min(1.0, (index + 1) / self.curriculum) if self.curriculum else 1.0

    def batch(self, index: int, rank: int = 0) -> Batch:
        generator = torch.Generator().manual_seed(
            stable_seed("train", self.task.name, self.seed, rank, index)
        )
        shape = self.task.train_shape(generator, self.fraction(index))
        return self.task.sample(generator, self.batch_size, **shape)

    def __iter__(self):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        index = self.start
        while True:
            yield self.batch(index, rank)
            index += 1


def fixed_set(task: Task, split: str, shapes: list[Shape], batch_size: int) -> list[Batch]:
    """One batch per shape, seeded by the task, split and shape label only."""
    out = []
    for index, shape in enumerate(shapes):
        generator = torch.Generator().manual_seed(stable_seed(task.name, split, index, task.label(shape)))
        out.append(task.sample(generator, batch_size, **shape))
    return out


def validation_shapes(task: Task, batches: int) -> list[Shape]:
    """`batches` shapes from the training range, from a generator fixed per task."""
    generator = torch.Generator().manual_seed(stable_seed(task.name, "val-shapes"))
    return [task.train_shape(generator) for _ in range(batches)]


class TaskDataModule(pl.LightningDataModule):
    def __init__(
        self,
        task: Task,
        batch_size: int = 16,
        seed: int = 0,
        val_batches: int = 10,
        val_batch_size: int = 100,
        test_batch_size: int = 100,
        curriculum: int = 0,
    ) -> None:
        super().__init__()
        for name, value in [
            ("batch_size", batch_size),
            ("val_batches", val_batches),
            ("val_batch_size", val_batch_size),
            ("test_batch_size", test_batch_size),
        ]:
            require("data", name, value, 1)
        self.task = task
        self.batch_size, self.seed = batch_size, seed
        self.val_batches, self.val_batch_size = val_batches, val_batch_size
        self.test_batch_size = test_batch_size
        self.stream = TrainStream(task, batch_size, seed, curriculum)
        self._val: list[Batch] | None = None
        self._test: dict[str, Batch] | None = None

    @property
    def test_labels(self) -> list[str]:
        return [self.task.label(shape) for shape in self.task.test_shapes()]

    def val_set(self) -> list[Batch]:
        if self._val is None:
            shapes = validation_shapes(self.task, self.val_batches)
            self._val = fixed_set(self.task, "val", shapes, self.val_batch_size)
        return self._val

    def test_sets(self) -> dict[str, Batch]:
        """Label -> the fixed test batch of that generalization shape."""
        if self._test is None:
            shapes = self.task.test_shapes()
            batches = fixed_set(self.task, "test", shapes, self.test_batch_size)
            self._test = {self.task.label(s): b for s, b in zip(shapes, batches)}
        return self._test

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.stream, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set(), batch_size=None)

    def test_dataloader(self) -> list[DataLoader]:
        return [DataLoader([b], batch_size=None) for b in self.test_sets().values()]

    def state_dict(self) -> dict:
        """Saved in checkpoints: where the training stream resumes."""
        trainer = getattr(self, "trainer", None)
        return {"next_batch": trainer.global_step if trainer is not None else self.stream.start}

    def load_state_dict(self, state: dict) -> None:
        self.stream.start = int(state["next_batch"])
