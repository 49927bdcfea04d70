"""`ntmbench evaluate` and `ntmbench predict`: everything rebuilt from a checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from models.ntm import NTM
from models.system import SequenceSystem

from .errors import RunError
from .files import write_csv, write_npz
from .train import datamodule_for
from .train_command import print_table


def load_system(checkpoint: str) -> SequenceSystem:
    path = Path(checkpoint)
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found; pass the .ckpt file a run wrote, "
                       f"e.g. runs/copy-ntm-seed0/checkpoints/last.ckpt")
    try:
        return SequenceSystem.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch and Lightning raise many kinds for a damaged file
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunError(f"cannot read checkpoint {path} ({first}); is it a complete .ckpt written "
                       f"by ntmbench train?") from None


def evaluate_command(checkpoint: str, out: str | None) -> int:
    system = load_system(checkpoint)
    cfg = system.cfg
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False)
    from .evaluate import test_rows

    rows = test_rows(trainer, system, datamodule_for(cfg, system))
    target = Path(out) if out else Path(checkpoint).resolve().parent.parent / "test_metrics.csv"
    write_csv(target, rows)
    print_table(rows, f"{cfg.task} / {cfg.model}: test per length -> {target}")
    return 0


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


def predict_command(checkpoint: str, inputs: str, out: str) -> int:
    system = load_system(checkpoint)
    try:
        with np.load(inputs) as data:
            x = torch.as_tensor(data["inputs"], dtype=torch.float32)
    except (OSError, KeyError, ValueError) as error:
        raise RunError(f"cannot read inputs from {inputs} ({error}); expected an .npz with an "
                       f"'inputs' array (B, T, I), e.g. from ntmbench sample") from None
    width = system.task.input_size
    if x.ndim != 3 or x.shape[-1] != width:
        raise RunError(f"inputs of shape {tuple(x.shape)} do not fit {system.cfg.task}: "
                       f"expected (B, T, {width})")
    arrays = predict_arrays(system, x)
    write_npz(Path(out), arrays)
    print(f"{system.cfg.model} on {system.cfg.task}: {', '.join(arrays)} -> {out}")
    return 0
