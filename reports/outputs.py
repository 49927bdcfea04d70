"""Outputs vs targets as images (paper figures 4 and 5): for a few test shapes, the target bits
and the model's output probabilities over the scored steps, one pair of rows per model variant.
Columns are as wide as their sequences are long, so time runs at one scale across the figure."""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from .figures import FigureFile, image_ticks, note, save, style
from .probes import Probe

CMAP = "viridis"


def scored(batch: dict, arrays: dict) -> tuple:
    """(targets, outputs) over the scored steps, each (O, steps): bits down, time across."""
    mask = batch["mask"][0]  # (T,)
    return batch["targets"][0][mask].T, arrays["outputs"][0][mask].T


def outputs_figure(task: str, probes: list[Probe], out_dir: Path,
                   suffix: str = "") -> FigureFile:
    labels = probes[0].labels
    steps = [scored(b, a)[0].shape[1] for b, a in zip(probes[0].batches, probes[0].arrays)]
    widths = [max(1.7, 0.07 * n) for n in steps]  # inches: longer sequences, wider columns
    with style():
        fig = Figure(figsize=(min(1.5 + sum(widths), 18), 1.7 * 2 * len(probes) + 1.2),
                     layout="constrained")
        axes = fig.subplots(2 * len(probes), len(labels), squeeze=False,
                            gridspec_kw={"width_ratios": widths})
        image = None
        for p_index, probe in enumerate(probes):
            name = textwrap.fill(probe.variant, 24)  # long variant names over a few lines
            for col, (batch, arrays) in enumerate(zip(probe.batches, probe.arrays)):
                targets, outputs = scored(batch, arrays)
                for kind, bits, ax in (("targets", targets, axes[2 * p_index, col]),
                                       ("outputs", outputs, axes[2 * p_index + 1, col])):
                    image = ax.imshow(bits, aspect="auto", cmap=CMAP, vmin=0, vmax=1,
                                      interpolation="nearest")
                    ax.set_xlabel("scored step", fontsize=8)
                    ax.set_ylabel(f"{name}\n{kind}\nbit" if col == 0 else "bit",
                                  fontsize=8)
                    image_ticks(ax, bits.shape[0])
                    if p_index == 0 and kind == "targets":
                        ax.set_title(labels[col], fontsize=10)
        colorbar = fig.colorbar(image, ax=axes, shrink=0.6, pad=0.01)
        colorbar.set_label("bit value / output probability", fontsize=8)
        text = "Shown: " + "; ".join(p.who for p in probes) + ". One test sequence per shape."
        fig.suptitle(f"{task}: outputs vs targets", fontsize=12)
        note(fig, text)
    return save(fig, out_dir, f"outputs_{task}{suffix}", f"Outputs vs targets: {task}",
                "Target bits and output probabilities over the scored steps of test sequences "
                "(as the paper's figures 4 and 5). " + text)
