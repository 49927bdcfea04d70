"""When a run has learned its task: the first point where the validation bit errors per sequence
fall below a threshold (0.1 by default: fewer than one wrong bit in ten sequences).

    sequences  1000  2000  3000  4000
    bit_errors  9.0   0.4  0.05   0.2      -> converged at 3000 sequences (later rises do not count)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.config import CONVERGED_BELOW as DEFAULT_THRESHOLD


def sequences_to_converge(curve: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD,
                          x: str = "sequences", y: str = "bit_errors") -> float:
    """The smallest `x` at which `y < threshold`; NaN when the curve never gets there."""
    points = curve[[x, y]].dropna().sort_values(x, kind="stable")
    below = points[points[y] < threshold]
    return float(below[x].iloc[0]) if len(below) else math.nan


def converge_points(table: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per run: task, variant, seed, the sequences it took (NaN: not within the run), the
    sequences the run saw in all, its last validation cost per sequence (the learning curve's
    end, in bits) and, for n-grams, the optimal estimator's cost on the same validation sequences."""
    val = table[table["split"] == "val"]
    rows = []
    for (run, task, variant, seed), curve in val.groupby(["run", "task", "variant", "seed"],
                                                         sort=True):
        rows.append({"run": run, "task": task, "variant": variant, "seed": seed,
                     "sequences_to_converge": sequences_to_converge(curve, threshold),
                     "sequences_seen": float(curve["sequences"].max()),
                     "final_cost_bits": _last(curve, "cost_bits"),
                     "final_optimal_cost_bits": _last(curve, "optimal_cost_bits")})
    return pd.DataFrame(rows, columns=["run", "task", "variant", "seed", "sequences_to_converge",
                                       "sequences_seen", "final_cost_bits", "final_optimal_cost_bits"])


def _last(curve: pd.DataFrame, metric: str) -> float:
    """`metric` at the curve's last point that has it (NaN when none does, or no such column)."""
    if metric not in curve:
        return math.nan
    points = curve[["sequences", metric]].dropna().sort_values("sequences", kind="stable")
    return float(points[metric].iloc[-1]) if len(points) else math.nan


def median_with_never(values: pd.Series) -> float:
    """The median over seeds, a run that never converged counting as infinitely slow (so the
    median is inf when at most half converged): no seed is dropped to flatter the result."""
    filled = values.fillna(math.inf).to_numpy(dtype=float)
    return float(np.median(filled)) if len(filled) else math.nan
