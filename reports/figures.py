"""What every figure shares: a pyplot-free Figure (Agg, no display, no global figure list), one
seaborn style, the seed count printed on it, and saving as PNG and PDF side by side."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never look for a display

import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator  # noqa: E402

DPI = 120


@dataclass
class FigureFile:
    """A saved figure: its name, caption, files, and the axis labels it was drawn with."""

    name: str
    title: str
    caption: str
    png: Path
    pdf: Path
    axis_labels: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def style():
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        yield


def palette(variants: list[str]) -> dict[str, tuple]:
    """One colour per variant, the same in every figure of a report."""
    return dict(zip(variants, sns.color_palette("colorblind", max(len(variants), 1))))


def seeds_text(counts: dict[str, int]) -> str:
    """`2 seeds per model`, or `1-3 seeds per model` where models differ."""
    low, high = min(counts.values()), max(counts.values())
    n = f"{low}" if low == high else f"{low}-{high}"
    return f"{n} seed{'s' if high != 1 else ''} per model"


def note(fig: Figure, text: str, legend: dict | None = None) -> None:
    """Below the panels: one legend for the figure (label -> handle), then the footnote every
    figure carries (how it aggregates and over how many seeds). Both hang below the figure's
    bottom edge; saving with a tight box takes them in, so they never cover a panel."""
    y = 0.0
    if legend:
        wide = max(map(len, legend)) > 30
        box = fig.legend(list(legend.values()), list(legend), loc="upper center",
                         bbox_to_anchor=(0.5, 0.0), ncol=1 if wide else min(len(legend), 6),
                         fontsize=8, frameon=False)
        fig.draw_without_rendering()  # lay out, to learn how tall the legend is
        y = box.get_window_extent().transformed(fig.transFigure.inverted()).y0
    fig.text(0.01, y - 0.01, text, fontsize=8, color="0.3", ha="left", va="top", wrap=True)


def image_ticks(ax, rows: int) -> None:
    """Whole-number ticks on an image of `rows` rows (bits, channels, locations) over time."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.yaxis.set_major_locator(FixedLocator(range(rows)) if rows <= 4
                               else MaxNLocator(integer=True, nbins=5))
    ax.tick_params(labelsize=7)
    ax.grid(False)


def handles(axes) -> dict:
    """label -> handle over several axes, first seen kept (for one legend per figure)."""
    out = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            out.setdefault(label, handle)
    return out


def save(fig: Figure, out_dir: Path, name: str, title: str, caption: str) -> FigureFile:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes
              if ax.get_visible() and ax.has_data() and ax.get_label() != "<colorbar>"]
    fig.draw_without_rendering()  # lay the figure out once, then freeze it: both files share
    fig.set_layout_engine("none")  # that layout and one tight box (each layout costs a draw)
    box = fig.get_tightbbox().padded(0.1)
    fig.savefig(png, dpi=DPI, bbox_inches=box)
    fig.savefig(pdf, bbox_inches=box)
    return FigureFile(name, title, caption, png, pdf, labels)
