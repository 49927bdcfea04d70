"""The results table: per task and variant, the seeds, the sequences to converge and the test cost
per shape, each a median over seeds with its min and max (no seed left out).

Long form (results.csv), one row per task, variant and test shape:

    task variant seeds converged seqs_to_converge seqs_min seqs_max ... val_cost_bits ... label  size cost_bits ...
    copy ntm     3     3         42000            38000    51000    ... 0.4           ... len_030 30  0.8

`val_cost_bits` (with `_min`, `_max`) is the validation cost per sequence at the end of each
seed's learning curve, on the training lengths: the number the paper's learning-curve figures end on.
`val_optimal_cost_bits` is the optimal estimator's cost on the same validation sequences (n-grams).
"""

from __future__ import annotations

import math

import pandas as pd

from .converge import DEFAULT_THRESHOLD, converge_points, median_with_never


def results_table(table: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    points = converge_points(table, threshold)
    tests = table[table["split"] == "test"]
    rows = []
    for (task, variant), runs in table.groupby(["task", "variant"], sort=True):
        seeds = runs["seed"].nunique()
        conv = points[(points["task"] == task) & (points["variant"] == variant)]
        reached = conv["sequences_to_converge"].dropna()
        common = {
            "task": task, "variant": variant, "seeds": seeds,
            "converged": int(reached.size),
            "seqs_to_converge": median_with_never(conv["sequences_to_converge"]),
            "seqs_min": float(reached.min()) if reached.size else math.nan,
            "seqs_max": float(reached.max()) if reached.size else math.nan,
            "seqs_seen": float(conv["sequences_seen"].max()) if len(conv) else math.nan,
        }
        final = conv["final_cost_bits"].dropna()
        if final.size:  # the validation cost where each seed's curve ends: median, lowest, highest
            common.update(val_cost_bits=float(final.median()), val_cost_bits_min=float(final.min()),
                          val_cost_bits_max=float(final.max()))
        optimal = conv["final_optimal_cost_bits"].dropna()
        if optimal.size:  # n-grams: the optimal estimator on those validation sequences
            common.update(val_optimal_cost_bits=float(optimal.median()))
        shapes = tests[(tests["task"] == task) & (tests["variant"] == variant)]
        if shapes.empty:
            rows.append(common)
        for (size, label), by_seed in shapes.groupby(["size", "label"], sort=True):
            row = dict(common, label=label, size=size)
            for metric in ("cost_bits", "bit_errors", "optimal_cost_bits"):
                values = by_seed[metric].dropna()
                if values.size:
                    row[metric] = float(values.median())
                    row[f"{metric}_min"], row[f"{metric}_max"] = values.min(), values.max()
            rows.append(row)
    return pd.DataFrame(rows)


def fmt_number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "not reached"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_spread(median: float, low: float, high: float) -> str:
    """`0.8 [0.2-1.5]`, or the median alone when every seed agrees (or there is one)."""
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)) or low == high:
        return fmt_number(median)
    return f"{fmt_number(median)} [{fmt_number(low)}-{fmt_number(high)}]"


def display_tables(results: pd.DataFrame, threshold: float) -> dict[str, pd.DataFrame]:
    """Per task, a wide table for reading: one row per variant, one cost column per test shape."""
    out = {}
    for task, rows in results.groupby("task", sort=True):
        wide = []
        for variant, by_variant in rows.groupby("variant", sort=True):
            first = by_variant.iloc[0]
            never = first["seeds"] - first["converged"]
            seqs = fmt_spread(first["seqs_to_converge"], first["seqs_min"], first["seqs_max"])
            if never and not math.isinf(first["seqs_to_converge"]):
                seqs += f" ({never} not within {fmt_number(first['seqs_seen'])})"
            row = {"variant": variant, "seeds": int(first["seeds"]),
                   "converged": f"{int(first['converged'])}/{int(first['seeds'])}",
                   f"sequences to bit errors < {threshold:g}": seqs}
            for _, shape in by_variant.dropna(subset=["label"]).iterrows():
                if "cost_bits" in shape and not pd.isna(shape.get("cost_bits")):
                    row[f"cost {shape['label']}"] = fmt_spread(
                        shape["cost_bits"], shape["cost_bits_min"], shape["cost_bits_max"])
            wide.append(row)
        out[task] = pd.DataFrame(wide)
    return out
