"""A population member's run folder, written exactly as its solo run would write it.

The population logs every member's metrics under `stage/m<s>/...` (models/population_system.py);
member s's loggers keep its own under the solo names and the shared ones (`train/sequences`,
`val/wall_s`, `epoch`), and nothing once the member has stopped:

    solo_metrics({"train/m1/cost_bits": 3.0, "train/m0/cost_bits": 2.0, "train/sequences": 32.0}, 1)
        -> {"train/cost_bits": 3.0, "train/sequences": 32.0}

Its checkpoints are solo checkpoints (`member_checkpoint`): SequenceSystem's weights, optimizer
state and config, the DataModule's and the callbacks' state under a solo run's names, so that
`evaluate`, `predict`, `report` and a solo resume read them as a solo run's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

import lightning.pytorch as pl
import wandb
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only

from datamodules.datamodule import TaskDataModule
from datamodules.population import PopulationDataModule
from models.population_system import PopulationSystem

from .hardware import WallClock
from .wandb_run import RunWandbLogger, SequencesSeen

MEMBER_KEY = re.compile(r"^([^/]+)/m(\d+)/(.+)$")  # "train/m3/cost_bits": stage, member, metric


def solo_metrics(metrics: dict[str, Any], member: int) -> dict[str, Any]:
    """Member `member`'s metrics under their solo names, with the members' shared ones."""
    out = {}
    for key, value in metrics.items():
        match = MEMBER_KEY.match(key)
        if match is None:
            out[key] = value
        elif int(match[2]) == member:
            out[f"{match[1]}/{match[3]}"] = value
    return out


class MemberMetrics:
    """Mixed into a Lightning logger: it logs member `member`'s metrics only, under solo names,
    until `stopped()` holds the member."""

    def __init__(self, *args, member: int, stopped: Callable[[], Collection[int]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.member, self.stopped = member, stopped

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.member not in self.stopped():
            super().log_metrics(solo_metrics(metrics, self.member), step)


class MemberCSVLogger(MemberMetrics, CSVLogger):
    pass


class MemberWandbLogger(MemberMetrics, RunWandbLogger):
    """One W&B run per member, open beside its siblings' in this process (`reinit="create_new"`:
    Lightning's WandbLogger would reuse the run already open)."""

    def _open(self):
        self._experiment = wandb.init(**self._wandb_init, reinit="create_new")
        # Lightning's default x-axis, as WandbLogger defines it for the runs it creates
        self._experiment.define_metric("trainer/global_step")
        self._experiment.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        return self._experiment


def member_checkpoint(population: dict[str, Any], system: PopulationSystem, s: int,
                      best: ModelCheckpoint | None, solo_best_key: str | None) -> dict[str, Any]:
    """Member s's solo checkpoint from the population's checkpoint dict (Lightning's, as
    Trainer.save_checkpoint builds it): cut to member s (`PopulationSystem.member_checkpoint`),
    its DataModule state under TaskDataModule's name and its callbacks' state under a solo run's
    names (its wall clock; its best checkpoint's record, monitoring `val/cost_bits`, when it keeps
    one)."""
    member = system.member_checkpoint(population, s)
    member[TaskDataModule.__qualname__] = member.pop(PopulationDataModule.__qualname__)
    callbacks = {}
    for key, state in population.get("callbacks", {}).items():
        if key == WallClock.__qualname__:
            callbacks[key] = state
        elif key == SequencesSeen.__qualname__:
            callbacks[key] = SequencesSeen.member_state(state, s)
    if best is not None and solo_best_key is not None:
        callbacks[solo_best_key] = {**best.state_dict(), "monitor": "val/cost_bits"}
    member["callbacks"] = callbacks
    return member


class MemberBest(ModelCheckpoint):
    """Member s's checkpoints/best.ckpt: Lightning's ModelCheckpoint on `val/m<s>/cost_bits`,
    writing the member's solo checkpoint instead of the population's; none after it stopped."""

    def __init__(self, member: int, solo_key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.member, self.solo_key = member, solo_key

    def on_validation_end(self, trainer: pl.Trainer, pl_module: PopulationSystem) -> None:
        if self.member not in pl_module.stopped:
            super().on_validation_end(trainer, pl_module)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # ModelCheckpoint's own writer saves the whole population; this one saves the member
        population = trainer._checkpoint_connector.dump_checkpoint()  # Lightning's dict, unwritten
        checkpoint = member_checkpoint(population, trainer.lightning_module, self.member, self,
                                       self.solo_key)
        trainer.strategy.save_checkpoint(checkpoint, filepath)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
