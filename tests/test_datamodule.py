"""The DataModule's splits: seeded streams, fixed validation and test sets, resumable training."""

from __future__ import annotations

import itertools

import pytest
import torch

from datamodules.datamodule import TaskDataModule
from datamodules.registry import TASKS, build_task


def first_batches(dm: TaskDataModule, n: int) -> list[dict]:
    return list(itertools.islice(iter(dm.train_dataloader()), n))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", list(TASKS))
def test_val_and_test_sets_do_not_depend_on_the_training_seed(name: str) -> None:
    kw = dict(val_batches=3, val_batch_size=4, test_batch_size=3)
    a = TaskDataModule(build_task(name), seed=1, **kw)
    b = TaskDataModule(build_task(name), seed=2, **kw)
    assert all(same(x, y) for x, y in zip(a.val_set(), b.val_set(), strict=True))
    assert list(a.test_sets()) == list(b.test_sets())
    assert all(same(a.test_sets()[k], b.test_sets()[k]) for k in a.test_sets())


@pytest.mark.parametrize("name", list(TASKS))
def test_train_stream_is_seeded(name: str) -> None:
    a = first_batches(TaskDataModule(build_task(name), batch_size=2, seed=5), 3)
    b = first_batches(TaskDataModule(build_task(name), batch_size=2, seed=5), 3)
    c = first_batches(TaskDataModule(build_task(name), batch_size=2, seed=6), 3)
    assert all(same(x, y) for x, y in zip(a, b))
    assert not all(same(x, y) for x, y in zip(a, c))


def test_resumed_stream_continues_with_the_same_batches() -> None:
    full = first_batches(TaskDataModule(build_task("copy"), batch_size=3, seed=0), 6)
    dm = TaskDataModule(build_task("copy"), batch_size=3, seed=0)
    dm.load_state_dict({"next_batch": 4})
    assert all(same(x, y) for x, y in zip(first_batches(dm, 2), full[4:], strict=True))


def test_train_shapes_are_fresh_per_batch_and_in_range() -> None:
    dm = TaskDataModule(build_task("copy"), batch_size=1, seed=0)
    lengths = [b["mask"].sum().item() for b in first_batches(dm, 40)]
    assert min(lengths) >= 1 and max(lengths) <= 20 and len(set(lengths)) > 5


def test_validation_is_in_the_training_range_and_test_one_set_per_length() -> None:
    dm = TaskDataModule(build_task("copy"), val_batches=8, val_batch_size=2, test_batch_size=2)
    assert all(1 <= b["mask"][0].sum() <= 20 for b in dm.val_set())
    tests = dm.test_sets()
    assert list(tests) == ["len_030", "len_050", "len_080", "len_120"]
    assert [b["inputs"].shape[1] for b in tests.values()] == [61, 101, 161, 241]
    assert len(dm.test_dataloader()) == 4 and dm.test_labels == list(tests)


def test_ranges_and_test_lengths_are_configurable() -> None:
    task = build_task("copy", min_length=3, max_length=4, test_lengths=[7])
    dm = TaskDataModule(task, batch_size=2, val_batches=6, val_batch_size=1)
    assert {int(b["mask"][0].sum()) for b in dm.val_set()} <= {3, 4}
    assert {int(b["mask"][0].sum()) for b in first_batches(dm, 10)} == {3, 4}
    assert list(dm.test_sets()) == ["len_007"]
    rc = build_task("repeat_copy", test_pairs=[[2, 3]])
    assert rc.test_shapes() == [{"length": 2, "repeats": 3}]


def test_ngrams_validation_matches_the_paper_size_by_default() -> None:
    dm = TaskDataModule(build_task("ngrams"))
    assert sum(b["inputs"].shape[0] for b in dm.val_set()) == 1000
    assert all(b["inputs"].shape[1] == 200 for b in dm.val_set())
