"""Repeat copy's end marker (paper section 4.2): after the right number of copies, or not?

The paper's NTM generalizes to more repeats than it was trained on but "fails to predict the end
marker" there, emitting it late or after every copy past the training range. Bit errors alone do
not show that, so for every repeat-copy run with a checkpoint (the one its test scored, as the
report collects it: reports/collect.py), on the largest training shape and every test shape,
`sequences` fresh sequences each:

    data_errors    bit errors per sequence on the data channels (0..W-1)
    marker_errors  bit errors per sequence on the end-marker channel (W)
    marker_copies  when the marker first fires, in copies of the input from the target step
                   (median over sequences: 0 on time, -3 three copies early, +1 one copy late;
                   NaN when it never fires in any sequence)
    never          fraction of sequences in which it never fires
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from core.evaluate import load_system, predict_arrays
from core.errors import RunError
from datamodules.base import stable_seed

COLUMNS = ["task", "variant", "seed", "label", "length", "repeats", "data_errors", "marker_errors",
           "marker_copies", "never"]


def marker_stats(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray,
                 length: int) -> dict[str, float]:
    """outputs (B, T, O) probabilities, targets (B, T, O), mask (B, T) of one repeat-copy shape
    whose input is `length` vectors long (one copy)."""
    wrong = ((outputs > 0.5) != (targets > 0.5)) & mask[..., None]  # (B, T, O)
    fires = (outputs[..., -1] > 0.5) & mask  # (B, T): the end-marker channel, scored steps only
    target_step = targets[..., -1].argmax(axis=1)  # (B,) where the targets put the marker
    fired = fires.any(axis=1)  # (B,)
    first = np.where(fired, fires.argmax(axis=1), -1)  # (B,) first firing step, -1: never
    copies = (first[fired] - target_step[fired]) / length
    return {
        "data_errors": float(wrong[..., :-1].sum(axis=(1, 2)).mean()),
        "marker_errors": float(wrong[..., -1].sum(axis=1).mean()),
        "marker_copies": float(np.median(copies)) if fired.any() else float("nan"),
        "never": float(1 - fired.mean()),
    }


def end_marker_table(runs: pd.DataFrame, sequences: int = 100) -> tuple[pd.DataFrame, list[str]]:
    """One row per repeat-copy run (with a checkpoint) and test shape; notes for runs skipped."""
    rows, notes = [], []
    chosen = runs[(runs["task"] == "repeat_copy") & (runs["checkpoint"] != "")]
    for _, run in chosen.sort_values(["variant", "seed"]).iterrows():
        try:
            system = load_system(run["checkpoint"])
        except RunError as error:
            notes.append(f"no end-marker row for {run['run']}: {error}")
            continue
        task = system.task
        longest = {"length": task.max_length, "repeats": task.max_repeats}  # training's largest
        for shape in [longest] + [s for s in task.test_shapes() if s != longest]:
            label = task.label(shape)
            generator = torch.Generator().manual_seed(stable_seed("end-marker", label))
            batch = task.sample(generator, sequences, **shape)
            outputs = predict_arrays(system, batch["inputs"])["outputs"]
            stats = marker_stats(outputs, batch["targets"].numpy(), batch["mask"].numpy(),
                                 shape["length"])
            rows.append({"task": "repeat_copy", "variant": run["variant"], "seed": run["seed"],
                         "label": label, **shape, **stats})
    return pd.DataFrame(rows, columns=COLUMNS), notes
