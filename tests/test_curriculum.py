"""A curriculum (`RunConfig.curriculum`): the training range grows over the first updates, then the
stream is exactly the one without a curriculum."""

from __future__ import annotations

import pytest
import torch

from core.config import RunConfig
from core.errors import ConfigError
from datamodules.base import ShapeError, grown
from datamodules.datamodule import TaskDataModule, TrainStream
from datamodules.population import PopulationStream
from datamodules.registry import build_task


def items(batch: dict) -> int:
    """Associative recall's item count K from a batch's length T = 4K + 8."""
    return (batch["inputs"].shape[-2] - 8) // 4


def test_grown_moves_the_top_from_low_to_high() -> None:
    fractions = (0.0, 0.1, 0.125, 0.375, 0.5, 0.9, 1.0, 1.5)
    assert [grown(2, 6, f) for f in fractions] == [2, 2, 2, 4, 4, 6, 6, 6]
    assert grown(1, 20, 0.5) == 11 and grown(1, 20, 0.05) == 2


def test_associative_recall_starts_on_two_items_and_reaches_six() -> None:
    stream = TrainStream(build_task("associative_recall"), 1, seed=0, curriculum=80)
    counts = [items(stream.batch(i)) for i in range(160)]
    assert set(counts[:5]) == {2}  # fraction <= 1/16: the top is 2 + round(4 * 0.0625) = 2
    assert max(counts[:35]) <= 4  # fraction <= 35/80: top 2 + round(1.75) = 4
    assert max(counts[80:]) == 6 and min(counts[80:]) == 2


def test_after_the_curriculum_the_stream_is_the_plain_one() -> None:
    task = build_task("copy")
    plain, grown_stream = TrainStream(task, 2, seed=3), TrainStream(task, 2, seed=3, curriculum=50)
    for index in (49, 50, 200):
        a, b = plain.batch(index), grown_stream.batch(index)
        assert all(torch.equal(a[k], b[k]) for k in a)
    early = grown_stream.batch(0)["mask"][0].sum().item()
    assert early == 1  # copy's top at fraction 1/50: 1 + round(19 / 50) = 1


def test_repeat_copy_grows_length_and_repeats() -> None:
    stream = TrainStream(build_task("repeat_copy"), 1, seed=0, curriculum=100)
    first = [stream.batch(i) for i in range(5)]
    # at fraction <= 0.05 both tops are 1 + round(9 * 0.05) = 1: one vector, repeated once
    assert all(b["mask"][0].sum().item() == 2 for b in first)  # 1 vector + the end marker step


def test_population_members_share_the_curriculum() -> None:
    task = build_task("associative_recall")
    together = PopulationStream(task, 1, seeds=[0, 5], curriculum=40).batch(2)
    for s, seed in enumerate([0, 5]):
        solo = TrainStream(task, 1, seed, curriculum=40).batch(2)
        assert items(solo) == 2
        assert torch.equal(together["inputs"][s, :, : solo["inputs"].shape[1]], solo["inputs"])


def test_the_datamodule_passes_it_on_and_validation_keeps_the_full_range() -> None:
    dm = TaskDataModule(build_task("associative_recall"), batch_size=1, curriculum=1000,
                        val_batches=20, val_batch_size=1)
    assert dm.stream.curriculum == 1000
    assert max(items(b) for b in dm.val_set()) == 6


@pytest.mark.parametrize("task", ["ngrams", "priority_sort"])
def test_a_task_with_one_training_shape_refuses_a_curriculum(task: str) -> None:
    with pytest.raises(ShapeError, match=f"^{task} trains on one shape.*drop curriculum"):
        TrainStream(build_task(task), 1, seed=0, curriculum=10)
    TrainStream(build_task(task), 1, seed=0, curriculum=0)  # no curriculum: fine


def test_bad_curriculum_values_are_one_line_errors() -> None:
    too_long = r"curriculum \(2000\) > max_steps \(1000\).*lower curriculum"
    with pytest.raises(ConfigError, match=too_long):
        RunConfig(curriculum=2000)
    with pytest.raises(ConfigError, match="curriculum"):
        RunConfig(curriculum=-1)
    assert RunConfig(curriculum=1000).curriculum == 1000


def test_a_refused_curriculum_writes_no_run_folder(tmp_path) -> None:
    from core.population import train_population
    from core.train import train

    solo = RunConfig(task="ngrams", curriculum=10, max_steps=20, val_every=10,
                     wandb_mode="disabled", out=str(tmp_path / "solo"))
    with pytest.raises(ShapeError, match="drop curriculum"):
        train(solo)
    members = [RunConfig(task="copy", seed=s, curriculum=c, max_steps=20, val_every=10,
                         wandb_mode="disabled", out=str(tmp_path / f"m{s}"))
               for s, c in ((0, 10), (1, 0))]
    with pytest.raises(ConfigError, match="these differ: curriculum"):
        train_population(members, tmp_path / "pop")
    assert list(tmp_path.iterdir()) == []
