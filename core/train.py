"""One training run: the DataModule, the system, loggers and checkpoints, then a test per length.

Run folder layout (`--out DIR`; unnamed runs get a unique `runs/<task>-<model>-seed<s>-<time>-<id>`):
    DIR/config.yaml            the resolved RunConfig, exactly what was trained
    DIR/checkpoints/last.ckpt  the latest checkpoint (every `checkpoint_every` steps and at the end;
                               written to a temporary file and moved into place, so never partial)
    DIR/csv/metrics.csv        Lightning's CSV metrics (kept across resumes)
    DIR/wandb/                 the W&B run (offline unless WANDB_MODE=online; resumed under one id;
                               its id and group in DIR/wandb_id and DIR/wandb_group)
    DIR/test_metrics.csv       one row per generalization shape
    DIR/hardware.json          what each start of the run trained on (core/hardware.py); the
                               metrics hold `val/wall_s`, training seconds at every validation

Rerunning the same command with the same `--out` resumes from `last.ckpt`; rerunning it with a
larger `max_steps` extends the run from there (the shorter budget's test is kept beside it;
a scheduled learning rate, which depends on `max_steps`, is not extended: core/run_dir.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from datamodules.datamodule import TaskDataModule, check_curriculum
from models.registry import parameter_count
from models.system import SequenceSystem

from .config import RunConfig
from .errors import RunError
from .evaluate import test_rows
from .files import write_csv, write_text
from .footprint import check_fits
from .console import RunProgressBar, progress_position, run_bars, say, start_line
from .hardware import WallClock, hardware, record_hardware
from .run_dir import RUN_DIR_ENV, RunLock, claim_config, is_rank_zero, unique_run_dir
from .wandb_run import Filing, RunWandbLogger, SequencesSeen, finish_run, git_commit, init_options


@dataclass
class RunResult:
    """What a finished run hands back: its per-shape test rows and its last logged metrics (or,
    for a population member that stopped on a non-finite loss or was pruned, why: then no test
    ran)."""

    run_dir: Path
    test: pd.DataFrame
    metrics: dict[str, float]
    stopped: str = ""
    pruned: bool = False


class LastCheckpoint(pl.Callback):
    """`checkpoints/last.ckpt` every `every` steps and at the last step, saved where an
    interruption would leave it: after the step's batch, or, at a step where a validation is
    due, after that validation. (A checkpoint taken between a batch and its validation resumes
    past a validation it never ran: killed during it, the run lost that point for good.) Saving
    at the last step's batch, not at the end of training, lets a run extended to a larger
    `max_steps` resume as from an interruption (from an end-of-training checkpoint Lightning
    starts a new epoch and logs every later step one higher)."""

    def __init__(self, path: Path, every: int, val_every: int) -> None:
        self.path, self.every, self.val_every = path, every, val_every
        self.after_validation = False

    def _save(self, trainer: pl.Trainer) -> None:
        self.write(trainer)
        self.after_validation = False

    def write(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path)  # Lightning writes it through an fsspec transaction

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step >= trainer.max_steps:
            if step % self.val_every == 0:
                self.after_validation = True  # saved in on_validation_end, right after
            else:
                self._save(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.after_validation and not trainer.sanity_checking:
            self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.after_validation or trainer.global_step < trainer.max_steps:  # stopped early
            self._save(trainer)


def datamodule_for(cfg: RunConfig, system: SequenceSystem) -> TaskDataModule:
    return TaskDataModule(
        system.task,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        val_batches=cfg.val_batches,
        val_batch_size=cfg.val_batch_size,
        test_batch_size=cfg.test_batch_size,
        curriculum=cfg.curriculum,
    )


def wandb_logger(cfg: RunConfig, filing: Filing, hardware: dict, parameters: int,
                 logger_class: type = RunWandbLogger, **extra) -> WandbLogger:
    """Offline by default (no key, no network needed; core/wandb_run.py), filed by `filing`;
    the config is the RunConfig whole, the hardware, the parameter count and the git commit. The
    run id is kept so a rerun resumes it. `logger_class` and `extra`: a population member's
    logger (core/member_run.py)."""
    id_file = cfg.run_dir / "wandb_id"
    if not id_file.exists() and is_rank_zero():
        write_text(id_file, uuid.uuid4().hex[:12])
    group = filing.group(cfg.task, cfg.model)
    if is_rank_zero():  # where `evaluate` files its runs of this run's checkpoints
        write_text(cfg.run_dir / "wandb_group", group + "\n")
    return logger_class(
        project=cfg.wandb_project,
        save_dir=str(cfg.run_dir),
        id=id_file.read_text().strip() if id_file.exists() else None,
        resume="allow",
        tags=[cfg.task, cfg.model, *filing.tags],
        group=group,
        job_type=filing.job_type,
        config={**cfg.to_dict(), "hardware": hardware, "parameters": parameters,
                "git_commit": git_commit(), **filing.config},
        name=cfg.run_dir.name,
        **init_options(cfg.wandb_mode, cfg.wandb_entity),
        **extra,
    )


def csv_logger(cfg: RunConfig, resume_step: int | None, logger_class: type = CSVLogger,
               **extra) -> CSVLogger:
    """Lightning's CSV logger. Its writer deletes an existing metrics.csv, so on a resume the rows
    up to the checkpoint are set aside first and logged again (later rows are redone anyway).
    `logger_class` and `extra`: a population member's logger (core/member_run.py)."""
    logger = logger_class(save_dir=str(cfg.run_dir), name="csv", version="", **extra)
    path = Path(logger.log_dir) / "metrics.csv"
    kept = path.with_name("metrics.before-resume.csv")
    if resume_step is None or not (path.exists() or kept.exists()) or not is_rank_zero():
        return logger
    if not kept.exists():  # a kill during an earlier replay leaves `kept` as the true history
        os.replace(path, kept)
    rows = pd.read_csv(kept)
    for row in rows[rows["step"] < resume_step].to_dict("records"):
        step = int(row.pop("step"))
        logger.log_metrics({k: v for k, v in row.items() if pd.notna(v)}, step)
    logger.save()
    kept.unlink()
    return logger


