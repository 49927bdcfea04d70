"""The same experiment on different hardware, side by side: per task, variant and device
configuration (CPU threads, CPU processes, one or n GPUs, a population's shared machine), the
sequences and the wall-clock seconds to fewer than 0.1 bit errors per sequence, and the final
test metrics (medians over seeds).

    task variant hardware          seeds converged seqs_to_converge wall_s_to_converge wall_s cost_bits
    copy ntm     CPU, 2 threads    3     3         42000            310                880    0.8
    copy ntm     2 CPU processes.. 3     3         44000            190                540    0.9

A run's hardware is what it recorded when it started (RUN/hardware.json, core/hardware.py; a W&B
run's config); `val/wall_s` its training seconds at each validation.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from core.hardware import describe_hardware

from .converge import DEFAULT_THRESHOLD, median_with_never, sequences_to_converge

UNKNOWN = "not recorded"
COLUMNS = ["task", "variant", "hardware", "seeds", "converged", "seqs_to_converge",
           "wall_s_to_converge", "wall_s", "cost_bits", "bit_errors", "seq_acc"]


def device_config(found: dict[str, Any] | None) -> str:
    """A run's hardware (core/hardware.py: `hardware`) as one label, e.g. `CPU, 2 threads`,
    `2 CPU processes (ddp), 1 thread each`, `1 GPU (NVIDIA H200)`; a population member adds the
    members it shared the machine with."""
    if not found:
        return UNKNOWN
    label = describe_hardware(found)
    together = found.get("population")
    if together:
        label += f", population of {together.get('members', '?')}"
    return label


def run_hardware(entries: list[dict[str, Any]]) -> str:
    """The label of a run's starts (RUN/hardware.json): one label, or `mixed: A + B` when a
    resume ran on other hardware (its wall time then belongs to neither)."""
    labels = list(dict.fromkeys(device_config(e.get("hardware")) for e in entries))
    if not labels:
        return UNKNOWN
    return labels[0] if len(labels) == 1 else "mixed: " + " + ".join(labels)


def hardware_table(runs: pd.DataFrame, table: pd.DataFrame,
                   threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per task, variant and device configuration: medians over its seeds (a seed that
    never converged counts as infinitely slow, as in results.csv), final test metrics averaged
    over the task's test shapes, then the median over seeds."""
    where = dict(zip(runs["run"], runs["hardware"]))
    rows = []
    for (task, variant), of_variant in table.groupby(["task", "variant"], sort=True):
        labels = of_variant["run"].map(where).fillna(UNKNOWN)
        for label, frame in of_variant.groupby(labels, sort=True):
            per_seed = []
            for _, run in frame.groupby("run", sort=True):
                val, test = run[run["split"] == "val"], run[run["split"] == "test"]
                per_seed.append({"seqs": sequences_to_converge(val, threshold),  # NaN: never
                                 "wall_conv": sequences_to_converge(val, threshold, x="wall_s"),
                                 "wall": val["wall_s"].max(),
                                 **{m: test[m].mean() for m in ("cost_bits", "bit_errors", "seq_acc")}})
            seeds = pd.DataFrame(per_seed)
            converged = int(seeds["seqs"].notna().sum())
            rows.append({
                "task": task, "variant": variant, "hardware": label, "seeds": len(seeds),
                "converged": converged,
                "seqs_to_converge": median_with_never(seeds["seqs"]),
                # wall time to converge only where the seeds' clocks were kept (val/wall_s)
                "wall_s_to_converge": median_with_never(seeds["wall_conv"])
                if seeds["wall"].notna().any() else math.nan,
                "wall_s": float(seeds["wall"].median()),
                **{m: float(seeds[m].median()) for m in ("cost_bits", "bit_errors", "seq_acc")},
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def compared(hardware: pd.DataFrame) -> pd.DataFrame:
    """The rows of the experiments (task, variant) run on more than one device configuration."""
    counts = hardware.groupby(["task", "variant"])["hardware"].transform("nunique")
    return hardware[counts > 1]
