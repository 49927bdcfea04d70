"""One trial: sample, build the RunConfig (`trial_config`), train it as a full run (`train_trial`;
or as a member of a population, sweeps/population.py), and tell Optuna how it ended.

Every trial ends in the storage as one of
    COMPLETE  value = the best `metric` of its validations (the lowest when minimizing): the
              validation point `test_on: best` tests, so a spike at the last validation does not
              decide a trial (the pruner still sees every running value)
    PRUNED    stopped by the pruner at a validation; value = the last reported one
    FAIL      with user attrs `fail_kind` and `fail_reason`:
              diverged     the loss (or the metric) turned non-finite
              invalid      this combination of sampled values cannot be built
              error        an unexpected exception (the worker stops and shows it)
              interrupted  Ctrl-C, or (set later by another process) its worker died
              surplus      other workers had already claimed the whole budget
Diverged and invalid trials count toward the trial budget (they were judged); the others do not,
so a rerun replaces them.
"""

from __future__ import annotations

import math
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import wandb
from lightning.pytorch.loggers import WandbLogger
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from core.config import RunConfig
from core.errors import ConfigError, OptionError, ShapeError, first_line
from core.footprint import check_fits
from core.train import RunResult, train
from core.wandb_run import Filing, close_run
from datamodules.registry import build_task
from models.registry import build_model
from models.system import NonFiniteLossError

from .spec import SweepSpec

COUNTED_FAILS = ("diverged", "invalid")


def best_value(values: list[float], direction: str) -> float | None:
    """The best finite one of `values` (None if there is none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if direction == "minimize" else max(finite)


class StepPruning(PyTorchLightningPruningCallback):
    """optuna_integration's Lightning pruning callback, reporting at the training step.

    The stock callback reports at `current_epoch`; a run here is one endless epoch (steps, not
    epochs), so every report would land on step 0 and Optuna would keep only the first. Reporting
    at `global_step` gives pruners the curve, and their `n_warmup_steps` / `interval_steps` count
    training steps. Sweeps run one process per trial, so the DDP branch is not needed.

    It also keeps every validation's value: `best` is the trial's objective."""

    def __init__(self, trial: optuna.Trial, monitor: str, direction: str = "minimize") -> None:
        super().__init__(trial, monitor=monitor)
        self.direction = direction
        self.values: list[float] = []

    @property
    def best(self) -> float | None:
        """The best finite value of `monitor` over the validations so far (None before any)."""
        return best_value(self.values, self.direction)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return super().on_validation_end(trainer, pl_module)  # warns about a missing metric
        score = float(trainer.callback_metrics[self.monitor])
        step = trainer.global_step
        self.values.append(score)
        self._trial.report(score, step=step)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.monitor} = {score:.4g})")


class TrialToWandb(pl.Callback):
    """Files the trial in its W&B run: the trial number in the config, the outcome in the summary
    (`trial/value`: the trial's objective, the best validation value that `pruning` kept)."""

    def __init__(self, study: str, number: int, pruning: StepPruning) -> None:
        self.study, self.number, self.pruning = study, number, pruning

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"trial": self.number, "study": self.study},
                                                allow_val_change=True)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = self.pruning.best
        state = "complete" if value is not None else "failed"
        if wandb.run is not None:
            wandb.run.summary.update({"trial/state": state, "trial/number": self.number,
                                      "trial/value": value})


@dataclass
class Outcome:
    state: TrialState
    value: float | None = None
    kind: str = ""  # for FAIL: diverged, invalid, error, interrupted, surplus
    reason: str = ""

    @property
    def label(self) -> str:
        """The trial's state as its W&B summary names it: complete, pruned or failed."""
        return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(self.state, "failed")

    def describe(self, metric: str) -> str:
        if self.state == TrialState.COMPLETE:
            return f"complete: {metric} = {self.value:.4g}"
        if self.state == TrialState.PRUNED:
            return f"pruned ({self.reason})"
        return f"failed, {self.kind}: {self.reason}"


