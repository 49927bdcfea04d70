"""Scoring a system on the test shapes of its task (tidy rows keyed by the shape itself), and
rebuilding a system from a checkpoint alone (`evaluate`, `predict` and the report use both)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from models.metrics import ALL_METRICS
from models.ntm import NTM
from models.system import SequenceSystem

from .config import RunConfig
from .errors import RunError, first_line


def run_config(system: SequenceSystem) -> RunConfig:
    """The RunConfig a system was built from (a checkpoint holds it whole)."""
    return RunConfig.from_dict(system.hparams["config"])


def test_rows(trainer: pl.Trainer, system: SequenceSystem, datamodule: pl.LightningDataModule,
              ckpt_path: str | None = None) -> pd.DataFrame:
    """Run `trainer.test` (on the weights of `ckpt_path`, if given) and return one row per test
    shape: task, model, seed, label, the shape parameters, and every metric logged for it."""
    trainer.test(system, datamodule=datamodule, verbose=False, ckpt_path=ckpt_path)
    return shape_rows(trainer, system.task, run_config(system))


def shape_rows(trainer: pl.Trainer, task, cfg: RunConfig, prefix: str = "test") -> pd.DataFrame:
    """The rows of the test just run by `trainer`, from its metrics `PREFIX/<label>/<metric>`
    (a population member's prefix: `test/m<s>`)."""
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    rows = []
    for shape in task.test_shapes():
        label = task.label(shape)
        row = {"task": cfg.task, "model": cfg.model, "seed": cfg.seed, "label": label, **shape}
        for metric in ALL_METRICS:
            key = f"{prefix}/{label}/{metric}"
            if key in logged:
                row[metric] = logged[key]
        rows.append(row)
    return pd.DataFrame(rows)


def load_system(checkpoint: str | Path) -> SequenceSystem:
    """The system a checkpoint holds, on the CPU; a missing or damaged file is a one-line error."""
    path = Path(checkpoint)
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found; pass the .ckpt file a run wrote, "
                       f"e.g. runs/copy-ntm-seed0/checkpoints/last.ckpt")
    try:
        return SequenceSystem.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch and Lightning raise many kinds for a damaged file
        first = first_line(error)
        raise RunError(f"cannot read checkpoint {path} ({first}); is it a complete .ckpt written "
                       f"by ntmbench train?") from None


def predict_arrays(system: SequenceSystem, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The forward pass of `ntmbench predict` (and of the report's figures): output probabilities
    and, for an NTM, every head's weighting at every step."""
    system.eval()
    arrays = {}
    with torch.no_grad():
        if isinstance(system.net, NTM):
            logits, weights = system(x, return_weights=True)
            arrays["read_weights"] = weights["read"].numpy()  # (B, T, read_heads, N)
            arrays["write_weights"] = weights["write"].numpy()  # (B, T, write_heads, N)
        else:
            logits = system(x)
    arrays["outputs"] = torch.sigmoid(logits).numpy()  # (B, T, O) probabilities
    return arrays
