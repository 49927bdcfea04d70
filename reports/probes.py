"""A checkpoint run on a few test sequences, for the figures that show one run's behaviour
(outputs vs targets, memory use). The forward pass is `ntmbench predict`'s own.

Which run: per task and variant, the seed whose validation cost at its tested checkpoint (the
lowest for a run tested on best.ckpt, else the final) is the median of its seeds (the lower median
for an even count), so the picture is typical rather than the best seed; the figure says which
seed it is and of how many. The checkpoint is the one the run's test scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.evaluate import load_system, predict_arrays
from core.errors import RunError
from datamodules.base import stable_seed

from .collect import Collection


@dataclass
class Probe:
    task: str
    variant: str
    run: str
    seed: int
    seeds: int  # how many seeds the variant has
    labels: list[str]
    batches: list[dict[str, np.ndarray]]  # per shape: inputs, targets, mask (one sequence)
    arrays: list[dict[str, np.ndarray]]  # per shape: outputs (+ read/write weights for an NTM)

    @property
    def who(self) -> str:
        if self.seeds == 1:
            return f"{self.variant}, seed {self.seed} (its only seed)"
        return f"{self.variant}, seed {self.seed} (median of {self.seeds} seeds by tested val cost)"


def representative(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per (task, variant), the run with the median validation cost at its tested checkpoint
    among its seeds."""
    val = table[table["split"] == "val"].dropna(subset=["cost_bits"]).sort_values("step")
    by_run = val.groupby("run")["cost_bits"]
    final, lowest = by_run.last(), by_run.min()
    picked = []
    for _, group in runs.groupby(["task", "variant"], sort=True):
        with_ckpt = group[group["checkpoint"] != ""].copy()
        if with_ckpt.empty:
            continue
        cost = np.where(with_ckpt["tested"] == "best", with_ckpt["run"].map(lowest),
                        with_ckpt["run"].map(final))
        with_ckpt["cost"] = pd.Series(cost, index=with_ckpt.index).fillna(np.inf)
        ordered = with_ckpt.sort_values(["cost", "seed"], kind="stable")
        row = ordered.iloc[(len(ordered) - 1) // 2].copy()
        row["seeds"] = group["seed"].nunique()
        picked.append(row)
    return pd.DataFrame(picked)


def probe(run: pd.Series, shapes: int) -> Probe:
    system = load_system(run["checkpoint"])
    task = system.task
    labels, batches, arrays = [], [], []
    for shape in task.test_shapes()[:shapes]:
        label = task.label(shape)
        generator = torch.Generator().manual_seed(stable_seed("report", task.name, label))
        batch = task.sample(generator, 1, **shape)
        labels.append(label)
        batches.append({k: v.numpy() for k, v in batch.items()})
        arrays.append(predict_arrays(system, batch["inputs"]))
    return Probe(run["task"], run["variant"], run["run"], int(run["seed"]), int(run["seeds"]),
                 labels, batches, arrays)


def probes(collection: Collection, shapes: int = 3) -> tuple[list[Probe], list[str]]:
    out, notes = [], []
    picked = representative(collection.runs, collection.table)
    for _, run in picked.iterrows():
        try:
            out.append(probe(run, shapes))
        except RunError as error:
            notes.append(f"no outputs or memory figure for {run['run']}: {error}")
    missing = collection.runs[collection.runs["checkpoint"] == ""]
    if len(missing):
        notes.append(f"{len(missing)} run(s) without a checkpoint (W&B, or not yet saved): "
                     f"not shown in the outputs and memory figures")
    return out, notes