def worker_identity() -> dict[str, Any]:
    """Who runs a trial: enough for a later process to tell whether that worker is still alive.
    Host name and boot id together name one machine (or container) even where host names repeat."""
    return {"host": socket.gethostname(), "boot": boot_id(), "pid": os.getpid(),
            "started": process_start(os.getpid())}


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' if unknown): with the pid, it tells a
    live worker from a new process that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def worker_alive(worker: dict[str, Any]) -> bool | None:
    """True or False for a worker on this host; None (unknown) for one on another machine."""
    if worker.get("host") != socket.gethostname() or worker.get("boot", "") != boot_id():
        return None
    pid = int(worker.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = worker.get("started")
    return not started or process_start(pid) in ("", started)


class Heartbeat:
    """Records the trials' heartbeats in the storage while they run (what Optuna's optimize() does;
    this sweep uses ask/tell to count its budget exactly), so a trial whose worker died on another
    machine is failed after the grace period."""

    def __init__(self, storage: optuna.storages.RDBStorage, *trial_ids: int) -> None:
        self.storage, self.trial_ids = storage, trial_ids
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval() or 60
        while True:
            for trial_id in self.trial_ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a storage hiccup must not kill the trial; the next beat retries
                    pass
            if self.stop.wait(interval):
                return

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def trial_config(spec: SweepSpec, study: optuna.Study, trial: optuna.Trial,
                 sweep_dir: Path) -> RunConfig | Outcome:
    """The trial's sampled values put into its RunConfig, checked buildable; an invalid
    combination is told to the study here (its Outcome is returned instead)."""
    study.sampler = spec.sampler_for(trial.number)
    run_dir = sweep_dir / f"trial_{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    try:
        cfg = spec.trial_config(spec.suggest(trial), run_dir)
        check_buildable(cfg)
    except (ConfigError, OptionError, ShapeError) as error:
        return finish(study, trial, Outcome(TrialState.FAIL, kind="invalid", reason=first_line(error)))
    if run_dir.exists():  # trial numbers are never reused, so this folder is another study's
        error = ConfigError(f"{run_dir} already exists: it belongs to another study; delete it")
        finish(study, trial, Outcome(TrialState.FAIL, kind="error", reason=str(error)))
        raise error
    return cfg


def train_trial(spec: SweepSpec, study: optuna.Study, trial: optuna.Trial,
                cfg: RunConfig) -> Outcome:
    """Train one trial alone (a Lightning run with the pruning callback) and record how it ended."""
    def failed(kind: str, reason: str) -> Outcome:
        return finish(study, trial, Outcome(TrialState.FAIL, kind=kind, reason=reason))

    pruning = StepPruning(trial, monitor=spec.metric, direction=spec.direction)
    callbacks = [pruning, TrialToWandb(study.study_name, trial.number, pruning)]
    try:
        result = train(cfg, callbacks=callbacks, filing=trial_filing(study.study_name))
    except optuna.TrialPruned as pruned:
        return finish(study, trial, Outcome(TrialState.PRUNED, reason=str(pruned)))
    except NonFiniteLossError as error:
        return failed("diverged", first_line(error))
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
        failed("interrupted", "interrupted (Ctrl-C)")
        raise
    except BaseException as error:
        failed("error", f"{type(error).__name__}: {first_line(error)}")
        raise
    return finish(study, trial, trained_outcome(spec, trial, result, pruning.best))


def trial_filing(study: str) -> Filing:
    """A study's trials in W&B: group `<study>/<task>/<model>`, job type trial."""
    return Filing(collection=study, job_type="trial", tags=("sweep", study))


def trained_outcome(spec: SweepSpec, trial: optuna.Trial, result: RunResult,
                    best: float | None) -> Outcome:
    """How a trial that trained to its end went: COMPLETE with `best` (the best validation value:
    what `test_on: best` tests), its test costs kept on the trial; FAIL if the metric is missing
    or non-finite."""
    last = result.metrics.get(spec.metric)
    if last is None:
        return Outcome(TrialState.FAIL, kind="invalid", reason=f"{spec.metric} was never logged")
    if not math.isfinite(last) or best is None:
        return Outcome(TrialState.FAIL, kind="diverged", reason=f"{spec.metric} = {last}")
    trial.set_user_attr("test_cost_bits", {row["label"]: float(row["cost_bits"])
                                           for _, row in result.test.iterrows()})
    return Outcome(TrialState.COMPLETE, value=float(best))


def check_buildable(cfg: Any) -> None:
    """Build the task and model (cheap) so a bad combination is told apart from a training error."""
    resolved = cfg.resolved()
    check_fits(resolved)  # a size that cannot fit this machine is invalid, not an error
    task = build_task(resolved.task, **resolved.task_options)
    build_model(resolved.model, task.input_size, task.output_size, **resolved.model_options)


def finish(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> Outcome:
    """Close the trial's W&B run (if the trial got that far) and tell the study."""
    if wandb.run is not None:
        wandb.run.summary.update({"trial/state": outcome.label, "trial/number": trial.number,
                                  "trial/reason": outcome.reason or None})
        close_run(wandb.run, exit_code=1 if outcome.state == TrialState.FAIL else 0)
    return tell(study, trial, outcome)


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> Outcome:
    """Tell the study how the trial ended (its W&B run is the caller's)."""
    try:
        if outcome.state == TrialState.FAIL:
            trial.set_user_attr("fail_kind", outcome.kind)
            trial.set_user_attr("fail_reason", outcome.reason)
            study.tell(trial, state=TrialState.FAIL)
        elif outcome.state == TrialState.PRUNED:
            trial.set_user_attr("pruned_reason", outcome.reason)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, outcome.value)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        # another process failed it meanwhile (its heartbeat went missing for the grace period)
        if not any(t.number == trial.number and t.state.is_finished()
                   for t in study.get_trials(deepcopy=False)):
            raise
        print(f"trial {trial.number} was already marked failed by another process; its outcome "
              f"({outcome.describe('value')}) is kept only in its run folder", flush=True)
    return outcome
