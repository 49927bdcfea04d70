"""`ntmbench demo` (`make demo`): the quick reproduction plan (`bench/plans/quick.yaml`: copy,
three NTM seeds as one population against the LSTM, a few minutes on two CPU cores, W&B
offline), its report, and every run's
bit errors side by side: on the training lengths at its last validation, and per test length;
then how many NTM seeds ended below 0.1 bit errors per sequence on the training lengths."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from core.config import CONVERGED_BELOW

from .plan import load_plan, planned_runs
from .reproduce import reproduce


def last_validation(run_dir: Path) -> float:
    """The run's last validation bit errors per sequence (training lengths)."""
    metrics = pd.read_csv(run_dir / "csv" / "metrics.csv").dropna(subset=["val/bit_errors"])
    return float(metrics.sort_values("step")["val/bit_errors"].iloc[-1])


def demo_command(out: Path, report: Path) -> int:
    # the NTM population and the LSTM side by side, a core each (a second thread makes a step
    # only about 1.2x faster, so two jobs at once beat one job with two threads)
    reproduce("quick", out, report, {}, workers=min(2, len(os.sched_getaffinity(0))))
    runs = sorted((r.config for r in planned_runs(load_plan("quick"), out, {})),
                  key=lambda c: (c.model != "ntm", c.model, c.seed))
    tests = {c.run_dir: pd.read_csv(c.run_dir / "test_metrics.csv").set_index("length") for c in runs}
    last = [last_validation(c.run_dir) for c in runs]
    table = Table(title="copy: bit errors per sequence, lower is better")
    table.add_column("length", justify="right")
    for c in runs:
        table.add_column(f"{c.model} seed {c.seed}", justify="right")
    table.add_row("1..20", *(f"{v:.2f}" for v in last))
    for length in sorted(set().union(*(t.index for t in tests.values()))):
        table.add_row(str(length), *(f"{tests[c.run_dir].loc[length, 'bit_errors']:.2f}" for c in runs))
    Console().print(table)
    budget = ", ".join(dict.fromkeys(f"{c.model} {c.max_steps * c.batch_size:,}" for c in runs))
    print(f"1..20: the training lengths, each run's last validation; 30-120: the test lengths, "
          f"its best checkpoint. Sequences per run: {budget}.")
    ntm = [v for c, v in zip(runs, last) if c.model == "ntm"]
    print(f"NTM seeds below {CONVERGED_BELOW} bit errors per sequence on the training lengths: "
          f"{sum(v < CONVERGED_BELOW for v in ntm)} of {len(ntm)}")
    print(f"W&B offline runs: wandb sync {out}/quick/*/wandb/offline-run-*")
    return 0
