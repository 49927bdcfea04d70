"""`ntmbench report`: stored runs (and Optuna studies) -> tables, figures, index.html, summary.md.

    OUT/table.csv            tidy: one row per run and (split, step) or test shape (or .parquet)
    OUT/results.csv          per task, variant and test shape: seeds, convergence, test cost
    OUT/hardware.csv         per task, variant and device configuration: seeds, sequences and
                             wall seconds to converge, final test metrics (reports/hardware.py)
    OUT/end_marker.csv       repeat copy: when each run emits its end marker (reports/end_marker.py)
    OUT/sweep_trials.csv     one row per trial (with --study)
    OUT/figures/NAME.png|pdf learning_curves, generalization, outputs_TASK, memory_TASK,
                             priority_writes_priority_sort, sweep_history, sweep_importance
    OUT/index.html           everything in one file that opens from disk
    OUT/summary.md           the same for the README to link
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import RunError
from core.files import atomic_write, write_csv

from .collect import collect
from .converge import DEFAULT_THRESHOLD
from .curves import learning_curves
from .end_marker import end_marker_table
from .figures import FigureFile, palette
from .generalization import generalization
from .hardware import compared, hardware_table
from .html import Page, write_pages
from .memory import memory_figure
from .outputs import outputs_figure
from .priority_writes import priority_writes_figure
from .probes import probes
from .results import display_tables, fmt_number, results_table
from .sweeps import history_figure, importance_figure, importances, load_studies, trials_table
from .wandb_report import log_report


@dataclass
class Report:
    out: Path
    index: Path
    summary: Path
    table: Path
    figures: list[FigureFile]
    notes: list[str] = field(default_factory=list)
    runs: pd.DataFrame | None = None  # one row per run read (the collection's runs), if any
    files: list[str] = field(default_factory=list)  # the data files written beside the pages
    sources: str = ""  # what it read, in words
    command: str = ""

    @property
    def summary_files(self) -> list[str]:
        """The data files a W&B report run logs: all but the tidy table (the runs' own rows)."""
        return [f for f in self.files if f != self.table.name]


def write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        atomic_write(path, lambda f: frame.to_parquet(f, index=False))
    else:
        write_csv(path, frame)


def check_format(table_format: str) -> None:
    if table_format == "parquet":
        try:
            import pyarrow  # noqa: F401  (an optional dependency: the parquet extra)
        except ImportError:
            raise RunError("--table-format parquet needs pyarrow: pip install -e '.[parquet]' "
                           "(or use --table-format csv)") from None


def run_figures(collection, figures_dir: Path, shapes: int) -> tuple[list[FigureFile], list[str]]:
    colors = palette(sorted(collection.runs["variant"].unique()))
    figures = [f for f in (learning_curves(collection.table, figures_dir, colors),
                           generalization(collection.table, collection.runs, figures_dir, colors))
               if f is not None]
    found, notes = probes(collection, shapes)
    by_task: dict[tuple, list] = defaultdict(list)
    for probe in found:  # variants with other test shapes (task options) get their own figure
        by_task[(probe.task, tuple(probe.labels))].append(probe)
    seen: dict[str, int] = defaultdict(int)
    for (task, _), group in sorted(by_task.items()):
        suffix = f"_{seen[task] + 1}" if seen[task] else ""  # outputs_copy, outputs_copy_2, ...
        seen[task] += 1
        figures.append(outputs_figure(task, group, figures_dir, suffix))
        ntms = [p for p in group if "read_weights" in p.arrays[0]]
        if ntms:
            figures.append(memory_figure(task, ntms, figures_dir, suffix))
            if task == "priority_sort":  # the paper's figure 17
                figures.append(priority_writes_figure(ntms, figures_dir, suffix))
    return figures, notes


def build_report(runs: list[str], studies: list[str], storage: str | None,
                 wandb_project: str | None, out: str, threshold: float = DEFAULT_THRESHOLD,
                 table_format: str = "csv", shapes: int = 3, command: str = "ntmbench report",
                 api=None) -> Report:
    if studies and not storage:
        raise RunError("--study needs --storage URL (e.g. --storage sqlite:///runs/sweeps/studies.db)")
    if storage and not studies:
        raise RunError("--storage needs at least one --study NAME")
    if not (threshold > 0):
        raise RunError(f"--threshold must be > 0 (got {threshold})")
    check_format(table_format)
    if not runs and not studies and not wandb_project:
        runs = ["runs"]
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise RunError(f"--out {root} is a file; pass a folder, e.g. reports/latest")

    collection = collect(runs, wandb_project, api) if runs or wandb_project else None
    loaded = []
    if studies:
        loaded = load_studies(studies, storage)

    figures_dir = root / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    for old in [*figures_dir.glob("*.png"), *figures_dir.glob("*.pdf")]:
        old.unlink()  # a figure of an earlier report that this one no longer draws
    figures: list[FigureFile] = []
    notes: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    files: list[str] = []
    table_path = root / f"table.{table_format}"
    sources = []
    if collection is not None:
        notes += collection.notes
        write_table(collection.table, table_path)
        results = results_table(collection.table, threshold)
        write_csv(root / "results.csv", results)
        files += [table_path.name, "results.csv"]
        tables = {f"{task}: {len(collection.runs[collection.runs['task'] == task])} runs": t
                  for task, t in display_tables(results, threshold).items()}
        by_hardware = hardware_table(collection.runs, collection.table, threshold)
        write_csv(root / "hardware.csv", by_hardware)
        files.append("hardware.csv")
        tables.update(hardware_tables(compared(by_hardware), threshold))
        more, more_notes = run_figures(collection, figures_dir, shapes)
        figures += more
        notes += more_notes
        if (collection.runs["task"] == "repeat_copy").any():
            markers, marker_notes = end_marker_table(collection.runs)
            notes += marker_notes
            if not markers.empty:
                write_csv(root / "end_marker.csv", markers)
                files.append("end_marker.csv")
                tables["repeat_copy: the end marker (marker_copies: median copies early (-) "
                       "or late (+) when it first fires)"] = markers.round(2)
        sources.append(f"{len(collection.runs)} runs "
                       f"({', '.join(sorted(collection.runs['task'].unique()))})")
    if loaded:
        trials = trials_table(loaded)
        write_csv(root / "sweep_trials.csv", trials)
        imp, imp_notes = importances(loaded)
        write_csv(root / "sweep_importances.csv", imp)
        files += ["sweep_trials.csv", "sweep_importances.csv"]
        notes += imp_notes
        history = history_figure(trials, figures_dir) if not trials.empty else None
        if history is None:
            notes.append("no finished trials in the studies: no sweep history figure")
        figures += [f for f in (history, importance_figure(imp, trials, figures_dir)) if f]
        sources.append(f"{len(loaded)} Optuna study(ies) ({', '.join(s.study_name for s in loaded)})")
    if not figures:
        notes.append("nothing to draw: no validation or test metrics, and no finished trials")
    page = Page(title=f"ntmbench report: {root.name}", command=command,
                sources=" and ".join(sources), tables=tables, figures=figures, notes=notes,
                files=files)
    index, summary = write_pages(page, root)
    return Report(root, index, summary, table_path, figures, notes,
                  collection.runs if collection is not None else None, files, page.sources, command)


def hardware_tables(rows: pd.DataFrame, threshold: float) -> dict[str, pd.DataFrame]:
    """Per task run on more than one device configuration: its rows, for reading."""
    out = {}
    for task, frame in rows.groupby("task", sort=True):
        shown = pd.DataFrame({
            "variant": frame["variant"], "hardware": frame["hardware"],
            "converged": [f"{c}/{n}" for c, n in zip(frame["converged"], frame["seeds"])],
            f"sequences to bit errors < {threshold:g}": frame["seqs_to_converge"].map(fmt_number),
            "seconds to it": frame["wall_s_to_converge"].map(fmt_number),
            "training seconds": frame["wall_s"].map(fmt_number),
            "test cost (bits)": frame["cost_bits"].map(fmt_number),
            "test bit errors": frame["bit_errors"].map(fmt_number)})
        out[f"{task} across hardware (medians over seeds; test: mean over the test shapes)"] = shown
    return out


def command_line(args) -> str:
    """The command, as a person would type it, for the report to say what made it."""
    parts = ["ntmbench", "report"]
    parts += [x for r in args.runs or [] for x in ("--runs", r)]
    parts += [x for s in args.study or [] for x in ("--study", s)]
    for flag, value in (("--storage", args.storage), ("--wandb-project", args.wandb_project)):
        parts += [flag, value] if value else []
    if args.threshold != DEFAULT_THRESHOLD:
        parts += ["--threshold", f"{args.threshold:g}"]
    if args.table_format != "csv":
        parts += ["--table-format", args.table_format]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def report_command(args) -> int:
    command = command_line(args)
    report = build_report(args.runs or [], args.study or [], args.storage, args.wandb_project,
                          args.out, args.threshold, args.table_format, args.shapes, command)
    for line in report.notes:
        print(f"note: {line}")
    print(f"{len(report.figures)} figures (PNG and PDF) in {report.out / 'figures'}")
    print(f"open {report.index}  (summary for the README: {report.summary})")
    log_report(report, args.wandb_project, args.wandb_mode, args.wandb_entity)
    return 0
