"""`ntmbench train`: one run (or, with --seeds, one population of runs), then the test table."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from models.system import NonFiniteLossError

from core.config import RunConfig
from core.errors import RunError
from core.population import population_configs, train_population
from core.train import train
from core.wandb_run import Filing


def print_table(rows: pd.DataFrame, title: str, hide: tuple[str, ...] = ("task", "model", "seed")) -> None:
    table = Table(title=title)
    columns = [c for c in rows.columns if c not in hide]
    for column in columns:
        table.add_column(column, justify="right")
    for _, row in rows.iterrows():
        table.add_row(*(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    Console().print(table)


def train_command(cfg: RunConfig, seeds: list[int] | None = None) -> int:
    if seeds is not None:
        return population_command(cfg, seeds)
    try:
        result = train(cfg)
    except NonFiniteLossError as error:
        raise RunError(str(error)) from None
    # the folder the run wrote: without --out a unique one, not cfg.run_dir's default
    print_table(result.test, f"{cfg.task} / {cfg.model}: test per length ({result.run_dir})")
    return 0


def population_command(cfg: RunConfig, seeds: list[int]) -> int:
    """The seeds trained as one population; one table of every member's test rows."""
    population_dir, members = population_configs(cfg, seeds)
    try:
        results = train_population(members, population_dir,
                                   filing=Filing(collection=population_dir.parent.name))
    except NonFiniteLossError as error:
        raise RunError(f"{population_dir}: {error}") from None
    rows = pd.concat([r.test for r in results if not r.stopped], ignore_index=True)
    if not rows.empty:
        print_table(rows, f"{cfg.task} / {cfg.model}, seeds {','.join(map(str, seeds))}: test per "
                          f"length (members in {population_dir.parent}/seed<s>)", hide=("task", "model"))
    stopped = [r for r in results if r.stopped]
    for r in stopped:
        print(f"{r.run_dir}: stopped, not tested: {r.stopped}")
    return 0
