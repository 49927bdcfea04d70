"""`ntmbench reproduce`: run a fixed, versioned experiment plan (tasks x models x seeds with step
budgets, from `bench/plans/<name>.yaml`), then the report of every run it holds.

A plan is YAML:

    name: quick                 # runs go to <out>/<name>/<task>-<model>-seed<s>
    version: 1                  # bump when a change makes earlier runs incomparable
    defaults: {...}             # RunConfig fields shared by every run
    experiments:
      - task: copy
        seeds: [0, 1, 2]
        models:
          ntm: {max_steps: 1500, lr: 0.001}    # RunConfig fields for this model on this task
          lstm: {max_steps: 1500}

Finished runs (their `test_metrics.csv` written under the same config) are skipped, and a run
that was interrupted resumes from its checkpoint, so the command can be stopped and rerun.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from .config import ConfigError, RunConfig
from .errors import RunError
from .files import write_text

PLANS = Path(__file__).parent / "plans"


@dataclass
class PlannedRun:
    config: RunConfig

    @property
    def label(self) -> str:
        c = self.config
        return f"{c.task} / {c.model} / seed {c.seed} ({c.max_steps} steps)"

    def finished(self) -> bool:
        run = self.config.run_dir
        if not (run / "test_metrics.csv").exists() or not (run / "config.yaml").exists():
            return False
        return yaml.safe_load((run / "config.yaml").read_text()) == self.config.resolved().to_dict()


def load_plan(name: str) -> dict[str, Any]:
    path = Path(name) if name.endswith(".yaml") else PLANS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PLANS.glob("*.yaml")))
        raise ConfigError(f"no plan {name!r}; choose one of: {known} (or a path to a .yaml plan)")
    plan = yaml.safe_load(path.read_text())
    for key in ("name", "version", "experiments"):
        if key not in plan:
            raise ConfigError(f"plan {path} has no {key!r}")
    return plan


def planned_runs(plan: dict[str, Any], out: Path, overrides: dict[str, Any]) -> list[PlannedRun]:
    """Every run of the plan as a full RunConfig (validated now, before anything runs), in the
    order they train: per task, seed by seed, every model of a seed before the next seed. A plan
    stopped part way then holds whole comparisons (all models at its first seeds)."""
    runs = []
    for experiment in plan["experiments"]:
        for seed in experiment["seeds"]:
            for model, settings in experiment["models"].items():
                values = {**plan.get("defaults", {}), **(settings or {}), **overrides,
                          "task": experiment["task"], "model": model, "seed": seed}
                values["out"] = str(out / plan["name"] / f"{experiment['task']}-{model}-seed{seed}")
                runs.append(PlannedRun(RunConfig.from_dict(values)))
    return runs


def select(runs: list[PlannedRun], tasks: list[str] | None = None, models: list[str] | None = None,
           seeds: list[str] | None = None) -> list[PlannedRun]:
    """The runs of the given tasks, models and seeds only (None: every one the plan has); a name
    or seed the plan lacks is an error."""
    def pick(runs: list[PlannedRun], flag: str, wanted: list[str] | None, of) -> list[PlannedRun]:
        if wanted is None:
            return runs
        known = list(dict.fromkeys(str(of(r.config)) for r in runs))
        unknown = [w for w in wanted if w not in known]
        if unknown or not wanted:
            raise ConfigError(f"--{flag} {','.join(unknown) or repr('')}: not in this plan; choose "
                              f"from: {', '.join(known)}")
        return [r for r in runs if str(of(r.config)) in wanted]

    runs = pick(runs, "tasks", tasks, lambda c: c.task)
    runs = pick(runs, "models", models, lambda c: c.model)
    return pick(runs, "seeds", seeds, lambda c: c.seed)


def train_timed(config: RunConfig, group: str) -> float:
    """Train one run of the plan -> its minutes."""
    from models.system import NonFiniteLossError

    from .train import train

    start = time.perf_counter()
    try:
        train(config, wandb_group=group, wandb_tags=("reproduce",))
    except NonFiniteLossError as error:  # one line, as from `ntmbench train`
        raise RunError(f"{config.run_dir}: {error}") from None
    return (time.perf_counter() - start) / 60


def train_in_child(config: RunConfig, group: str) -> float:
    """Train one run in a child process of its own (`bench/run_one.py`) -> its minutes: how a run
    on several devices trains, so that DDP's extra ranks repeat that run only. The child gets a
    session of its own, and an interrupt (Ctrl-C, SIGTERM) stops it and its ranks before it ends
    this command: no rank goes on writing behind a rerun."""
    import json
    import os
    import subprocess
    import sys

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


def train_parallel(pending: list[tuple[str, PlannedRun]], group: str, jobs: int) -> None:
    """Train `pending` runs `jobs` at a time, each in a fresh process with its share of the
    cores as torch threads. A run that fails is reported and the others go on; then the first
    failure ends the command. Interrupted (Ctrl-C, SIGTERM), the workers are stopped too: no run
    goes on writing behind a rerun (each resumes from its last checkpoint)."""
    import multiprocessing

    from .workers import core_share, start_worker

    print(f"{jobs} runs at a time, {core_share(jobs)} torch thread(s) each", flush=True)
    failures: list[str] = []

    def done(prefix: str):
        return lambda minutes: print(f"{prefix}: finished in {minutes:.1f} min", flush=True)

    def failed(prefix: str):
        def report(error: BaseException) -> None:
            failures.append(f"{prefix}: {type(error).__name__}: {error}")
            print(f"{prefix}: failed: {error}", flush=True)
        return report

    with _sigterm_interrupts():
        # spawn: a fresh interpreter per run (torch and W&B do not survive fork safely)
        pool = multiprocessing.get_context("spawn").Pool(jobs, start_worker, (jobs,), maxtasksperchild=1)
        try:
            for prefix, run in pending:
                pool.apply_async(train_timed, (run.config, group),
                                 callback=done(prefix), error_callback=failed(prefix))
                print(f"{prefix}: queued", flush=True)
            pool.close()
            pool.join()
        except BaseException:
            pool.terminate()
            pool.join()
            raise
    if failures:
        raise RunError(f"{len(failures)} of {len(pending)} runs failed (rerun to retry them; "
                       f"finished runs are kept); first: {failures[0]}")


def reproduce(plan_name: str, out: Path, report_out: Path | None, overrides: dict[str, Any],
              tasks: list[str] | None = None, jobs: int = 1, models: list[str] | None = None,
              seeds: list[str] | None = None) -> int:
    """Train every run of the plan (of `tasks`, `models` and `seeds`) not finished yet, `jobs` at
    a time, then write the report of all the plan's runs found under `out`."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1 (got {jobs})")
    plan = load_plan(plan_name)
    every = planned_runs(plan, out, overrides)
    runs = select(every, tasks, models, seeds)
    devices = max((r.config.devices for r in runs), default=1)
    if jobs > 1 and devices > 1:
        raise ConfigError(f"--jobs {jobs} with --devices {devices}: a run on several devices "
                          "trains alone; give --jobs 1 (or --devices 1)")
    group = f"reproduce-{plan['name']}"
    print(f"plan {plan['name']} v{plan['version']}: {len(runs)} runs under {out / plan['name']}")
    pending = []
    for index, run in enumerate(runs, 1):
        prefix = f"[{index}/{len(runs)}] {run.label}"
        if run.finished():
            print(f"{prefix}: done already, skipped")
        else:
            pending.append((prefix, run))
    try:
        if jobs > 1 and len(pending) > 1:
            train_parallel(pending, group, jobs)
        else:
            for prefix, run in pending:
                print(f"{prefix}: training", flush=True)
                train_one = train_in_child if run.config.devices > 1 else train_timed
                print(f"{prefix}: finished in {train_one(run.config, group):.1f} min", flush=True)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM; Lightning turns Ctrl-C into exit(1)
        raise RunError("interrupted; rerun the same command to go on (finished runs are kept, "
                       "the others resume from their last checkpoint)") from None
    if report_out is not None:
        from reports.command import build_report

        runs_dir = out / plan["name"]
        report = build_report(
            runs=[str(runs_dir)], studies=[], storage=None, wandb_project=None, out=str(report_out),
            command=f"ntmbench reproduce --plan {plan_name} --out {out} --report {report_out}",
        )
        for note in report.notes:
            print(f"note: {note}")
        table = results_markdown(every, report_out / "results.csv")
        write_text(report_out / "results.md", table)
        print(table)
        print(f"report: {report.index} (summary: {report.summary}, results: {report_out / 'results.csv'})")
    return 0


