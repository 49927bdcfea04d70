"""Training a population: S members of one model (one per seed, or per sweep trial's learning
rate) as one batched run (models/population_system.py), each member writing the run folder its
solo run writes (core/train.py), and the population keeping what it needs to resume:

    POP/population.yaml        the members' folders, in member order
    POP/last.ckpt              every member's weights, optimizer state and stream position: what
                               a rerun of the same command resumes from (after a kill, too)
    MEMBER/                    exactly a solo run's folder: config.yaml (its own seed),
                               checkpoints/last.ckpt and best.ckpt (solo checkpoints), csv/,
                               wandb/ (its own W&B run, grouped with its siblings'),
                               test_metrics.csv, hardware.json
    MEMBER/stopped.txt         only for a member whose loss or gradient turned non-finite: why;
                               the other members went on

`ntmbench train --seeds 0,1,2 --out DIR` puts the population in DIR/population and the members in
DIR/seed0, DIR/seed1, DIR/seed2 (`population_configs`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
import torch
import yaml

from datamodules.datamodule import check_curriculum
from datamodules.population import PopulationDataModule
from models.population_system import PopulationSystem
from models.registry import parameter_count
from models.system import NonFiniteLossError

from .config import RunConfig, load_yaml_file
from .errors import ConfigError
from .evaluate import shape_rows
from .files import write_csv, write_text
from .footprint import check_fits
from .console import RunProgressBar, progress_position, run_bars, say, start_line
from .hardware import WallClock, record_hardware
from .member_run import (MemberBest, MemberCSVLogger, MemberWandbLogger, member_checkpoint,
                         solo_metrics)
from .run_dir import RunLock, claim_config, unique_run_dir
from .train import (LastCheckpoint, RunResult, best_checkpoint, checkpoint_step, csv_logger,
                    trainer_for, wandb_logger)
from .wandb_run import Filing, SequencesSeen, close_run, finish_run


def population_configs(cfg: RunConfig, seeds: Sequence[int]) -> tuple[Path, list[RunConfig]]:
    """`train --seeds`: the population folder and one config per seed, member s in OUT/seed<s>
    (OUT: `cfg.out`, or a unique runs/<task>-<model>-seeds<0-1-2>-<time>-<id>)."""
    out = Path(cfg.out) if cfg.out else unique_run_dir(cfg, seeds=seeds)
    members = [cfg.replace(seed=seed, out=str(out / f"seed{seed}")) for seed in seeds]
    return out / "population", members


class PopulationCheckpoint(LastCheckpoint):
    """LastCheckpoint for a population: at each of its moments, every running member's solo
    last.ckpt, then the population's own (so the population's is never ahead of a member's)."""

    def __init__(self, path: Path, every: int, val_every: int, members: list[Path],
                 bests: list[MemberBest | None], solo_key: str | None) -> None:
        super().__init__(path, every, val_every)
        self.members, self.bests, self.solo_key = members, bests, solo_key

    def write(self, trainer: pl.Trainer) -> None:
        system = trainer.lightning_module
        # Lightning's checkpoint dict, built once, as Trainer.save_checkpoint builds it
        population = trainer._checkpoint_connector.dump_checkpoint()
        for s in system.running():
            checkpoint = member_checkpoint(population, system, s, self.bests[s], self.solo_key)
            trainer.strategy.save_checkpoint(checkpoint, self.members[s])
        trainer.strategy.save_checkpoint(population, self.path)


