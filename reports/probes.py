"""A checkpoint run on a few test sequences, for the figures that show one run's behaviour
(outputs vs targets, memory use). The forward pass is `ntmbench predict`'s own.

Which run: per task and variant, the seed whose final validation cost is the median of its seeds
(the lower median for an even count), so the picture is typical rather than the best seed; the
figure says which seed it is and of how many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bench.checkpoint_commands import load_system, predict_arrays
from bench.errors import RunError
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
        return f"{self.variant}, seed {self.seed} (median of {self.seeds} seeds by final val cost)"


def representative(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per (task, variant), the run with the median final validation cost among its seeds."""
    val = table[table["split"] == "val"].dropna(subset=["cost_bits"])
    final = val.sort_values("step").groupby("run")["cost_bits"].last()
    picked = []
    for _, group in runs.groupby(["task", "variant"], sort=True):
        with_ckpt = group[group["checkpoint"] != ""].copy()
        if with_ckpt.empty:
            continue
        with_ckpt["final"] = with_ckpt["run"].map(final).fillna(np.inf)
        ordered = with_ckpt.sort_values(["final", "seed"], kind="stable")
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
