"""Learning curves (paper figures 3, 7, 10, 13, 16): validation cost per sequence in bits against
sequences seen, one panel per task, one line per model variant: the median over seeds, with a band
from the lowest to the highest seed. Seeds logged at other points are interpolated onto the
points the task's runs share, never extrapolated past the end of a run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import FigureFile, handles, note, save, seeds_text, style


def on_common_grid(curves: pd.DataFrame, x: str = "sequences", y: str = "cost_bits") -> pd.DataFrame:
    """Each run's (x, y) interpolated onto the union of every run's x, within its own range."""
    curves = curves.dropna(subset=[x, y])
    grid = np.unique(curves[x].to_numpy(dtype=float))
    frames = []
    for run, c in curves.groupby("run", sort=True):
        c = c.sort_values(x)
        xs, ys = c[x].to_numpy(dtype=float), c[y].to_numpy(dtype=float)
        inside = grid[(grid >= xs.min()) & (grid <= xs.max())]
        frames.append(pd.DataFrame({"run": run, "variant": c["variant"].iloc[0],
                                    "seed": c["seed"].iloc[0], x: inside,
                                    y: np.interp(inside, xs, ys)}))
    return pd.concat(frames, ignore_index=True)


def seed_counts(frame: pd.DataFrame) -> dict[str, int]:
    return frame.groupby("variant")["seed"].nunique().to_dict()


def learning_curves(table: pd.DataFrame, out_dir: Path, colors: dict) -> FigureFile | None:
    val = table[(table["split"] == "val")].dropna(subset=["cost_bits", "sequences"])
    if val.empty:
        return None
    tasks = sorted(val["task"].unique())
    ncols = min(len(tasks), 3)
    nrows = math.ceil(len(tasks) / ncols)
    footnotes = []
    with style():
        fig = Figure(figsize=(5.2 * ncols, 3.9 * nrows + 0.5), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, task in zip(axes.flat, tasks):
            runs = val[val["task"] == task]
            data = on_common_grid(runs)
            counts = seed_counts(runs)
            scale = 1000.0 if data["sequences"].max() >= 10_000 else 1.0
            data["x"] = data["sequences"] / scale
            order = sorted(counts)
            sns.lineplot(data=data, x="x", y="cost_bits", hue="variant", hue_order=order,
                         palette=[colors[v] for v in order], estimator="median",
                         errorbar=("pi", 100), ax=ax, legend=False)
            if runs["optimal_cost_bits"].notna().any():  # n-grams: the Bayesian optimal predictor
                optimal = runs.dropna(subset=["optimal_cost_bits"]).groupby("sequences")[
                    "optimal_cost_bits"].median()
                ax.plot(optimal.index / scale, optimal.to_numpy(), ls="--", color="0.2",
                        label="optimal estimator")
            ax.set_title(f"{task} ({seeds_text(counts)})", fontsize=10)
            ax.set_xlabel("sequences seen" + (" (thousands)" if scale > 1 else ""))
            ax.set_ylabel("validation cost per sequence (bits)")
            ax.set_ylim(bottom=0)
            footnotes.append(f"{task}: " + ", ".join(f"{v} {counts[v]}" for v in order))
        for ax in list(axes.flat)[len(tasks):]:
            ax.set_visible(False)
        note_text = ("Line: median over seeds; band: lowest to highest seed. Seeds per model: "
                     + "; ".join(footnotes))
        fig.suptitle("Learning curves", fontsize=12)
        legend = {v: Line2D([], [], color=colors[v], lw=2) for v in sorted(val["variant"].unique())}
        note(fig, note_text, legend | handles(axes.flat))  # one legend, below the panels
    return save(fig, out_dir, "learning_curves", "Learning curves",
                "Validation cost per sequence (bits) against sequences seen, as in the paper's "
                "figures 3, 7, 10, 13 and 16. " + note_text)
