"""Sweep trials trained as one population (`ntmbench sweep ... --population K`).

A worker claims K trials at once (sweeps/study.py: `claim_batch`). The first samples every value;
the others are enqueued with its structural values fixed (`structural_params`: everything but the
per-member values, learning rate, momentum and seed), so Optuna samples only their per-member
values. Trials whose configs then differ only in per-member values train as one population
(core/population.py); each is still its own Optuna trial with its own folder `trial_<n>/`
(exactly a solo trial's, plus `stopped.txt` if it was pruned or diverged) and its own W&B run in
the study's group, and the pruner stops one member, not the population:

    OUT/STUDY/trial_0004/ ... trial_0007/   the trials' folders
    OUT/STUDY/populations/trial_0004/       the population's record and last checkpoint

A trial that shares its structure with no other claimed one trains alone, as without --population.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
from optuna.trial import TrialState

from core.config import RunConfig
from core.errors import ConfigError, first_line
from core.footprint import check_fits
from core.member_run import MemberWandbLogger
from core.population import train_population
from models.population_system import PER_MEMBER, PopulationSystem
from models.system import NonFiniteLossError

from .spec import SweepSpec
from .trial import (Outcome, best_value, tell, train_trial, trained_outcome, trial_config,
                    trial_filing)


def structural_params(params: dict[str, Any]) -> dict[str, Any]:
    """The sampled values a population's members must share: all but the per-member ones."""
    return {name: value for name, value in params.items() if name not in PER_MEMBER}


def structure(cfg: RunConfig) -> str:
    """Configs with equal structures may train as one population."""
    return json.dumps({k: v for k, v in cfg.to_dict().items() if k not in PER_MEMBER},
                      sort_keys=True, default=str)


def member_key(metric: str, s: int) -> str:
    """`val/cost_bits` as the population logs it for member s: `val/m<s>/cost_bits`."""
    stage, _, name = metric.partition("/")
    return f"{stage}/m{s}/{name}"


class MemberTrials(pl.Callback):
    """Each member's Optuna trial and W&B run, as StepPruning and TrialToWandb keep a solo trial's:
    every validation reported to the member's trial at the training step (the member pruned
    alone when its trial should be), its best value kept (the trial's objective), the trial
    number in its W&B config and the outcome in its W&B summary."""

    def __init__(self, study: str, trials: Sequence[optuna.Trial], metric: str, direction: str) -> None:
        self.study, self.trials, self.metric, self.direction = study, list(trials), metric, direction
        self.values: list[list[float]] = [[] for _ in self.trials]
        self.labelled: set[int] = set()

    def best(self, s: int) -> float | None:
        return best_value(self.values[s], self.direction)

    def _runs(self, trainer: pl.Trainer) -> dict[int, Any]:
        return {logger.member: logger.experiment for logger in trainer.loggers
                if isinstance(logger, MemberWandbLogger)}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: PopulationSystem) -> None:
        for s, run in self._runs(trainer).items():
            run.config.update({"trial": self.trials[s].number, "study": self.study},
                              allow_val_change=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: PopulationSystem) -> None:
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        for s in pl_module.running():
            key = member_key(self.metric, s)
            if key not in trainer.callback_metrics:
                continue
            score = float(trainer.callback_metrics[key])
            self.values[s].append(score)
            self.trials[s].report(score, step=step)
            if self.trials[s].should_prune():
                pl_module.prune(s, f"pruned at step {step} ({self.metric} = {score:.4g})")

    def _label_stopped(self, trainer: pl.Trainer, system: PopulationSystem) -> None:
        runs = self._runs(trainer)
        for s, why in system.stopped.items():
            if s not in self.labelled:
                self.labelled.add(s)
                runs[s].summary.update({"trial/state": "pruned" if s in system.pruned else "failed",
                                        "trial/number": self.trials[s].number, "trial/reason": why})

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: PopulationSystem, *args) -> None:
        self._label_stopped(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: PopulationSystem, exception) -> None:
        self._label_stopped(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: PopulationSystem) -> None:
        self._label_stopped(trainer, pl_module)
        runs = self._runs(trainer)
        for s in pl_module.running():
            value = self.best(s)
            runs[s].summary.update({"trial/state": "complete" if value is not None else "failed",
                                    "trial/number": self.trials[s].number, "trial/value": value})


def run_trials(spec: SweepSpec, study: optuna.Study, trials: Sequence[optuna.Trial],
               sweep_dir: Path) -> list[Outcome]:
    """The claimed trials, each told to the study: invalid ones at once, those that share a
    structure (and fit in memory together) as one population, the rest alone."""
    outcomes: dict[int, Outcome] = {}
    groups: dict[str, list[tuple[optuna.Trial, RunConfig]]] = {}
    for trial in trials:
        cfg = trial_config(spec, study, trial, sweep_dir)
        if isinstance(cfg, Outcome):
            outcomes[trial.number] = cfg
        else:
            groups.setdefault(structure(cfg), []).append((trial, cfg))
    for group in groups.values():
        if len(group) > 1 and fits_together([cfg for _, cfg in group]):
            for (trial, _), outcome in zip(group, run_population(spec, study, group, sweep_dir)):
                outcomes[trial.number] = outcome
        else:
            for trial, cfg in group:
                outcomes[trial.number] = train_trial(spec, study, trial, cfg)
    return [outcomes[trial.number] for trial in trials]


def fits_together(cfgs: list[RunConfig]) -> bool:
    first = cfgs[0].resolved()
    try:
        check_fits(dataclasses.replace(first, batch_size=first.batch_size * len(cfgs)))
    except ConfigError:
        return False
    return True


def run_population(spec: SweepSpec, study: optuna.Study,
                   members: list[tuple[optuna.Trial, RunConfig]], sweep_dir: Path) -> list[Outcome]:
    """Train the members as one population; tell each trial how it ended."""
    trials = [trial for trial, _ in members]
    cfgs = [cfg for _, cfg in members]
    population_dir = sweep_dir / "populations" / f"trial_{trials[0].number:04d}"
    for trial in trials:
        trial.set_user_attr("population", str(population_dir))
    callback = MemberTrials(study.study_name, trials, spec.metric, spec.direction)

    def every(kind: str, reasons: Sequence[str]) -> list[Outcome]:
        return [tell(study, trial, Outcome(TrialState.FAIL, kind=kind, reason=reason))
                for trial, reason in zip(trials, reasons)]

    try:
        results = train_population(cfgs, population_dir, callbacks=[callback],
                                   filing=trial_filing(study.study_name))
    except NonFiniteLossError as error:  # every member diverged; each says why in its folder
        return every("diverged", [stopped_reason(cfg, error) for cfg in cfgs])
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
        every("interrupted", ["interrupted (Ctrl-C)"] * len(trials))
        raise
    except BaseException as error:
        every("error", [f"{type(error).__name__}: {first_line(error)}"] * len(trials))
        raise
    outcomes = []
    for s, (trial, result) in enumerate(zip(trials, results)):
        if result.pruned:
            outcome = Outcome(TrialState.PRUNED, reason=result.stopped)
        elif result.stopped:
            outcome = Outcome(TrialState.FAIL, kind="diverged", reason=result.stopped)
        else:
            outcome = trained_outcome(spec, trial, result, callback.best(s))
        outcomes.append(tell(study, trial, outcome))
    return outcomes


def stopped_reason(cfg: RunConfig, error: BaseException) -> str:
    path = cfg.run_dir / "stopped.txt"
    return path.read_text().strip() if path.exists() else first_line(error)
