"""Memory use (paper figure 6): for one test sequence, the inputs and outputs, and every write and
read head's weighting over the memory locations at every step, from an NTM checkpoint. Sharp
diagonal bands are the paper's "write in order, then read back in order"."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .figures import FigureFile, image_ticks, note, save, style
from .probes import Probe

CMAP = "magma"


def panels(probe: Probe) -> list[tuple[str, str, object]]:
    """(title, y label, image (rows, T)) from top to bottom for the probe's first shape."""
    batch, arrays = probe.batches[0], probe.arrays[0]
    out = [("inputs", "channel", batch["inputs"][0].T), ("outputs", "bit", arrays["outputs"][0].T)]
    for kind in ("write", "read"):
        weights = arrays[f"{kind}_weights"][0]  # (T, heads, N)
        for head in range(weights.shape[1]):
            out.append((f"{kind} weighting, head {head}", "location", weights[:, head, :].T))
    return out


def memory_figure(task: str, probes: list[Probe], out_dir: Path,
                  suffix: str = "") -> FigureFile:
    columns = [panels(p) for p in probes]
    rows = max(len(c) for c in columns)
    steps = probes[0].batches[0]["inputs"].shape[1]
    with style():
        fig = Figure(figsize=(min(4 + 0.05 * steps, 14) * len(probes), 1.6 * rows + 1.2),
                     layout="constrained")
        axes = fig.subplots(rows, len(probes), squeeze=False)
        for col, (probe, stack) in enumerate(zip(probes, columns)):
            for row, (title, ylabel, image) in enumerate(stack):
                ax = axes[row, col]
                ax.imshow(image, aspect="auto", cmap=CMAP, vmin=0, vmax=1,
                          interpolation="nearest", origin="upper")
                ax.set_title(f"{probe.variant}: {title}" if row == 0 else title, fontsize=9)
                ax.set_xlabel("time step", fontsize=8)
                ax.set_ylabel(ylabel, fontsize=8)
                image_ticks(ax, image.shape[0])
            for ax in axes[len(stack):, col]:
                ax.set_visible(False)
        mappable = axes[-1, 0].images[0] if axes[-1, 0].images else axes[0, 0].images[0]
        fig.colorbar(mappable, ax=axes, shrink=0.5, pad=0.01).set_label("weight / value", fontsize=8)
        text = (f"Test sequence {probes[0].labels[0]}. Shown: "
                + "; ".join(p.who for p in probes) + ".")
        fig.suptitle(f"{task}: NTM memory use", fontsize=12)
        note(fig, text)
    return save(fig, out_dir, f"memory_{task}{suffix}", f"Memory use: {task}",
                "Read and write weightings over time (as the paper's figure 6). " + text)
