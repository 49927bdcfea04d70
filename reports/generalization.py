"""Generalization: test cost and bit errors per sequence against the size of the test shape (its
length, items, n_in, or length x repeats), the training range shaded. Markers: the median over
seeds; bars: lowest to highest seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .collect import size_axis, training_range
from .figures import FigureFile, handles, note, save, seeds_text, style

METRICS = {"cost_bits": "test cost per sequence (bits)", "bit_errors": "bit errors per sequence"}


def shape_name(row: pd.Series) -> str:
    if row["task"] == "repeat_copy":
        return f"{int(row['length'])}x{int(row['repeats'])}"
    if row["task"] == "priority_sort":
        return f"{int(row['n_in'])}->{int(row['n_out'])}"
    return str(int(row["size"]))


def per_shape(tests: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Median, min and max over seeds per (variant, shape)."""
    return (tests.dropna(subset=[metric])
            .groupby(["variant", "size", "label"], sort=True)[metric]
            .agg(["median", "min", "max", "count"]).reset_index())


def draw_metric(ax, tests: pd.DataFrame, metric: str, colors: dict) -> None:
    stats = per_shape(tests, metric)
    variants = sorted(stats["variant"].unique())
    span = float(np.ptp(stats["size"])) or 1.0
    for i, variant in enumerate(variants):
        s = stats[stats["variant"] == variant]
        dodge = (i - (len(variants) - 1) / 2) * 0.012 * span  # markers of models side by side
        duplicates = s["size"].duplicated().any()  # repeat copy: two shapes with one size
        ax.errorbar(s["size"] + dodge, s["median"],
                    yerr=[s["median"] - s["min"], s["max"] - s["median"]],
                    marker="o", ms=5, capsize=3, ls="none" if duplicates else "-",
                    color=colors[variant], label=variant)
    if metric == "cost_bits" and tests["optimal_cost_bits"].notna().any():
        optimal = tests.dropna(subset=["optimal_cost_bits"]).groupby("size")[
            "optimal_cost_bits"].median()
        ax.plot(optimal.index, optimal.to_numpy(), ls="--", marker="x", color="0.2",
                label="optimal estimator")


def generalization(table: pd.DataFrame, runs: pd.DataFrame, out_dir: Path,
                   colors: dict) -> FigureFile | None:
    tests = table[table["split"] == "test"].dropna(subset=["size"])
    if tests.empty:
        return None
    tasks = sorted(tests["task"].unique())
    footnotes = []
    with style():
        fig = Figure(figsize=(10, 3.6 * len(tasks) + 0.6), layout="constrained")
        axes = fig.subplots(len(tasks), 2, squeeze=False)  # a row per task, a column per metric
        for row, task in enumerate(tasks):
            rows = tests[tests["task"] == task]
            counts = rows.groupby("variant")["seed"].nunique().to_dict()
            ranges = [training_range(task, o) for o in runs[runs["task"] == task]["task_options"]]
            low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)  # every variant's
            shapes = rows.drop_duplicates("label")
            for col, (metric, ylabel) in enumerate(METRICS.items()):
                ax = axes[row, col]
                if low == high:
                    ax.axvline(low, color="0.55", ls=":", lw=2, label="training size")
                else:
                    ax.axvspan(low - 0.5, high + 0.5, color="0.88", label="training range")
                draw_metric(ax, rows, metric, colors)
                ax.set_xlabel(size_axis(task))
                ax.set_ylabel(ylabel)
                ax.set_ylim(bottom=0)
                ax.set_xlim(0, max(rows["size"].max(), high) * 1.06)  # room for the last marker
                ax.set_title(f"{task} ({seeds_text(counts)})", fontsize=10)
                if task in ("repeat_copy", "priority_sort"):  # name the shapes under their sizes
                    names = shapes.groupby("size").apply(
                        lambda g: ", ".join(g.apply(shape_name, axis=1)))
                    ticks = sorted({low, high, *names.index})
                    ax.set_xticks(ticks, [f"{t:g}" + (f"\n{names[t]}" if t in names.index else "")
                                          for t in ticks], fontsize=8)
            footnotes.append(f"{task}: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
        note_text = ("Marker: median over seeds; bar: lowest to highest seed; grey: the training "
                     "range. Seeds per model: " + "; ".join(footnotes))
        fig.suptitle("Generalization beyond the training range", fontsize=12)
        note(fig, note_text, handles(axes.flat))
    return save(fig, out_dir, "generalization", "Generalization",
                "Test cost and bit errors per sequence against the test size. " + note_text)