class MemberStops(pl.Callback):
    """A member that stopped (PopulationSystem.stopped) says so: MEMBER/stopped.txt, one line
    on the console, and its W&B run closed (as failed if it diverged; a pruned one is not a
    failure); the others go on. It comes after the caller's callbacks, which therefore see a
    member's stop (at the batch's end, the fit's end, or an exception) while its W&B run is open."""

    def __init__(self, configs: list[RunConfig], wandb_loggers: list[MemberWandbLogger]) -> None:
        self.configs, self.wandb_loggers = configs, wandb_loggers
        self.told: set[int] = set()

    def tell(self, system: PopulationSystem) -> None:
        for s, why in system.stopped.items():
            if s in self.told:
                continue
            self.told.add(s)
            run_dir = self.configs[s].run_dir
            write_text(run_dir / "stopped.txt", why + "\n")
            running = len(system.running())
            print(f"{run_dir}: stopped: {why}" + (f" ({running} other member(s) go on)"
                                                  if running else ""), flush=True)
            logger = self.wandb_loggers[s]
            if logger._experiment is not None:  # only a run that was opened
                close_run(logger.experiment, exit_code=0 if s in system.pruned else 1)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: PopulationSystem, *args) -> None:
        self.tell(pl_module)


def train_population(cfgs: Sequence[RunConfig], population_dir: Path,
                     callbacks: Sequence[pl.Callback] = (), filing: Filing = Filing()) -> list[RunResult]:
    """Train (or resume) the members `cfgs` (one structure; their seeds, learning rates, momenta
    and folders may differ) as one population kept in `population_dir`, then test each member
    per shape. A member that stopped gets a RunResult with `stopped` (and `pruned`) set and no
    test."""
    cfgs = [cfg.resolved() for cfg in cfgs]
    folders = [cfg.run_dir.resolve() for cfg in cfgs]
    if not all(cfg.out for cfg in cfgs) or len(set(folders)) != len(folders):
        raise ConfigError("every member of a population needs a folder of its own (out)")
    if any(cfg.devices > 1 for cfg in cfgs):
        raise ConfigError("a population trains on one device; give --devices 1, or train the "
                          "seeds one at a time (without --seeds)")
    first = cfgs[0]
    check_fits(dataclasses.replace(first, batch_size=first.batch_size * len(cfgs)))
    try:
        system = PopulationSystem([cfg.to_dict() for cfg in cfgs])
    except ValueError as error:  # members that differ in structure
        raise ConfigError(str(error)) from None
    check_curriculum(system.task, first.curriculum)  # before any file is written
    _check(population_dir, cfgs)
    locks = [RunLock(population_dir), *(RunLock(cfg.run_dir) for cfg in cfgs)]
    try:
        _claim(population_dir, cfgs)
        return _fit_and_test(cfgs, population_dir, system, callbacks, filing)
    finally:
        for lock in locks:
            lock.release()


def _check(population_dir: Path, cfgs: list[RunConfig]) -> None:
    """Before anything is written: POP/population.yaml, if there, names these members (a rerun
    must name the same ones), and no member folder holds a checkpoint the population did not
    write (a solo run's), which would be overwritten."""
    record = population_dir / "population.yaml"
    if record.exists():
        previous = load_yaml_file(record, "population record")
        previous = previous if isinstance(previous, dict) else {}
        if previous.get("members") != [str(cfg.run_dir) for cfg in cfgs]:
            raise ConfigError(f"{population_dir} holds a population of other members "
                              f"({', '.join(previous.get('members') or [])}); choose another --out")
        return
    for cfg in cfgs:
        if (cfg.run_dir / "checkpoints" / "last.ckpt").exists():
            raise ConfigError(f"{cfg.run_dir} holds a run trained outside this population; resume "
                              f"it alone (ntmbench train --out {cfg.run_dir} ...) or choose another --out")


def _claim(population_dir: Path, cfgs: list[RunConfig]) -> None:
    """Every member's config.yaml checked (a resume: the same run) before any is written, then
    written, then POP/population.yaml."""
    for cfg in cfgs:
        claim_config(cfg, write=False)  # raises for a folder of another run, before any write
    for cfg in cfgs:
        claim_config(cfg, write=True)
    record = population_dir / "population.yaml"
    if not record.exists():
        write_text(record, yaml.safe_dump({"members": [str(cfg.run_dir) for cfg in cfgs]},
                                          sort_keys=False))


