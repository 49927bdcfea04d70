"""`ntmbench train`: one run, then its per-length test table."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from models.system import NonFiniteLossError

from .config import RunConfig
from .errors import RunError


def print_table(rows: pd.DataFrame, title: str) -> None:
    table = Table(title=title)
    columns = [c for c in rows.columns if c not in ("task", "model", "seed")]
    for column in columns:
        table.add_column(column, justify="right")
    for _, row in rows.iterrows():
        table.add_row(*(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    Console().print(table)


def train_command(cfg: RunConfig) -> int:
    from .train import train

    try:
        rows = train(cfg).test
    except NonFiniteLossError as error:
        raise RunError(str(error)) from None
    print_table(rows, f"{cfg.task} / {cfg.model}: test per length ({cfg.run_dir})")
    return 0
