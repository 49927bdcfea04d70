"""`ntmbench evaluate` and `ntmbench predict`: everything rebuilt from a checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from core.errors import RunError
from core.evaluate import load_system, predict_arrays, run_config, test_rows
from core.files import write_csv, write_npz
from core.train import datamodule_for

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


def evaluate_command(checkpoint: str, out: str | None) -> int:
    target = evaluation_path(Path(checkpoint), out)
    system = load_system(checkpoint)
    cfg = run_config(system)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False)
    rows = test_rows(trainer, system, datamodule_for(cfg, system))
    write_csv(target, rows)
    name = Path(checkpoint).name
    print_table(rows, f"{cfg.task} / {cfg.model}: test per length of {name} -> {target}")
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
