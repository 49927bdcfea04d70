"""What a run's W&B record holds for comparing runs: the paper's x-axis and its summaries.

- `train/sequences` (sequences seen) is on every training row and, through `SequencesSeen`, on
  every validation row; `define_run_metrics` makes it the step metric of `train/*` and `val/*`,
  so W&B charts validation cost against sequences seen, as the paper's figures do.
- `val/cost_bits` and `val/bit_errors` keep their minimum in the summary.
- `converged_at_sequences`: sequences seen at the first validation with fewer than 0.1 bit errors
  per sequence (core/config.py's `CONVERGED_BELOW`, the report's and the bench's convergence
  point too), in the summary once reached; kept in checkpoints, so a resumed run keeps its first.

A population member's W&B logger (core/member_run.py) gets the same, under its solo names.

The console stays quiet: W&B's banner, warnings and summary block go to the run's own logs only,
and `close_run` prints one line per run instead: where its offline files are and the command
that uploads them (or, online, its URL). The mode is `RunConfig.wandb_mode` (offline, online or
disabled), else `WANDB_MODE`, else offline.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
import wandb
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from .config import CONVERGED_BELOW
from .console import say

SEQUENCES = "train/sequences"


@dataclass(frozen=True)
class Filing:
    """Where a run is filed in W&B: group `<collection>/<task>/<model>`, so that W&B's grouped
    runs are one experiment's seeds (collection: a plan and its version such as `paper-v4`, a
    study, a population's folder; none: `<task>/<model>`), its job type (train, trial), tags
    beside its task and model, and config beside its RunConfig (e.g. the plan)."""

    collection: str = ""
    job_type: str = "train"
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)

    def group(self, task: str, model: str) -> str:
        return "/".join(part for part in (self.collection, task, model) if part)


@cache
def git_commit() -> str:
    """The project's commit ("" outside a git checkout), so a run names the code it ran."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def wandb_mode(configured: str | None) -> str:
    """The mode a run logs in: `configured`, else WANDB_MODE (its old names too), else offline."""
    mode = configured or os.environ.get("WANDB_MODE") or "offline"
    return {"dryrun": "offline", "run": "online"}.get(mode, mode)


def init_options(mode: str | None, entity: str = "") -> dict[str, Any]:
    """wandb.init's mode, entity and a silent console (what `close_run` prints instead)."""
    return {"mode": wandb_mode(mode), "entity": entity or None, "settings": wandb.Settings(silent=True)}


def close_run(run: Any, exit_code: int = 0) -> None:
    """Finish `run` and say in one line where it went."""
    offline, disabled = run.offline, run.disabled
    folder = Path(run.dir).parent  # .../wandb/offline-run-<time>-<id>
    url = None if offline or disabled else run.url
    run.finish(exit_code=exit_code)
    if offline:
        say(f"W&B: offline run {folder}; upload it with: wandb sync {folder}")
    elif url:
        say(f"W&B: {url}")


def log_checkpoints(run: Any, run_dir: Path, log_model: str, tested: str) -> None:
    """The run's model artifact (`model-<run id>`, type model): with log_model "best", the
    checkpoint tested (`tested`: "best" or "last"); with "all", both checkpoints the run keeps
    (last.ckpt and, if written, best.ckpt); "none": nothing. Offline, it is stored with the
    offline run and uploaded by `wandb sync`."""
    names = {"best": [tested], "all": ["last", "best"], "none": []}[log_model]
    files = [run_dir / "checkpoints" / f"{name}.ckpt" for name in names]
    files = [f for f in files if f.is_file()]
    if not files or run.disabled:
        return
    artifact = wandb.Artifact(f"model-{run.id}", type="model",
                              metadata={"checkpoints": [f.stem for f in files], "tested": tested})
    for f in files:
        artifact.add_file(str(f), name=f.name)
    run.log_artifact(artifact, aliases=["latest", *(f.stem for f in files)])


def log_test_table(run: Any, rows: pd.DataFrame, task: Any, checkpoint: str) -> None:
    """The per-shape test results (`core/evaluate.py: shape_rows`) as one wandb.Table, with the
    shape's size (the task's `size`) and the checkpoint tested ("best" or "last"), and line plots
    of cost and bit errors against the size."""
    frame = rows.assign(size=[task.size(row) for row in rows.to_dict("records")], checkpoint=checkpoint)
    table = wandb.Table(dataframe=frame)
    plots = {f"test/{metric}_vs_size": wandb.plot.line(table, "size", metric,
                                                       title=f"test {metric} vs {task.size_axis}")
             for metric in ("cost_bits", "bit_errors")}
    run.log({"test/results": table, **plots})


def define_run_metrics(run: Any) -> None:
    """The x-axis and summaries of a run's metrics (after Lightning's own `trainer/global_step`)."""
    run.define_metric(SEQUENCES)
    for pattern in ("train/*", "val/*"):
        run.define_metric(pattern, step_metric=SEQUENCES, step_sync=True)
    for name in ("val/cost_bits", "val/bit_errors"):
        run.define_metric(name, step_metric=SEQUENCES, step_sync=True, summary="min")


class RunWandbLogger(WandbLogger):
    """Lightning's WandbLogger with `define_run_metrics` on the run it opens (`_open`, which a
    population member's logger replaces)."""

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            if self._wandb_init.get("anonymous") is None:  # W&B warns about the key, even unset
                self._wandb_init.pop("anonymous", None)
            define_run_metrics(self._open())
        return self._experiment

    def _open(self) -> Any:
        """Open the run as Lightning does (its x-axis `trainer/global_step` included)."""
        return super().experiment


def finish_run(run: Any, rows: pd.DataFrame, task: Any, run_dir: Path, log_model: str,
               tested: str) -> None:
    """A run's end in W&B: its test table, its model artifact, then `close_run`."""
    log_test_table(run, rows, task, tested)
    log_checkpoints(run, run_dir, log_model, tested)
    close_run(run)


class SequencesSeen(pl.Callback):
    """At every validation: `train/sequences` on the validation row, and each W&B run's
    `converged_at_sequences` once its `val/bit_errors` is below CONVERGED_BELOW (a population
    member's W&B logger, with `member` s, reads `val/m<s>/bit_errors`)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.converged: dict[str, float] = {}  # "run" or "m<s>" -> sequences seen then

    def sequences(self, trainer: pl.Trainer) -> float:
        return float(trainer.global_step * self.batch_size * trainer.world_size)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log(SEQUENCES, self.sequences(trainer), logger=True, prog_bar=False)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        stopped = getattr(pl_module, "stopped", {})  # a population's stopped members
        for logger in trainer.loggers:
            member = getattr(logger, "member", None)
            if not isinstance(logger, WandbLogger) or member in stopped:
                continue
            who = "run" if member is None else f"m{member}"
            errors = trainer.callback_metrics.get(
                "val/bit_errors" if member is None else f"val/m{member}/bit_errors")
            if who not in self.converged and errors is not None and float(errors) < CONVERGED_BELOW:
                self.converged[who] = self.sequences(trainer)
            if who in self.converged:
                logger.experiment.summary["converged_at_sequences"] = self.converged[who]

    def state_dict(self) -> dict:
        return {"converged": dict(self.converged)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.converged = dict(state_dict.get("converged", {}))

    @staticmethod
    def member_state(state: dict, s: int) -> dict:
        """Member s's part of a population's `state_dict`, as its solo run's callback keeps it."""
        converged = state.get("converged", {})
        return {"converged": {"run": converged[f"m{s}"]} if f"m{s}" in converged else {}}
