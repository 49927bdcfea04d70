"""One training run: the DataModule, the system, loggers and checkpoints, then a test per length.

Run folder layout (`--out DIR`):
    DIR/config.yaml            the resolved RunConfig, exactly what was trained
    DIR/checkpoints/last.ckpt  the latest checkpoint (every `checkpoint_every` steps and at the end)
    DIR/csv/metrics.csv        Lightning's CSV metrics
    DIR/wandb/                 the W&B run (offline unless WANDB_MODE=online)
    DIR/test_metrics.csv       one row per generalization shape
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
import wandb
import yaml
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from datamodules.datamodule import TaskDataModule
from models.system import SequenceSystem

from .config import ConfigError, RunConfig
from .evaluate import test_rows
from .files import write_csv, write_text


def datamodule_for(cfg: RunConfig, system: SequenceSystem) -> TaskDataModule:
    return TaskDataModule(
        system.task,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        val_batches=cfg.val_batches,
        val_batch_size=cfg.val_batch_size,
        test_batch_size=cfg.test_batch_size,
    )


def prepare_run_dir(cfg: RunConfig) -> None:
    """Refuse a folder that holds another run's config; never overwrite its results."""
    config_file = cfg.run_dir / "config.yaml"
    if config_file.exists():
        previous = yaml.safe_load(config_file.read_text())
        if previous != cfg.to_dict():
            changed = sorted(k for k in cfg.to_dict() if previous.get(k) != cfg.to_dict()[k])
            raise ConfigError(
                f"{cfg.run_dir} holds a run with another config (differs in {', '.join(changed)}); "
                f"choose another --out or delete that folder"
            )
    elif rank_zero_only.rank == 0:
        write_text(config_file, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


@dataclass
class RunResult:
    """What a finished run hands back: its per-shape test rows and its last logged metrics."""

    run_dir: Path
    test: pd.DataFrame
    metrics: dict[str, float]


def wandb_logger(cfg: RunConfig, group: str | None = None, tags: Sequence[str] = ()) -> WandbLogger:
    """Offline by default (no key, no network needed); the run id is kept so a rerun resumes it."""
    os.environ.setdefault("WANDB_MODE", "offline")
    id_file = cfg.run_dir / "wandb_id"
    if not id_file.exists() and rank_zero_only.rank == 0:
        write_text(id_file, uuid.uuid4().hex[:12])
    return WandbLogger(
        project=cfg.wandb_project,
        save_dir=str(cfg.run_dir),
        id=id_file.read_text().strip() if id_file.exists() else None,
        resume="allow",
        tags=[cfg.task, cfg.model, *tags],
        group=group,
        config=cfg.to_dict(),
        name=cfg.run_dir.name,
    )


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
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # each rank has its own seeded train stream
        num_sanity_val_steps=0,
        deterministic=True,
    )


def train(
    cfg: RunConfig,
    callbacks: Sequence[pl.Callback] = (),
    wandb_group: str | None = None,
    wandb_tags: Sequence[str] = (),
) -> RunResult:
    """Train (or resume) the run `cfg` describes, then test it per shape. `callbacks` (pruning,
    timing) join the run's own; `wandb_group` and `wandb_tags` file it in W&B (sweeps use them)."""
    cfg = cfg.resolved()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    system = SequenceSystem(cfg.to_dict())  # builds task and model: bad options fail before any file
    prepare_run_dir(cfg)
    datamodule = datamodule_for(cfg, system)
    checkpoints = ModelCheckpoint(
        dirpath=cfg.run_dir / "checkpoints",
        filename="step{step}",
        auto_insert_metric_name=False,
        every_n_train_steps=cfg.checkpoint_every,
        save_last=True,
        save_top_k=0,
    )
    run_callbacks = [checkpoints, *callbacks]
    if cfg.progress:
        run_callbacks.append(TQDMProgressBar(refresh_rate=10))
    loggers = [CSVLogger(save_dir=str(cfg.run_dir), name="csv", version=""),
               wandb_logger(cfg, wandb_group, wandb_tags)]
    trainer = trainer_for(cfg, loggers, run_callbacks)
    last = cfg.run_dir / "checkpoints" / "last.ckpt"
    trainer.fit(system, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
    rows = test_rows(trainer, system, datamodule)
    if trainer.is_global_zero:
        write_csv(cfg.run_dir / "test_metrics.csv", rows)
        wandb.finish()  # close the run now, so that later runs in this process get their own
    return RunResult(cfg.run_dir, rows, fitted)
