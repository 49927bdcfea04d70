"""`ntmbench reproduce`: run a fixed, versioned experiment plan (tasks x models x seeds with step
budgets, from `bench/plans/<name>.yaml`; the format is in bench/plan.py), then the report of every
run it holds.

Finished runs (their `test_metrics.csv` written under the same config) are skipped, and a run
that was interrupted resumes from its checkpoint, so the command can be stopped and rerun.

The seeds of one task and model train together as one population (core/population.py; kept in
OUT/<plan>/populations/), each writing the run folder its solo run writes; `--no-population`
trains them one by one.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from core.console import OverallBar, say
from core.config import RunConfig, load_yaml_file
from core.errors import ConfigError, RunError
from core.files import write_text
from core.tables import markdown
from core.population import train_population
from core.train import train
from core.wandb_run import Filing
from core.workers import core_share, start_worker
from datamodules.registry import build_task
from models.registry import build_model, parameter_count
from models.system import NonFiniteLossError
from reports.command import build_report
from reports.wandb_report import log_report

from .plan import Job, load_plan, planned_runs, select, training_jobs

def plan_filing(plan: str) -> Filing:
    """A plan's runs in W&B: group `<plan>-v<version>/<task>/<model>`, the plan in the config."""
    return Filing(collection=plan, tags=("reproduce", plan), config={"plan": plan})


def train_timed(config: RunConfig, group: str) -> float:
    """Train one run of the plan (`group`: the plan and its version, e.g. paper-v4) -> its minutes."""
    start = time.perf_counter()
    try:
        train(config, filing=plan_filing(group))
    except NonFiniteLossError as error:  # one line, as from `ntmbench train`
        raise RunError(f"{config.run_dir}: {error}") from None
    return (time.perf_counter() - start) / 60


def train_population_timed(configs: list[RunConfig], population: Path, group: str) -> float:
    """Train the runs `configs` as one population kept in `population` -> its minutes. A member
    that stopped on a non-finite loss ends the command (as a solo run's stop does) once the
    others have finished."""
    start = time.perf_counter()
    try:
        results = train_population(configs, population, filing=plan_filing(group))
    except NonFiniteLossError as error:
        raise RunError(f"{population}: {error}") from None
    stopped = [r for r in results if r.stopped]
    if stopped:
        raise RunError(f"{stopped[0].run_dir}: {stopped[0].stopped} (its other members finished)")
    return (time.perf_counter() - start) / 60


def train_job(job: Job, group: str) -> float:
    """Train one job (a solo run or a population) in this process -> its minutes."""
    if job.population is None:
        return train_timed(job.runs[0].config, group)
    return train_population_timed([r.config for r in job.runs], job.population, group)


