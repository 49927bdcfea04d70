"""Priority sort's write locations (paper figure 17): for every input vector of the test
sequences, its priority against where the NTM's write head puts it (the location of the largest
write weight while the vector arrives). The paper's NTM writes each vector at a location that is
a linear function of its priority, so that reading the locations in order reads the vectors
sorted; the figure shows whether a trained model does the same, and its caption gives the rank
correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .figures import FigureFile, note, save, style
from .probes import Probe


def write_points(probe: Probe) -> tuple[np.ndarray, np.ndarray]:
    """(priorities, write locations) of every input vector in the probe's test sequences."""
    priorities, locations = [], []
    for batch, arrays in zip(probe.batches, probe.arrays):
        inputs = batch["inputs"][0]  # (T, W + 2): bits, priority, delimiter
        width = inputs.shape[1] - 2
        n_in = int(np.argmax(inputs[:, width + 1]))  # the delimiter's step
        writes = arrays["write_weights"][0, :n_in, 0, :]  # (n_in, N): the first write head
        priorities.append(inputs[:n_in, width])
        locations.append(writes.argmax(axis=1))
    return np.concatenate(priorities), np.concatenate(locations)


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (ranks' Pearson correlation; ties ranked by order, enough for a caption)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def priority_writes_figure(probes: list[Probe], out_dir: Path, suffix: str = "") -> FigureFile:
    with style():
        fig = Figure(figsize=(4.2 * len(probes), 3.8), layout="constrained")
        axes = fig.subplots(1, len(probes), squeeze=False)[0]
        found = []
        for ax, probe in zip(axes, probes):
            priority, location = write_points(probe)
            rho = rank_correlation(priority, location)
            ax.scatter(priority, location, s=12, alpha=0.8)
            ax.set_title(f"{probe.variant}: rank correlation {rho:.2f}", fontsize=9)
            ax.set_xlabel("input priority")
            ax.set_ylabel("write location (largest weight)")
            found.append(f"{probe.who}: rho {rho:.2f} over {len(priority)} vectors")
        text = (f"Test sequences {', '.join(probes[0].labels)}. Shown: " + "; ".join(found) + ".")
        fig.suptitle("priority_sort: write locations against priorities", fontsize=12)
        note(fig, text)
    return save(fig, out_dir, f"priority_writes_priority_sort{suffix}",
                "Priority sort: write locations",
                "Where the write head puts each input vector, against its priority (as the "
                "paper's figure 17, where the locations are a linear function of the priority). "
                + text)
