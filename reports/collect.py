"""Runs -> tidy tables. A run is what `ntmbench train` leaves in a folder (or what W&B holds):

    DIR/config.yaml        the resolved RunConfig
    DIR/csv/metrics.csv    step, train/cost_bits, val/bit_errors, test/<label>/<metric>, ...
    DIR/test_metrics.csv   one row per test shape (optional: rebuilt from metrics.csv if absent)

`collect(["runs"])` gives a `Collection`:

    runs   one row per run:   run, task, model, variant, seed, batch_size, ..., checkpoint, tested
           (checkpoint: the one its test scored, best.ckpt or last.ckpt as `tested` says)
    table  one row per run and (split, step) or test shape, every metric a column:
           run task model variant seed split step sequences label size length ... cost_bits ...
           r0  copy ntm   ntm     0    val   2    12        NaN   NaN  NaN    ... 15.9
           r0  copy ntm   ntm     0    test  12   48        len_006 6  6     ... 48.4

`variant` is the model name, plus the options that differ when one (task, model) holds runs of
several configs, so that only runs differing in their seed are ever aggregated together.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import wandb
import yaml

from core.config import DISPLAY_FIELDS, load_yaml
from core.errors import RunError, first_line
from datamodules.registry import TASKS, build_task
from models.metrics import ALL_METRICS as METRICS

from .hardware import device_config, run_hardware
SHAPE_COLUMNS = ("length", "repeats", "items", "n_in", "n_out")
RUN_COLUMNS = ("run", "task", "model", "variant", "seed")
TABLE_COLUMNS = (*RUN_COLUMNS, "split", "step", "sequences", "label", "size", *SHAPE_COLUMNS,
                 *METRICS, "wall_s")
# config keys that never make two runs different experiments
NOT_A_VARIANT = {*DISPLAY_FIELDS, "hardware", "seed", "devices", "accelerator", "strategy", "val_every",
                 "val_batches", "val_batch_size", "test_batch_size", "checkpoint_every"}
NAMING = ("model_options.", "lr", "optimizer", "task_options.", "batch_size", "max_steps")


Record = tuple[str, dict[str, Any], pd.DataFrame, dict[str, Any]]  # name, config, rows, info


@dataclass
class Collection:
    runs: pd.DataFrame
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def size_of(task: str, shape: dict[str, Any]) -> float:
    """The number a test shape is plotted against (the task's `size`); NaN where a stored row
    lacks the shape parameters it needs."""
    try:
        return TASKS[task].size(shape)
    except (KeyError, TypeError, ValueError):
        return math.nan


def size_axis(task: str) -> str:
    return TASKS[task].size_axis if task in TASKS else "size"


def training_range(task: str, task_options: dict[str, Any]) -> tuple[float, float]:
    """The span of `size_of` that training covers (equal ends where training uses one size)."""
    t = build_task(task, **task_options)
    if task == "repeat_copy":
        return t.min_length * t.min_repeats, t.max_length * t.max_repeats
    if task == "associative_recall":
        return t.min_items, t.max_items
    if task == "ngrams":
        return t.train_length, t.train_length
    if task == "priority_sort":
        return t.train_n_in, t.train_n_in
    return t.min_length, t.max_length


def find_run_dirs(roots: Sequence[str | Path]) -> list[Path]:
    """Every folder under `roots` (or a root itself) that holds a config.yaml."""
    found: list[Path] = []
    for root in map(Path, roots):
        if not root.exists():
            raise RunError(f"runs folder {root} does not exist; pass --runs with a folder that "
                           f"ntmbench train wrote into (e.g. --runs runs)")
        if not root.is_dir():
            raise RunError(f"{root} is not a folder; pass --runs with a folder of runs")
        if not os.access(root, os.R_OK | os.X_OK):
            raise RunError(f"cannot read runs folder {root} (permission denied)")
        try:
            if (root / "config.yaml").is_file():
                found.append(root)
                continue
            configs = sorted(root.rglob("config.yaml"))
        except OSError as error:
            raise RunError(f"cannot read runs folder {root} ({error.strerror or error})") from None
        # a run's own wandb/ folder holds a config.yaml of W&B's: not a run
        found += [c.parent for c in configs if "wandb" not in c.relative_to(root).parts]
    return sorted(set(found))


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RunError(f"cannot read {path} ({first_line(error)})") from None
    if not isinstance(config, dict) or "task" not in config or "model" not in config:
        raise LookupError(f"skipped {path.parent}: its config.yaml names no task and model")
    return config


def curve_rows(metrics: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """Lightning's metrics (one logged row per step and stage) -> one row per (split, step).
    `sequences` is the paper's x-axis: read from train/sequences at the same step, else
    (step + 1) x batch size x devices (what the system logs)."""
    if "step" not in metrics.columns:
        raise RunError("metrics have no step column")
    per_step = config.get("batch_size", 1) * config.get("devices", 1)
    known = {}
    if "train/sequences" in metrics.columns:
        known = metrics.dropna(subset=["train/sequences"]).groupby("step")["train/sequences"].last()
    frames = []
    for split in ("train", "val"):
        columns = {f"{split}/{m}": m for m in METRICS if f"{split}/{m}" in metrics.columns}
        if not columns:
            continue
        if split == "val" and "val/wall_s" in metrics.columns:  # training seconds so far
            columns["val/wall_s"] = "wall_s"
        rows = metrics[["step", *columns]].dropna(subset=list(columns), how="all")
        rows = rows.rename(columns=columns).groupby("step", as_index=False).last()  # a resumed
        rows.insert(0, "split", split)  # run may have logged a step twice: keep the last value
        rows["sequences"] = [float(known.get(s, (s + 1) * per_step)) for s in rows["step"]]
        frames.append(rows)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def test_rows_from_metrics(metrics: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """Per-shape test rows rebuilt from `test/<label>/<metric>` columns (W&B history, or a run
    whose test_metrics.csv is missing), keyed by the shape itself via the task's labels."""
    task = build_task(config["task"], **(config.get("task_options") or {}))
    rows = []
    for shape in task.test_shapes():
        label = task.label(shape)
        values = {}
        for metric in METRICS:
            column = f"test/{label}/{metric}"
            if column in metrics.columns and metrics[column].notna().any():
                values[metric] = float(metrics[column].dropna().iloc[-1])
        if values:
            rows.append({"label": label, **shape, **values})
    return pd.DataFrame(rows)


def run_frames(name: str, config: dict[str, Any], metrics: pd.DataFrame,
               tests: pd.DataFrame | None) -> pd.DataFrame:
    """One run's rows of the tidy table (without `variant`, which needs every run)."""
    curves = curve_rows(metrics, config)
    if tests is None or tests.empty:
        tests = test_rows_from_metrics(metrics, config)
    tests = tests.drop(columns=[c for c in ("task", "model", "seed") if c in tests.columns])
    if not tests.empty:
        last_step = float(curves["step"].max()) if not curves.empty else math.nan
        last_seqs = float(curves["sequences"].max()) if not curves.empty else math.nan
        tests = tests.assign(split="test", step=last_step, sequences=last_seqs)
        tests["size"] = [size_of(config["task"], row) for row in tests.to_dict("records")]
    frame = pd.concat([f for f in (curves, tests) if not f.empty], ignore_index=True)
    frame.insert(0, "run", name)
    frame.insert(1, "task", config["task"])
    frame.insert(2, "model", config["model"])
    frame.insert(3, "seed", int(config.get("seed", 0)))
    return frame


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"model_options": {"heads": 2}}` -> `{"model_options.heads": "2"}`; values as text, since a
    run from the command line stores `"2"` where one from Python stores `2`."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(list(value) if isinstance(value, tuple) else value)
    return out


def variants(configs: Sequence[dict[str, Any]], limit: int | None = 3) -> list[str]:
    """The model name, plus `key=value` for the options that differ between runs of the same task
    and model, so runs of different configs are never taken for seeds of one. Names show at most
    `limit` keys, model options first; the full difference is kept where shorter names collide."""
    flat = [flatten({k: v for k, v in c.items() if k not in NOT_A_VARIANT}) for c in configs]
    full, short = [], []
    for config, values in zip(configs, flat):
        peers = [f for c, f in zip(configs, flat)
                 if (c["task"], c["model"]) == (config["task"], config["model"])]
        keys = sorted({k for f in peers for k in f if any(f.get(k) != values.get(k) for f in peers)},
                      key=lambda k: (next((i for i, p in enumerate(NAMING) if k.startswith(p)),
                                          len(NAMING)), k))
        def name(keys: list[str]) -> str:
            extra = ", ".join(f"{k.split('.')[-1]}={values.get(k)}" for k in keys)
            return f"{config['model']} ({extra})" if extra else config["model"]

        full.append(name(keys))
        cut = limit is not None and len(keys) > limit
        short.append(name(keys[:limit])[:-1] + ", ...)" if cut else name(keys))
    pairs = set(zip(short, full))
    clash = len({s for s, _ in pairs}) < len(pairs)
    return full if clash else short


def assemble(records: Iterable[Record], notes: list[str]) -> Collection:
    """(name, config, tidy rows, run info) per run -> the Collection, variants named."""
    records = list(records)
    counts = pd.Series([name for name, _, _, _ in records]).value_counts()
    records = [(info["source"], config, frame.assign(run=info["source"]), info)  # same name
               if counts[name] > 1 else (name, config, frame, info)  # under two roots: use paths
               for name, config, frame, info in records]
    names = variants([config for _, config, _, _ in records])
    full = variants([config for _, config, _, _ in records], limit=None)
    notes = notes + sorted({f"variant {n} is {f}" for n, f in zip(names, full) if n != f})
    runs, frames = [], []
    for (name, config, frame, info), variant in zip(records, names):
        runs.append({"run": name, "task": config["task"], "model": config["model"],
                     "variant": variant, "seed": int(config.get("seed", 0)),
                     "batch_size": config.get("batch_size"), "max_steps": config.get("max_steps"),
                     "lr": config.get("lr"), "task_options": config.get("task_options") or {},
                     "wandb_project": config.get("wandb_project"), **info})
        frames.append(frame.assign(variant=variant))
    table = pd.concat(frames, ignore_index=True)
    for column in TABLE_COLUMNS:
        if column not in table.columns:
            table[column] = math.nan
    table = table[[*TABLE_COLUMNS, *[c for c in table.columns if c not in TABLE_COLUMNS]]]
    table = table.sort_values(["task", "variant", "seed", "split", "step", "size"],
                              kind="stable", ignore_index=True)
    return Collection(pd.DataFrame(runs), table, notes)


def read_local_run(path: Path, root: Path) -> tuple[str, dict[str, Any], pd.DataFrame, dict]:
    config = read_config(path / "config.yaml")
    metrics_file = path / "csv" / "metrics.csv"
    try:
        metrics = pd.read_csv(metrics_file)
    except FileNotFoundError:
        raise LookupError(f"skipped {path}: no csv/metrics.csv yet") from None
    except (OSError, ValueError) as error:
        raise LookupError(f"skipped {path}: unreadable csv/metrics.csv ({error})") from None
    if "step" not in metrics.columns:
        raise LookupError(f"skipped {path}: csv/metrics.csv has no step column")
    tests_file = path / "test_metrics.csv"
    try:
        tests = pd.read_csv(tests_file) if tests_file.is_file() else None
    except (OSError, ValueError):  # damaged: rebuilt from the test columns of metrics.csv
        tests = None
    name = path.name if path == root else str(path.relative_to(root))
    checkpoint, tested = tested_checkpoint(path, config)
    info = {"source": str(path), "checkpoint": str(checkpoint) if checkpoint.is_file() else "",
            "tested": tested, "hardware": run_hardware(read_starts(path / "hardware.json"))}
    return name, config, run_frames(name, config, metrics, tests), info


def read_starts(path: Path) -> list[dict[str, Any]]:
    """RUN/hardware.json's entries (none where it is missing or damaged: hardware unknown)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def tested_checkpoint(path: Path, config: dict[str, Any]) -> tuple[Path, str]:
    """The checkpoint a run's test scored, and which it is: best.ckpt (the lowest validation
    cost) for a run with `test_on: best` that has one, else last.ckpt. The report's figures and
    tables of one checkpoint show that one, so they agree with the test rows."""
    best = path / "checkpoints" / "best.ckpt"
    if config.get("test_on") == "best" and best.is_file():
        return best, "best"
    return path / "checkpoints" / "last.ckpt", "last"


def local_records(roots: Sequence[str | Path]) -> tuple[list[Record], list[str]]:
    """Every run under `roots`. A folder with a config but no metrics yet (a run still starting)
    is skipped with a note."""
    records, notes = [], []
    for path in find_run_dirs(roots):
        root = next(Path(r) for r in roots if path == Path(r) or Path(r) in path.parents)
        try:
            records.append(read_local_run(path, root))
        except LookupError as skipped:
            notes.append(str(skipped))
    return records, notes


def wandb_records(project: str, api: Any = None) -> tuple[list[Record], list[str]]:
    """Runs of a W&B project (`ENTITY/PROJECT`), read through the public API: each run's config
    and its full history, turned into the same rows as local runs (no checkpoints)."""
    if api is None:
        try:
            api = wandb.Api(timeout=30)
        except Exception as error:  # no key, no network: wandb raises several kinds
            raise RunError(f"cannot reach the W&B API ({first_line(error)}); log in with "
                           f"`wandb login`, or read local runs with --runs") from None
    try:
        remote = list(api.runs(project))
    except Exception as error:
        raise RunError(f"cannot list the W&B runs of {project} ({first_line(error)})") from None
    records, notes = [], []
    for run in remote:
        config = dict(run.config)
        if "task" not in config or "model" not in config:
            notes.append(f"skipped W&B run {run.name}: no task or model in its config")
            continue
        history = pd.DataFrame(list(run.scan_history()))
        for step in ("trainer/global_step", "_step"):  # Lightning's step, else W&B's own
            if step in history.columns:
                history["step"] = history[step]
                break
        if history.empty or "step" not in history.columns:
            notes.append(f"skipped W&B run {run.name}: no history")
            continue
        name = f"wandb:{run.name}"
        info = {"source": f"wandb:{project}/{run.id}", "checkpoint": "", "tested": "",
                "hardware": device_config(config.get("hardware"))}
        records.append((name, config, run_frames(name, config, history, None), info))
    return records, notes


def collect(roots: Sequence[str | Path] = (), wandb_project: str | None = None,
            api: Any = None) -> Collection:
    """The runs under `roots` and, with `wandb_project`, those W&B holds; no run is an error."""
    records, notes = local_records(roots) if roots else ([], [])
    if wandb_project:
        more, more_notes = wandb_records(wandb_project, api)
        records, notes = records + more, notes + more_notes
    if not records:
        where = ", ".join([*map(str, roots), *([f"W&B {wandb_project}"] if wandb_project else [])])
        raise RunError(f"no runs found in {where} (a run folder holds config.yaml and "
                       f"csv/metrics.csv, as ntmbench train writes them)"
                       + (f"; {notes[0]}" if notes else ""))
    return assemble(records, notes)
