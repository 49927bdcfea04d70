"""`ntmbench evaluate` and `ntmbench predict`: everything rebuilt from a checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import wandb

from core.errors import RunError
from core.evaluate import load_system, predict_arrays, run_config, test_rows
from core.files import write_csv, write_npz
from core.train import datamodule_for
from core.wandb_run import Filing, close_run, git_commit, init_options, log_test_table

from .train_command import print_table


def evaluation_path(checkpoint: Path, out: str | None) -> Path:
    """Where `evaluate` writes: `--out`, or `RUN/test_metrics.<checkpoint>.csv` beside the run
    (e.g. test_metrics.last.csv). Never the run's own `test_metrics.csv`, which holds the table
    of the checkpoint the run chose (best.ckpt under `test_on: best`) and which `report` reads."""
    run = checkpoint.resolve().parent.parent
    default = run / f"test_metrics.{checkpoint.stem}.csv"
    target = Path(out) if out else default
    if target.resolve() == (run / "test_metrics.csv").resolve():
        raise RunError(f"--out {out} is the run's own test table, which evaluate never "
                       f"overwrites; give another file, or leave --out out for {default}")
    return target


def log_evaluation(cfg, rows, task, checkpoint: Path, where: Path, mode: str | None,
                   entity: str) -> None:
    """The evaluation as a W&B run of its own (job type `evaluate`), filed in the group of the
    run it scores (RUN/wandb_group, written at training), with its test table and plots; its
    files go to `where`/wandb (offline by default, the run's mode else)."""
    run_dir = checkpoint.resolve().parent.parent
    group_file = run_dir / "wandb_group"
    group = group_file.read_text().strip() if group_file.is_file() else Filing().group(cfg.task, cfg.model)
    options = init_options(mode or cfg.wandb_mode, entity or cfg.wandb_entity)
    run = wandb.init(project=cfg.wandb_project, dir=str(where), job_type="evaluate", group=group,
                     name=f"{run_dir.name}-evaluate-{checkpoint.stem}",
                     tags=[cfg.task, cfg.model, "evaluate"],
                     config={**cfg.to_dict(), "checkpoint": str(checkpoint), "git_commit": git_commit()},
                     **options)
    log_test_table(run, rows, task, checkpoint.stem)
    close_run(run)


def evaluate_command(checkpoint: str, out: str | None, wandb_mode: str | None = None,
                     wandb_entity: str = "") -> int:
    target = evaluation_path(Path(checkpoint), out)
    system = load_system(checkpoint)
    cfg = run_config(system)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False)
    rows = test_rows(trainer, system, datamodule_for(cfg, system))
    write_csv(target, rows)
    name = Path(checkpoint).name
    print_table(rows, f"{cfg.task} / {cfg.model}: test per length of {name} -> {target}")
    log_evaluation(cfg, rows, system.task, Path(checkpoint), target.parent, wandb_mode, wandb_entity)
    return 0


def predict_command(checkpoint: str, inputs: str, out: str) -> int:
    system = load_system(checkpoint)
    cfg = run_config(system)
    try:
        with np.load(inputs) as data:
            x = torch.as_tensor(data["inputs"], dtype=torch.float32)
    except (OSError, KeyError, ValueError) as error:
        raise RunError(f"cannot read inputs from {inputs} ({error}); expected an .npz with an "
                       f"'inputs' array (B, T, I), e.g. from ntmbench sample") from None
    width = system.task.input_size
    if x.ndim != 3 or x.shape[-1] != width:
        raise RunError(f"inputs of shape {tuple(x.shape)} do not fit {cfg.task}: "
                       f"expected (B, T, {width})")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise RunError(f"inputs in {inputs} hold {bad} NaN or infinite value(s); {cfg.task} takes "
                       f"finite values only (its inputs are bits, 0 or 1)")
    arrays = predict_arrays(system, x)
    write_npz(Path(out), arrays)
    print(f"{cfg.model} on {cfg.task}: {', '.join(arrays)} -> {out}")
    return 0
