"""A report, logged to W&B as a run of its own (job type `report`) in the project of the runs it
read: every figure as a `wandb.Image` (`figures/<name>`, captioned), every summary table it wrote as
a `wandb.Table` (`tables/<name>`: results, hardware, end_marker, sweep_trials, ...; not the tidy
table.csv, which is the runs' own rows), its command
and sources in the config. Offline by default, like every run: the files go to
`OUT/wandb/offline-run-*`, and `wandb sync` uploads them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import wandb

from core.config import RunConfig
from core.wandb_run import close_run, git_commit, init_options


def report_project(runs: pd.DataFrame | None, wandb_project: str | None) -> tuple[str, str]:
    """(entity, project) the report is logged to: the W&B project it read (`ENTITY/PROJECT`),
    else the one most of its runs logged to, else RunConfig's default."""
    if wandb_project:
        entity, _, project = wandb_project.rpartition("/")
        return entity, project
    if runs is not None and "wandb_project" in runs and runs["wandb_project"].notna().any():
        return "", Counter(runs["wandb_project"].dropna()).most_common(1)[0][0]
    return "", RunConfig.wandb_project  # the field's default


def log_report(report: Any, wandb_project: str | None = None, mode: str | None = None,
               entity: str = "", group: str = "report", tags: tuple[str, ...] = ()) -> Any:
    """Log `report` (a reports/command.py Report: its figures and summary tables) as one W&B run; returns
    the finished run (its folder says where the offline files went)."""
    out, runs = report.out, report.runs
    read_entity, project = report_project(runs, wandb_project)
    tasks = sorted(runs["task"].unique()) if runs is not None and len(runs) else []
    run = wandb.init(project=project, dir=str(out), job_type="report", group=group,
                     name=f"report-{out.name}", tags=["report", *tasks, *tags],
                     config={"command": report.command, "sources": report.sources,
                             "git_commit": git_commit(), "files": report.summary_files,
                             "figures": [f.name for f in report.figures]},
                     **init_options(mode, entity or read_entity))
    logged: dict[str, Any] = {f"figures/{f.name}": wandb.Image(str(f.png), caption=f.caption)
                              for f in report.figures}
    for name in report.summary_files:
        path = out / name
        if path.suffix == ".csv" and path.is_file():
            frame = pd.read_csv(path)
            logged[f"tables/{path.stem}"] = wandb.Table(dataframe=frame)
    if logged:
        run.log(logged)
    close_run(run)
    return run
