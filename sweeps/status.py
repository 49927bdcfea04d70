"""What a study holds: the trials table, the best trial, and the study's summary in W&B.

    ntmbench sweep-status --study smoke
    optuna-dashboard sqlite:///runs/sweeps/studies.db       # the same storage, in a browser
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import wandb
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from core.config import RunConfig
from core.files import write_csv, write_text
from core.wandb_run import close_run, init_options

from .storage import GRACE_S


COLUMNS = ["number", "state", "value", "seconds", "reason", "run_dir"]


def fail_reason(trial: optuna.trial.FrozenTrial) -> str:
    if trial.state == TrialState.FAIL:
        # a FAIL with no reason was failed by Optuna's heartbeat check: its worker went silent
        return trial.user_attrs.get("fail_reason", f"interrupted: no heartbeat for {GRACE_S} s")
    if trial.state == TrialState.PRUNED:
        return trial.user_attrs.get("pruned_reason", "")
    return ""


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, seconds, the sampled params, why it ended early."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = None
        if t.datetime_start and t.datetime_complete:
            seconds = round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
        row: dict[str, Any] = {"number": t.number, "state": t.state.name.lower(), "value": t.value,
                               "seconds": seconds}
        row.update(t.params)
        row["reason"] = fail_reason(t)
        row["run_dir"] = t.user_attrs.get("run_dir", "")
        rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=COLUMNS)


def best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def print_status(study: optuna.Study, metric: str | None = None) -> None:
    frame = trials_frame(study)
    metric = metric or study.user_attrs.get("sweep", {}).get("metric", "value")
    console = Console(width=max(120, Console().width))
    table = Table(title=f"study {study.study_name}: {metric} ({study.direction.name.lower()})")
    for column in frame.columns:
        if column != "run_dir":
            table.add_column(column.removeprefix("model_options.").removeprefix("task_options."),
                             justify="left" if column in ("state", "reason") else "right")
    for _, row in frame.iterrows():
        table.add_row(*(_cell(row[c]) for c in frame.columns if c != "run_dir"))
    console.print(table)
    states = frame["state"].value_counts().to_dict() if len(frame) else {}
    counted = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    console.print(f"{len(frame)} trials ({counted or 'none yet'}); budget "
                  f"{study.user_attrs.get('trials', '?')} trials with a verdict")
    top = best(study)
    if top is None:
        console.print("best trial: none complete yet")
    else:
        params = ", ".join(f"{k}={_cell(v)}" for k, v in top.params.items())
        console.print(f"best trial: {top.number}, {metric} = {top.value:.6g} ({params}); "
                      f"run folder {top.user_attrs.get('run_dir', '?')}")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_summary(study: optuna.Study, sweep_dir: Path, base: RunConfig, info: dict[str, Any]) -> None:
    """`<sweep_dir>/trials.csv` and one W&B run for the study (group = study, job type
    sweep-summary; the W&B project, entity and mode of the sweep's `base` settings) holding the
    trials table and the best trial. Rerunning updates the same run."""
    frame = trials_frame(study)
    write_csv(sweep_dir / "trials.csv", frame)
    summary_dir = sweep_dir / "summary"
    id_file = summary_dir / "wandb_id"
    if not id_file.exists():
        write_text(id_file, uuid.uuid4().hex[:12])
    top = best(study)
    run = wandb.init(project=base.wandb_project, dir=str(summary_dir), id=id_file.read_text().strip(),
                     resume="allow", group=f"{study.study_name}/{info['task']}/{info['model']}",
                     job_type="sweep-summary",
                     name=f"{study.study_name}-summary",
                     tags=[info["task"], info["model"], "sweep-summary"],
                     config={"study": study.study_name, **info}, reinit="finish_previous",
                     **init_options(base.wandb_mode, base.wandb_entity))
    table = frame.drop(columns=["run_dir"]).astype(object).where(frame.notna(), None)
    run.log({"trials": wandb.Table(dataframe=table)})
    run.summary.update({f"trials/{s}": int(n) for s, n in frame["state"].value_counts().items()})
    if top is not None:
        run.summary.update({"best/number": top.number, "best/value": top.value,
                            **{f"best/{k}": v for k, v in top.params.items()},
                            "best/run_dir": top.user_attrs.get("run_dir", "")})
    close_run(run)
