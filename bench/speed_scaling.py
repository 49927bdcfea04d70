"""Target 5: training step time against memory size N, copy length L, batch size and heads.

Each sweep moves one size away from the base point (N = 128, L = 20 so T = 41, batch 32, one
head pair) for ntm, ntm-ff and lstm (the LSTM has no memory or heads: it appears in the L and
batch sweeps only). Steps are the fused eager path (no compile, so no size pays a compile), one
thread, CPU time, the fastest of `repeats` calls (other processes on a shared machine only ever
add time, so the minimum is the steadiest estimate). The exponent of each sweep is the slope of
log(time) against log(size) between its smallest and largest sizes: 1 is linear.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never look for a display (before pyplot is imported)
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from core.tables import markdown  # noqa: E402
from models.presets import preset  # noqa: E402

from .speed_timing import clocks, copy_batch, ntm_step  # noqa: E402

BASE = {"memory_size": 128, "length": 20, "batch": 32, "heads": 1}
SWEEPS = {
    "memory_size": (32, 128, 512, 2048),
    "length": (10, 20, 40, 80, 120),
    "batch": (1, 8, 32, 128),
    "heads": (1, 2, 4),
}
QUICK_SWEEPS = {"memory_size": (32, 128), "length": (10, 20), "batch": (1, 8), "heads": (1, 2)}
MODELS = ("ntm", "ntm-ff", "lstm")
LABELS = {"memory_size": "memory size N", "length": "copy length L (T = 2L + 1)",
          "batch": "batch size", "heads": "read/write head pairs"}


def model_options(model: str, point: dict, mode: str) -> dict:
    options = dict(preset("paper", "copy", model)["options"])
    if model != "lstm":
        options.update(memory_size=point["memory_size"], heads=point["heads"], fused=mode)
    return options


def time_point(model: str, point: dict, device: torch.device, repeats: int, mode: str) -> float:
    """Fastest CPU (GPU: wall) seconds of one training step at `point` over `repeats` calls."""
    batch = copy_batch(point["batch"], point["length"], device)
    step = ntm_step(model, model_options(model, point, mode), batch, device)
    now = clocks(device)
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = now()[0]
        step()
        times.append(now()[0] - start)
    return min(times)


def scaling_section(device: torch.device, quick: bool = False, mode: str = "eager") -> pd.DataFrame:
    sweeps = QUICK_SWEEPS if quick else SWEEPS
    rows = []
    for sweep, values in sweeps.items():
        for model in MODELS:
            if model == "lstm" and sweep in ("memory_size", "heads"):
                continue
            for value in values:
                point = dict(BASE, **{sweep: value})
                seconds = time_point(model, point, device, 2 if quick else 5, mode)
                rows.append({"sweep": sweep, "model": model, "value": value, **point,
                             "T": 2 * point["length"] + 1, "path": mode if model != "lstm" else "",
                             "ms_per_step": 1e3 * seconds,
                             "us_per_sequence_step": 1e6 * seconds / (
                                 point["batch"] * (2 * point["length"] + 1))})
                print(f"  {sweep}={value} {model}: {1e3 * seconds:.1f} ms", flush=True)
    return pd.DataFrame(rows)


def exponents(df: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, model): log-log slope of time against the size, smallest to largest size,
    and the slope of each consecutive pair (where growth departs from linear)."""
    rows = []
    for (sweep, model), g in df.groupby(["sweep", "model"], sort=False):
        g = g.sort_values("value")
        x = g["T"].to_numpy() if sweep == "length" else g["value"].to_numpy()
        y = g["ms_per_step"].to_numpy()
        pairs = [math.log(y[i + 1] / y[i]) / math.log(x[i + 1] / x[i]) for i in range(len(x) - 1)]
        rows.append({"sweep": sweep, "model": model,
                     "exponent": math.log(y[-1] / y[0]) / math.log(x[-1] / x[0]),
                     "pairwise": ", ".join(f"{p:.2f}" for p in pairs),
                     "ms_smallest": y[0], "ms_largest": y[-1]})
    return pd.DataFrame(rows)


def scaling_table(df: pd.DataFrame) -> str:
    e = exponents(df)
    e["sweep"] = e["sweep"].map(lambda s: LABELS[s] + (" (over T)" if s == "length" else ""))
    return markdown(e, {"sweep": "sweep", "model": "model", "exponent": "exponent",
                        "pairwise": "exponent between neighbours", "ms_smallest": "ms smallest",
                        "ms_largest": "ms largest"},
                    {"exponent": ".2f", "ms_smallest": ".1f", "ms_largest": ".1f"})


def plot_scaling(df: pd.DataFrame, path: Path) -> None:
    """One log-log panel per sweep: ms per training step against the size, one line per model,
    with a dashed linear reference through the ntm's smallest point."""
    sweeps = list(dict.fromkeys(df["sweep"]))
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.6))
    for ax, sweep in zip(axes if len(sweeps) > 1 else [axes], sweeps):
        g = df[df["sweep"] == sweep].copy()
        g["x"] = g["T"] if sweep == "length" else g["value"]
        sns.lineplot(data=g, x="x", y="ms_per_step", hue="model", hue_order=MODELS, marker="o",
                     ax=ax)
        first = g[g["model"] == "ntm"].sort_values("x").iloc[0]
        xs = sorted(g["x"].unique())
        ax.plot(xs, [first["ms_per_step"] * x / first["x"] for x in xs], "k--", lw=0.8,
                label="linear")
        ax.set(xscale="log", yscale="log", xlabel=LABELS[sweep].replace("copy length L", "steps T")
               if sweep == "length" else LABELS[sweep], ylabel="ms per training step", title="")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(xs))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.suptitle("Training step time (CPU, 1 thread; fused eager path)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