def _fit_and_test(cfgs, population_dir, system, callbacks, filing) -> list[RunResult]:
    first = cfgs[0]
    datamodule = PopulationDataModule(
        system.task, [cfg.seed for cfg in cfgs], batch_size=first.batch_size,
        val_batches=first.val_batches, val_batch_size=first.val_batch_size,
        test_batch_size=first.test_batch_size, curriculum=first.curriculum)
    last = population_dir / "last.ckpt"
    resume_step = checkpoint_step(last) if last.exists() else None
    solo_key = best_checkpoint(first.run_dir).state_key if first.test_on == "best" else None
    bests = [best_checkpoint(cfg.run_dir, f"val/m{s}/cost_bits", MemberBest, member=s,
                             solo_key=solo_key) if solo_key else None
             for s, cfg in enumerate(cfgs)]
    stopped = lambda: system.stopped  # noqa: E731  (read live: a resume restores it)
    together = {"members": len(cfgs), "seeds": [cfg.seed for cfg in cfgs],
                "population": str(population_dir)}
    parameters = parameter_count(system.population.members[0])  # one structure: every member's
    csv_loggers, wandb_loggers = [], []
    for s, cfg in enumerate(cfgs):
        found = record_hardware(cfg, resume_step or 0, population=together)
        csv_loggers.append(csv_logger(cfg, resume_step, MemberCSVLogger, member=s, stopped=stopped))
        wandb_loggers.append(wandb_logger(cfg, filing, found, parameters, MemberWandbLogger,
                                          member=s, stopped=stopped))
    stops = MemberStops(cfgs, wandb_loggers)
    run_callbacks = [
        SequencesSeen(first.batch_size),  # before the checkpoint, as in a solo run
        PopulationCheckpoint(last, first.checkpoint_every, first.val_every,
                             [cfg.run_dir / "checkpoints" / "last.ckpt" for cfg in cfgs], bests,
                             solo_key),
        *(best for best in bests if best is not None), WallClock(), *callbacks, stops]
    who = f"{first.task}/{first.model} seeds {','.join(str(cfg.seed) for cfg in cfgs)}"
    if first.progress and run_bars():
        run_callbacks.append(RunProgressBar(who, position=progress_position()))
    say(start_line(f"{who} (one population)", parameters, found,
                   os.path.commonpath([cfg.run_dir for cfg in cfgs]), resume_step, first.max_steps,
                   each=len(cfgs) > 1))
    trainer = trainer_for(first, [*csv_loggers, *wandb_loggers], run_callbacks)
    try:
        trainer.fit(system, datamodule=datamodule,
                    ckpt_path=str(last) if resume_step is not None else None)
    except NonFiniteLossError:
        stops.tell(system)  # the last member's stop: say so in its folder too
        raise
    stops.tell(system)
    fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for s in system.running():  # each member tested on its best weights, as its solo run is
        if bests[s] is not None and bests[s].best_model_path:
            weights = torch.load(bests[s].best_model_path, map_location="cpu",
                                 weights_only=False)["state_dict"]
            system.population.members[s].load_state_dict(
                {k.removeprefix("net."): v for k, v in weights.items()})
    if system.running():
        trainer.test(system, datamodule=datamodule, verbose=False)
    results = []
    for s, cfg in enumerate(cfgs):
        if s in system.stopped:
            results.append(RunResult(cfg.run_dir, pd.DataFrame(), {},
                                     stopped=system.stopped[s], pruned=s in system.pruned))
            continue
        rows = shape_rows(trainer, system.task, cfg, prefix=f"test/m{s}")
        write_csv(cfg.run_dir / "test_metrics.csv", rows)
        results.append(RunResult(cfg.run_dir, rows, solo_metrics(fitted, s)))
        tested = bests[s] is not None and bests[s].best_model_path
        # each member's run closed now, as a solo run's is
        finish_run(wandb_loggers[s].experiment, rows, system.task, cfg.run_dir,
                   cfg.wandb_log_model, "best" if tested else "last")
    return results
