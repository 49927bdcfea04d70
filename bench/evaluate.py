"""Scoring a system on the test shapes of its task: tidy rows keyed by the shape itself."""

from __future__ import annotations

import lightning.pytorch as pl
import pandas as pd

from datamodules.datamodule import TaskDataModule
from models.system import SequenceSystem

METRICS = ("cost_bits", "bit_errors", "seq_acc", "bit_acc", "optimal_cost_bits")


def test_rows(trainer: pl.Trainer, system: SequenceSystem, datamodule: TaskDataModule,
              ckpt_path: str | None = None) -> pd.DataFrame:
    """Run `trainer.test` (on the weights of `ckpt_path`, if given) and return one row per test
    shape: task, model, seed, label, the shape parameters, and every metric logged for it."""
    trainer.test(system, datamodule=datamodule, verbose=False, ckpt_path=ckpt_path)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    cfg = system.cfg
    rows = []
    for shape in system.task.test_shapes():
        label = system.task.label(shape)
        row = {"task": cfg.task, "model": cfg.model, "seed": cfg.seed, "label": label, **shape}
        for metric in METRICS:
            key = f"test/{label}/{metric}"
            if key in logged:
                row[metric] = logged[key]
        rows.append(row)
    return pd.DataFrame(rows)
