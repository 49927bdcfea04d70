"""`ntmbench demo` (`make demo`): the quick reproduction plan (`bench/plans/quick.yaml`: copy, one
seed, NTM and LSTM, a few minutes on two CPU cores, W&B offline), its report, and the two models'
per-length bit errors side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from .plan import load_plan, planned_runs
from .reproduce import reproduce


def demo_command(out: Path, report: Path) -> int:
    reproduce("quick", out, report, {})
    runs = planned_runs(load_plan("quick"), out, {})
    rows = pd.concat(pd.read_csv(r.config.run_dir / "test_metrics.csv") for r in runs)
    models = list(dict.fromkeys(rows["model"]))
    steps = {r.config.model: r.config.max_steps * r.config.batch_size for r in runs}
    table = Table(title="copy (trained on lengths 1..20): bit errors per sequence, lower is better")
    table.add_column("test length", justify="right")
    for model in models:
        table.add_column(f"{model} ({steps[model]:,} sequences)", justify="right")
    for length, group in rows.groupby("length", sort=True):
        errors = group.set_index("model")["bit_errors"]
        table.add_row(str(length), *(f"{errors[m]:.2f}" for m in models))
    Console().print(table)
    print(f"W&B offline runs: wandb sync {out}/quick/*/wandb/offline-run-*")
    return 0