def train_in_child(config: RunConfig, group: str) -> float:
    """Train one run in a child process of its own (`bench/run_one.py`) -> its minutes: how a run
    on several devices trains, so that DDP's extra ranks repeat that run only. The child gets a
    session of its own, and an interrupt (Ctrl-C, SIGTERM) stops it and its ranks before it ends
    this command: no rank goes on writing behind a rerun."""
    start = time.perf_counter()
    with _sigterm_interrupts():
        child = subprocess.Popen([sys.executable, "-m", "bench.run_one", json.dumps(config.to_dict()),
                                  group], start_new_session=True)
        try:
            status = child.wait()
        except BaseException:
            # Ctrl-C to its rank 0 only: Lightning shuts it down cleanly (loggers closed) and kills
            # the other ranks. (A SIGTERM to the ranks deadlocks Lightning 2.6's DDP signal handler,
            # which runs collectives inside the handler: Lightning-AI/pytorch-lightning#20806.)
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            raise
    if status != 0:
        raise RunError(f"{config.run_dir}: its process exited with status {status} (its error is "
                       "above); rerun to retry it, finished runs are kept")
    return (time.perf_counter() - start) / 60


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Inside the block SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so that the runs in
    other processes are stopped before this command ends (signals are set in the main thread
    only; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def show_progress(runs: list) -> bool:
    """The plan's bars: unless its runs say no progress (`progress: false`)."""
    return all(r.config.progress for r in runs)


def train_parallel(pending: list[tuple[str, Job]], group: str, workers: int,
                   bar: OverallBar | None = None) -> None:
    """Train `pending` jobs (runs or populations) `workers` at a time, each in a fresh process
    with its share of the cores as torch threads. A run that fails is reported and the others go
    on; then the first
    failure ends the command. Interrupted (Ctrl-C, SIGTERM), the workers are stopped too: no run
    goes on writing behind a rerun (each resumes from its last checkpoint)."""
    say(f"{workers} runs at a time, {core_share(workers)} torch thread(s) each")
    failures: list[str] = []

    def done(prefix: str, job: Job):
        def report(minutes: float) -> None:
            say(f"{prefix}: finished in {minutes:.1f} min")
            if bar is not None:
                bar.done(len(job.runs))
        return report

    def failed(prefix: str):
        def report(error: BaseException) -> None:
            failures.append(f"{prefix}: {type(error).__name__}: {error}")
            say(f"{prefix}: failed: {error}")
        return report

    with _sigterm_interrupts():
        # spawn: a fresh interpreter per run (torch and W&B do not survive fork safely)
        pool = multiprocessing.get_context("spawn").Pool(workers, start_worker, (workers,),
                                                         maxtasksperchild=1)
        try:
            for prefix, job in pending:
                pool.apply_async(train_job, (job, group),
                                 callback=done(prefix, job), error_callback=failed(prefix))
            pool.close()
            pool.join()
        except BaseException:
            pool.terminate()
            pool.join()
            raise
    if failures:
        raise RunError(f"{len(failures)} of {len(pending)} jobs failed (rerun to retry them; "
                       f"finished runs are kept); first: {failures[0]}")


def reproduce(plan_name: str, out: Path, report_out: Path | None, overrides: dict[str, Any],
              tasks: list[str] | None = None, workers: int = 1, models: list[str] | None = None,
              seeds: list[str] | None = None, together: bool = True) -> int:
    """Train every run of the plan (of `tasks`, `models` and `seeds`) not finished yet, `workers` at
    a time (the seeds of a task and model as one population unless `together` is False), then
    write the report of all the plan's runs found under `out`."""
    plan = load_plan(plan_name)
    every = planned_runs(plan, out, overrides)
    runs = select(every, tasks, models, seeds)
    devices = max((r.config.devices for r in runs), default=1)
    if workers > 1 and devices > 1:
        raise ConfigError(f"--workers {workers} with --devices {devices}: a run on several devices "
                          "trains alone; give --workers 1 (or --devices 1)")
    group = f"{plan['name']}-v{plan['version']}"
    print(f"plan {plan['name']} v{plan['version']}: {len(runs)} runs under {out / plan['name']}")
    unfinished = [run for run in runs if not run.finished()]
    if len(unfinished) < len(runs):
        print(f"{len(runs) - len(unfinished)} of {len(runs)} runs done already, skipped", flush=True)
    todo = training_jobs(unfinished, out / plan["name"], together)
    pending = [(f"[{index}/{len(todo)}] {job.label}", job) for index, job in enumerate(todo, 1)]
    if len(todo) < len(unfinished):
        print(f"{len(unfinished)} runs to train in {len(todo)} jobs (each task and model's seeds "
              f"as one population; --no-population trains them one by one)")
    try:
        with OverallBar(f"plan {plan['name']}", len(runs), len(runs) - len(unfinished),
                        enabled=bool(pending) and show_progress(runs)) as bar:
            if workers > 1 and len(pending) > 1:
                train_parallel(pending, group, workers, bar)
            else:
                for prefix, job in pending:
                    say(f"{prefix}: training")
                    if job.population is None and job.runs[0].config.devices > 1:
                        minutes = train_in_child(job.runs[0].config, group)
                    else:
                        minutes = train_job(job, group)
                    say(f"{prefix}: finished in {minutes:.1f} min")
                    bar.done(len(job.runs))
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM; Lightning turns Ctrl-C into exit(1)
        raise RunError("interrupted; rerun the same command to go on (finished runs are kept, "
                       "the others resume from their last checkpoint)") from None
    if report_out is not None:
        runs_dir = out / plan["name"]
        report = build_report(
            runs=[str(runs_dir)], studies=[], storage=None, wandb_project=None, out=str(report_out),
            command=f"ntmbench reproduce --plan {plan_name} --out {out} --report {report_out}",
        )
        for note in report.notes:
            print(f"note: {note}")
        log_report(report, mode=overrides.get("wandb_mode"), entity=overrides.get("wandb_entity", ""),
                   group=group, tags=("reproduce", group))
        table = results_markdown(report_out / "results.csv", report.runs)
        write_text(report_out / "results.md", table)
        print(table)
        print(f"report: {report.index} (summary: {report.summary}, "
              f"results: {report_out / 'results.csv'})")
    return 0


def results_markdown(results_csv: Path, runs: pd.DataFrame) -> str:
    """The README's results table: per task and model, parameters, budget, recipe (optimizer,
    learning rate, batch), sequences to converge, and test cost / bit errors per test shape
    (medians over seeds, from the report). Parameters, budget and recipe are read from each
    variant's own runs (`runs`: the report's runs, with `task`, `variant` and `source`, their
    folder), so a run made under an earlier version of a plan is described as it was trained."""
    results = pd.read_csv(results_csv)
    parts = []
    for task, group in results.groupby("task", sort=False):
        labels = list(dict.fromkeys(group["label"].dropna()))
        rows = []
        for variant, by_variant in group.groupby("variant", sort=False):
            first = by_variant.iloc[0]
            seqs = first["seqs_to_converge"]
            seeds = f"({int(first['converged'])}/{int(first['seeds'])} seeds)"
            converge = (f"{seqs:,.0f} {seeds}" if pd.notna(seqs) and seqs != float("inf")
                        else f"not reached {seeds}")
            row = {"model": variant, **_trained_as(runs, task, variant),
                   "seeds": str(int(first["seeds"])), "sequences to < 0.1 bit errors": converge,
                   "validation cost, last": _val_cost(first)}
            for r in by_variant.dropna(subset=["label"]).itertuples():
                row[r.label] = f"{r.cost_bits:.1f} / {r.bit_errors:.2f}" + (
                    f" ({r.bit_errors_min:.2f}-{r.bit_errors_max:.2f})"
                    if r.bit_errors_min != r.bit_errors_max else "")
            rows.append(row)
        if "optimal_cost_bits" in group and group["optimal_cost_bits"].notna().any():
            # n-grams: the Bayesian optimal estimator on the same test sequences (cost only)
            optimal = group.groupby("label", sort=False)["optimal_cost_bits"].median()
            rows.append({"model": "optimal estimator",
                         "validation cost, last": _optimal_val_cost(group),
                         **{label: f"{optimal[label]:.1f} / -" for label in labels}})
        if task in PAPER_VALIDATION_COST:
            rows.append({"model": "paper (approx.)",
                         "validation cost, last": PAPER_VALIDATION_COST[task]})
        columns = ["model", "parameters", "seeds", "trained on", "recipe",
                   "sequences to < 0.1 bit errors", "validation cost, last", *labels]
        table = pd.DataFrame(rows, columns=columns).fillna("")
        parts += [f"**{task}** (test: cost in bits / bit errors per sequence, medians over seeds; "
                  "in brackets the lowest to the highest seed's bit errors)", "", markdown(table), ""]
    return "\n".join(parts).strip() + "\n"


def _trained_as(runs: pd.DataFrame, task: str, variant: str) -> dict[str, str]:
    """Parameters, budget and recipe of a variant, from the config.yaml of its first run."""
    sources = runs[(runs["task"] == task) & (runs["variant"] == variant)]["source"]
    if sources.empty:
        return {}
    values = load_yaml_file(Path(sources.iloc[0]) / "config.yaml", "run config")
    cfg = RunConfig.from_dict(values, where=f"{sources.iloc[0]}/config.yaml").resolved()
    built = build_task(cfg.task, **cfg.task_options)
    net = build_model(cfg.model, built.input_size, built.output_size, **cfg.model_options)
    return {"parameters": f"{parameter_count(net):,}",
            "trained on": f"{cfg.max_steps * cfg.batch_size:,} seq",
            "recipe": f"{cfg.optimizer} {cfg.lr:g}, batch {cfg.batch_size}"}


# What the paper's learning-curve figures end on, for tasks where no run of ours gets near it
# (bits per sequence on the training sizes, read off the figure)
PAPER_VALIDATION_COST = {"priority_sort": "NTM ~20, LSTM ~50 (figure 16, long training)"}


def _optimal_val_cost(group: pd.DataFrame) -> str:
    """The optimal estimator's cost on the validation sequences (the same for every run of a task
    whose validation set is the same; their median otherwise), or `-` when not logged."""
    if "val_optimal_cost_bits" not in group or group["val_optimal_cost_bits"].isna().all():
        return "-"
    return f"{group['val_optimal_cost_bits'].median():.1f}"


def _val_cost(row: pd.Series) -> str:
    """`122.3 (118.0-130.1)`: the median over seeds of the last validation cost, with its range."""
    if "val_cost_bits" not in row or pd.isna(row["val_cost_bits"]):
        return "-"
    low, high = f"{row['val_cost_bits_min']:.1f}", f"{row['val_cost_bits_max']:.1f}"
    return f"{row['val_cost_bits']:.1f}" + (f" ({low}-{high})" if low != high else "")  # no "(0.0-0.0)"