def results_markdown(runs: list[PlannedRun], results_csv: Path) -> str:
    """The README's results table: per task and model, parameters, budget, recipe (optimizer,
    learning rate, batch), sequences to converge, and test cost / bit errors per test shape
    (medians over seeds, from the report)."""
    import pandas as pd

    from models.registry import build_model

    results = pd.read_csv(results_csv)
    lines = []
    for task, group in results.groupby("task", sort=False):
        labels = list(dict.fromkeys(group["label"]))
        lines += ["", f"**{task}** (test: cost in bits / bit errors per sequence, medians over seeds; "
                  "in brackets the lowest to the highest seed's bit errors)",
                  "", "| model | parameters | seeds | trained on | recipe | sequences to < 0.1 bit errors | "
                  "validation cost, last | " + " | ".join(labels) + " |", "|---" * (7 + len(labels)) + "|"]
        for model, rows in group.groupby("variant", sort=False):
            cfg = next(r.config.resolved() for r in runs if (r.config.task, r.config.model) == (task, model))
            system_sizes = _sizes(task, cfg)
            net = build_model(cfg.model, *system_sizes, **cfg.model_options)
            params = sum(p.numel() for p in net.parameters())
            first = rows.iloc[0]
            seqs = first["seqs_to_converge"]
            converge = (f"{seqs:,.0f} ({int(first['converged'])}/{int(first['seeds'])} seeds)"
                        if pd.notna(seqs) and seqs != float("inf") else
                        f"not reached ({int(first['converged'])}/{int(first['seeds'])} seeds)")
            cells = [f"{r.cost_bits:.1f} / {r.bit_errors:.2f}" + (
                f" ({r.bit_errors_min:.2f}-{r.bit_errors_max:.2f})"
                if r.bit_errors_min != r.bit_errors_max else "") for r in rows.itertuples()]
            recipe = f"{cfg.optimizer} {cfg.lr:g}, batch {cfg.batch_size}"
            lines.append(f"| {model} | {params:,} | {int(first['seeds'])} | "
                         f"{cfg.max_steps * cfg.batch_size:,} seq | {recipe} | {converge} | "
                         f"{_val_cost(first)} | " + " | ".join(cells) + " |")
        if "optimal_cost_bits" in group and group["optimal_cost_bits"].notna().any():
            # n-grams: the Bayesian optimal estimator on the same test sequences (cost only)
            optimal = group.groupby("label", sort=False)["optimal_cost_bits"].median()
            lines.append(f"| optimal estimator | | | | | | {_optimal_val_cost(group)} | "
                         + " | ".join(f"{optimal[label]:.1f} / -" for label in labels) + " |")
        if task in PAPER_VALIDATION_COST:
            lines.append(f"| paper (approx.) | | | | | | {PAPER_VALIDATION_COST[task]} |"
                         + " |" * len(labels))
    return "\n".join(lines).strip() + "\n"


