"""`ntmbench`: the command line, the top of the import graph. Each subcommand lives in its own
module, imported when it runs (for start-up time: `--help` must not import torch); this file only
parses and dispatches.

Every bad input (core/errors.py: INPUT_ERRORS) ends in one line on stderr, `ntmbench: error: ...`,
and exit status 2; any other error keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

# MKL's strict reproducible mode: without it a product's last bits depend on where its rows sit
# in memory, so a population member's numbers would depend on the members beside it
# (docs/populations.md). MKL reads it when it starts, so it is set before anything imports torch.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from core.errors import INPUT_ERRORS, UsageError, first_line  # noqa: E402

from core.config import ACCELERATORS  # noqa: E402

from .options import (  # noqa: E402
    TASK_NAMES, Parser, add_report_options, add_run_options, add_wandb_options,
    at_least, comma_list, fixed_setting, renamed, run_config, seed_list)


def build_parser() -> Parser:
    parser = Parser(prog="ntmbench", description="Neural Turing Machine benchmark harness")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("sample", help="write one batch of a task to an .npz file")
    p.add_argument("--task", required=True, choices=TASK_NAMES, help="the task")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="whose shapes: train (default: a random training shape), val or test "
                        "(the first test shape)")
    for name in ("length", "repeats", "items", "n_in", "n_out"):
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=int,
                       help=f"the shape's {name} (where the task has one; default: the split's)")
    p.add_argument("--batch-size", type=at_least(1), default=1, help="sequences (default 1)")
    renamed(p, "--batch", "--batch-size")
    p.add_argument("--seed", type=int, default=0, help="the generator's seed (default 0)")
    p.add_argument("--out", required=True, help="the .npz file to write")

    p = sub.add_parser("demo", help="the quick plan: ntm and lstm on copy, compared per test length")
    p.add_argument("--out", default="runs/reproduce", help="runs go to OUT/quick/")
    p.add_argument("--report", default="reports/quick", help="report folder (default reports/quick)")

    p = sub.add_parser("reproduce", help="run a versioned experiment plan (bench/plans), then report")
    p.add_argument("--plan", default="paper", help="a plan name from bench/plans (paper, quick) or a .yaml")
    p.add_argument("--out", default="runs/reproduce", help="runs go to OUT/<plan name>/")
    p.add_argument("--report", default=None, help="report folder (default reports/<plan name>)")
    p.add_argument("--no-report", action="store_true", help="train only")
    p.add_argument("--devices", type=at_least(1),
                   help="devices per run (GPUs, or CPU processes with --strategy ddp)")
    p.add_argument("--accelerator", choices=ACCELERATORS, help="cpu, gpu or auto (default: the plan's, cpu)")
    p.add_argument("--strategy", help="e.g. ddp")
    p.add_argument("--tasks", help="only these of the plan's tasks, comma-separated (e.g. copy,ngrams)")
    p.add_argument("--models", help="only these of the plan's models, comma-separated (e.g. ntm,ntm-ff)")
    p.add_argument("--seeds", help="only these of the plan's seeds, comma-separated (e.g. 0,1)")
    p.add_argument("--workers", type=at_least(1), default=1,
                   help="runs trained at a time, each in its own process with cores/workers threads")
    renamed(p, "--jobs", "--workers")
    add_wandb_options(p)
    p.add_argument("--no-population", dest="population", action="store_false",
                   help="train every seed alone (default: a task and model's seeds train together "
                        "as one population, each writing the folder its solo run writes)")

    p = sub.add_parser("train", help="train one model on one task, then test it per length")
    add_run_options(p)
    p.add_argument("--seeds", type=seed_list,
                   help="train these seeds together as one population (e.g. 0,1,2): member s "
                        "writes OUT/seed<s>/, the folder a solo run with --seed s writes")

    p = sub.add_parser("evaluate", help="score a checkpoint on its task's test lengths")
    p.add_argument("--checkpoint", required=True, help="a .ckpt a run wrote, e.g. RUN/checkpoints/last.ckpt")
    p.add_argument("--out", help="CSV file (default: test_metrics.<checkpoint>.csv beside the run, "
                                 "e.g. test_metrics.last.csv; never the run's own test_metrics.csv)")
    add_wandb_options(p)

    p = sub.add_parser("predict", help="run a checkpoint on a batch file; write outputs and weights")
    p.add_argument("--checkpoint", required=True, help="a .ckpt a run wrote, e.g. RUN/checkpoints/last.ckpt")
    p.add_argument("--inputs", required=True, help="an .npz with an 'inputs' array (B, T, I), e.g. "
                                                   "from ntmbench sample")
    p.add_argument("--out", required=True, help="the .npz to write: outputs (and an NTM's weightings)")

    p = sub.add_parser("report", help="paper-style figures, tables and index.html from stored runs")
    add_report_options(p)
    p = sub.add_parser("sweep", help="an Optuna study: every trial a full run, tracked in W&B")
    p.add_argument("--config", required=True, help="sweep file, e.g. sweeps/smoke.yaml")
    p.add_argument("--trials", type=at_least(0), help="trials with a verdict in all (default: the file's)")
    p.add_argument("--workers", type=at_least(1), default=1, help="worker processes on this machine")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", type=fixed_setting,
                   help="override one of the file's fixed settings, e.g. --set max_steps=200 or "
                        "--set model_options.memory_size=16 (repeatable; another study then)")
    p.add_argument("--population", type=at_least(1), default=1,
                   help="trials each worker claims together, sharing their structural values and "
                        "trained as one population (they differ in lr, momentum, seed)")
    p.add_argument("--storage", help="SQLAlchemy URL (default: sqlite:///OUT/studies.db)")
    p.add_argument("--study", help="study name (default: the file's `study`, else its name)")
    p.add_argument("--out", default="runs/sweeps", help="trial folders go in OUT/STUDY/")

    p = sub.add_parser("sweep-status", help="a study's trials table and best trial")
    p.add_argument("--study", help="study name (or give --config)")
    p.add_argument("--config", help="sweep file whose study to show")
    p.add_argument("--storage", help="SQLAlchemy URL (default: sqlite:///OUT/studies.db)")
    p.add_argument("--out", default="runs/sweeps", help="the sweeps' folder (default runs/sweeps)")
    p = sub.add_parser("bench", help="speed: step vs controller, data, scaling, copy convergence")
    p.add_argument("--quick", action="store_true", help="every section small (< 3 min on 2 cores)")
    p.add_argument("--only", default="speed,data,scaling,convergence,population",
                   help="comma-separated sections: speed, data, scaling, convergence, population")
    p.add_argument("--accelerator", default="auto", choices=("cpu", "gpu", "auto"),
                   help="cpu, gpu, or auto (default: a GPU when present)")
    renamed(p, "--device", "--accelerator", values={"cuda": "gpu"})
    p.add_argument("--threads", type=at_least(1), default=1, help="torch threads while timing steps")
    p.add_argument("--seeds", type=seed_list, default=list(range(10)),
                   help="convergence seeds, trained as one population (default 0,1,...,9)")
    p.add_argument("--out", default="reports/bench", help="tables and plots (default reports/bench)")
    p = sub.add_parser("wandb-workspace", help="save W&B views comparing a project's runs: one per "
                                               "task, one for the sweeps")
    p.add_argument("--entity", required=True, help="the W&B entity (user or team) of the project")
    p.add_argument("--project", default="ntmbench", help="the W&B project (default: ntmbench)")
    p.add_argument("--tasks", type=comma_list, help="only these tasks' views (default: every task)")
    p.add_argument("--dry-run", action="store_true", help="print the views; save nothing (no network)")
    p.add_argument("--json", action="store_true", help="with --dry-run: the views as W&B's JSON")
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true",
                             help="show the libraries' console output too (tips, notices, warnings)")
    parser.commands = sub.choices
    return parser


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "sample":
        from .sample import sample_command  # on use, for start-up time

        return sample_command(args)
    if args.command == "demo":
        from .demo import demo_command  # on use, for start-up time

        return demo_command(Path(args.out), Path(args.report))
    if args.command == "reproduce":
        from .reproduce import load_plan, reproduce  # on use, for start-up time

        overrides = {k: getattr(args, k) for k in ("devices", "accelerator", "strategy", "wandb_mode",
                                                   "wandb_entity")
                     if getattr(args, k)}
        report = None if args.no_report else Path(args.report or f"reports/{load_plan(args.plan)['name']}")
        tasks, models, seeds = (None if value is None else comma_list(value)
                                for value in (args.tasks, args.models, args.seeds))
        return reproduce(args.plan, Path(args.out), report, overrides, tasks=tasks, workers=args.workers,
                         models=models, seeds=seeds, together=args.population)
    if args.command == "train":
        from .train_command import train_command  # on use, for start-up time

        if args.seeds is not None and hasattr(args, "seed"):
            raise UsageError("give --seed (one run) or --seeds (a population), not both")
        return train_command(run_config(args), args.seeds)
    if args.command == "evaluate":
        from .checkpoint_commands import evaluate_command  # on use, for start-up time

        return evaluate_command(args.checkpoint, args.out, args.wandb_mode, args.wandb_entity)
    if args.command == "predict":
        from .checkpoint_commands import predict_command  # on use, for start-up time

        return predict_command(args.checkpoint, args.inputs, args.out)
    if args.command == "report":
        from reports.command import report_command  # on use, for start-up time

        return report_command(args)
    if args.command in ("sweep", "sweep-status"):
        from sweeps.command import status_command, sweep_command  # on use, for start-up time

        return sweep_command(args) if args.command == "sweep" else status_command(args)
    if args.command == "wandb-workspace":
        from .workspace_command import workspace_command  # on use, for start-up time

        return workspace_command(args.entity, args.project, args.tasks, args.dry_run, args.json)
    if args.command == "bench":
        from .speed import bench_command  # on use, for start-up time

        return bench_command(args)
    raise UsageError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from core.allocator import keep_freed_memory  # here: only a command that runs needs them
        from core.console import quiet_console

        keep_freed_memory()
        quiet_console(args.verbose)
        return dispatch(args)
    except INPUT_ERRORS as error:
        print(f"ntmbench: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not wandb_usage_error(error):
            raise
        print(f"ntmbench: error: W&B: {first_line(error)} (or log offline: --wandb-mode offline, and "
              f"upload later with wandb sync; what was written is kept)", file=sys.stderr)
        return 2


def wandb_usage_error(error: BaseException) -> bool:
    """W&B's own bad-input error (e.g. --wandb-mode online without a login), told by its class
    (wandb is not imported here: --help stays light)."""
    kind = type(error)
    return kind.__name__ == "UsageError" and kind.__module__.startswith("wandb.")


if __name__ == "__main__":
    sys.exit(main())