def trainer_for(cfg: RunConfig, loggers: list, callbacks: list) -> pl.Trainer:
    return pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        max_steps=cfg.max_steps,
        val_check_interval=cfg.val_every,
        check_val_every_n_epoch=None,
        gradient_clip_val=cfg.clip,
        gradient_clip_algorithm="value",
        logger=loggers,
        callbacks=callbacks,
        log_every_n_steps=min(50, cfg.val_every),
        enable_progress_bar=cfg.progress and run_bars(),
        enable_model_summary=False,
        # LastCheckpoint writes last.ckpt; Lightning's own default checkpoint would add another
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        use_distributed_sampler=False,  # each rank has its own seeded train stream
        num_sanity_val_steps=0,
        deterministic=True,
    )


def best_checkpoint(run_dir: Path, monitor: str = "val/cost_bits",
                    checkpoint_class: type = ModelCheckpoint, **extra) -> ModelCheckpoint:
    """Lightning's checkpoint of the lowest validation cost so far: RUN/checkpoints/best.ckpt
    (`checkpoint_class`, `monitor` and `extra`: a population member's, core/member_run.py)."""
    return checkpoint_class(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor,
                            mode="min", save_top_k=1, enable_version_counter=False, **extra)


def resolve(cfg: RunConfig) -> RunConfig:
    """The preset applied and the run folder fixed (a unique one when `out` is empty)."""
    cfg = cfg.resolved()
    if not cfg.out:
        cfg = replace(cfg, out=os.environ.get(RUN_DIR_ENV) or str(unique_run_dir(cfg)))
    return cfg


def train(
    cfg: RunConfig,
    callbacks: Sequence[pl.Callback] = (),
    filing: Filing = Filing(),
) -> RunResult:
    """Train (or resume) the run `cfg` describes, then test it per shape. `callbacks` (pruning,
    timing) join the run's own; `filing` says where W&B files it (a plan, a study)."""
    cfg = resolve(cfg)
    check_fits(cfg)  # a size that cannot fit is one line, before anything is allocated
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    system = SequenceSystem(cfg.to_dict())  # builds task and model: bad options fail before any file
    check_curriculum(system.task, cfg.curriculum)
    lock = RunLock(cfg.run_dir) if is_rank_zero() else None
    previous_env = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(cfg.run_dir)
    try:
        claim_config(cfg, write=is_rank_zero())
        return _fit_and_test(cfg, system, callbacks, filing)
    finally:
        if previous_env is None:
            os.environ.pop(RUN_DIR_ENV, None)
        if lock is not None:
            lock.release()


def _fit_and_test(cfg, system, callbacks, filing) -> RunResult:
    datamodule = datamodule_for(cfg, system)
    last = cfg.run_dir / "checkpoints" / "last.ckpt"
    resume_step = checkpoint_step(last) if last.exists() else None
    # SequencesSeen before LastCheckpoint: the checkpoint after a validation holds its verdict
    run_callbacks = [SequencesSeen(cfg.batch_size),
                     LastCheckpoint(last, cfg.checkpoint_every, cfg.val_every), WallClock(), *callbacks]
    best = None
    if cfg.test_on == "best":
        best = best_checkpoint(cfg.run_dir)
        run_callbacks.insert(2, best)  # after LastCheckpoint
    who = f"{cfg.task}/{cfg.model} seed {cfg.seed}"
    if cfg.progress and run_bars():
        run_callbacks.append(RunProgressBar(who, position=progress_position()))
    found = record_hardware(cfg, resume_step or 0) if is_rank_zero() else hardware(cfg)
    parameters = parameter_count(system.net)
    loggers = [csv_logger(cfg, resume_step), wandb_logger(cfg, filing, found, parameters)]
    if is_rank_zero():
        say(start_line(who, parameters, found, cfg.run_dir, resume_step, cfg.max_steps))
    trainer = trainer_for(cfg, loggers, run_callbacks)
    trainer.fit(system, datamodule=datamodule, ckpt_path=str(last) if resume_step is not None else None)
    fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
    tested = best.best_model_path if best is not None else ""  # "": no validation ran yet
    rows = test_rows(trainer, system, datamodule, ckpt_path=tested or None)
    if trainer.is_global_zero:
        write_csv(cfg.run_dir / "test_metrics.csv", rows)
        # closed now, so that later runs in this process get their own
        finish_run(loggers[1].experiment, rows, system.task, cfg.run_dir, cfg.wandb_log_model,
                   "best" if tested else "last")
    return RunResult(cfg.run_dir, rows, fitted)


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint was saved at; a damaged file is a one-line error, never overwritten."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception as error:  # torch raises many kinds for a damaged file
        raise RunError(
            f"cannot resume from {path} ({type(error).__name__}); move it away to start the run "
            f"over, or choose another --out"
        ) from None
