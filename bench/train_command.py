"""`ntmbench train`: one run, then its per-length test table."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from models.system import NonFiniteLossError

from core.config import RunConfig
from core.errors import RunError
from core.train import train


def print_table(rows: pd.DataFrame, title: str) -> None:
    table = Table(title=title)
    columns = [c for c in rows.columns if c not in ("task", "model", "seed")]
    for column in columns:
        table.add_column(column, justify="right")
    for _, row in rows.iterrows():
        table.add_row(*(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    Console().print(table)


def train_command(cfg: RunConfig) -> int:
    try:
        result = train(cfg)
    except NonFiniteLossError as error:
        raise RunError(str(error)) from None
    # the folder the run wrote: without --out a unique one, not cfg.run_dir's default
    print_table(result.test, f"{cfg.task} / {cfg.model}: test per length ({result.run_dir})")
    return 0