# What the paper's learning-curve figures end on, for tasks where no run of ours gets near it
# (bits per sequence on the training sizes, read off the figure)
PAPER_VALIDATION_COST = {"priority_sort": "NTM ~20, LSTM ~50 (figure 16, long training)"}


def _optimal_val_cost(group) -> str:
    """The optimal estimator's cost on the validation sequences (the same for every run of a task
    whose validation set is the same; their median otherwise), or `-` when not logged."""
    if "val_optimal_cost_bits" not in group or group["val_optimal_cost_bits"].isna().all():
        return "-"
    return f"{group['val_optimal_cost_bits'].median():.1f}"


def _val_cost(row) -> str:
    """`122.3 (118.0-130.1)`: the median over seeds of the last validation cost, with its range."""
    import pandas as pd

    if "val_cost_bits" not in row or pd.isna(row["val_cost_bits"]):
        return "-"
    low, high = f"{row['val_cost_bits_min']:.1f}", f"{row['val_cost_bits_max']:.1f}"
    return f"{row['val_cost_bits']:.1f}" + (f" ({low}-{high})" if low != high else "")  # no "(0.0-0.0)"


def _sizes(task: str, cfg: RunConfig) -> tuple[int, int]:
    from datamodules.registry import build_task

    built = build_task(task, **cfg.task_options)
    return built.input_size, built.output_size
