"""`ntmbench`: the command line. Each subcommand lives in its own module; this file only parses.

Every bad input ends in one line on stderr, `ntmbench: error: ...`, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .config import ConfigError, RunConfig


class UsageError(ValueError):
    """Bad command-line input."""


def comma_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the comma lists of --tasks, --models, --seeds and --only."""
    return [item.strip() for item in text.split(",") if item.strip()]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the valid options."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "unrecognized arguments" in message:
            valid = sorted({s for a in self._actions for s in a.option_strings if s.startswith("--")})
            message += f"; valid options: {', '.join(valid)}"
        raise UsageError(f"{self.prog}: {message}")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """Unknown options are reported by the subcommand's parser, which names its valid ones."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            owner = self.commands.get(command, self) if hasattr(self, "commands") else self
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def key_values(pairs: list[str] | None) -> dict[str, str]:
    """`["heads=2", "memory_size=64"]` -> `{"heads": "2", "memory_size": "64"}`."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {pair!r} (e.g. --model-option heads=2)")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


RUN_FLAGS = ("task", "model", "preset", "optimizer", "lr", "momentum", "clip", "batch_size",
             "max_steps", "seed", "val_every", "val_batches", "val_batch_size", "test_batch_size",
             "checkpoint_every", "test_on", "devices", "accelerator", "strategy", "out", "wandb_project")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Flags for every RunConfig field. Only flags given on the command line are set (SUPPRESS),
    so they override a --config file and nothing else does."""
    from datamodules.registry import TASKS
    from models.registry import MODELS

    d = RunConfig()
    p.add_argument("--config", help="a YAML file of RunConfig fields; flags override it")
    hints = {"task": f"one of: {', '.join(TASKS)}", "model": f"one of: {', '.join(MODELS)}",
             "preset": "paper (sizes and lr of the paper) or none",
             "test_on": "last (default) or best: test the checkpoint of the lowest validation cost"}
    for name in RUN_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS,
                       help=hints.get(name, f"default: {getattr(d, name)!r}"))
    p.add_argument("--model-option", "-m", action="append", metavar="KEY=VALUE",
                   help="set a model option, e.g. -m heads=2 -m memory_size=64 (repeatable)")
    p.add_argument("--task-option", "-t", action="append", metavar="KEY=VALUE",
                   help="set a task option, e.g. -t max_length=10 (repeatable)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS)


def load_config_file(path: str) -> dict:
    """A RunConfig as YAML; an unreadable file is a one-line error."""
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read config {path} ({error.strerror}); pass a YAML file of "
                          f"RunConfig fields, e.g. a run's config.yaml") from None
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"config {path} is not valid YAML ({first})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config {path} must hold a mapping of RunConfig fields")
    return values


def run_config(args: argparse.Namespace) -> RunConfig:
    values = load_config_file(args.config) if args.config else {}
    values.update({k: getattr(args, k) for k in (*RUN_FLAGS, "progress") if hasattr(args, k)})
    values["model_options"] = {**values.get("model_options", {}), **key_values(args.model_option)}
    values["task_options"] = {
        **values.get("task_options", {}),
        **{k: parse_scalar(v) for k, v in key_values(args.task_option).items()},
    }
    return RunConfig.from_dict(values)


def parse_scalar(text: str) -> object:
    """A task option from the command line: YAML scalars and lists (`-t test_lengths=[30,50]`)."""
    import yaml

    return yaml.safe_load(text)


def build_parser() -> Parser:
    parser = Parser(prog="ntmbench", description="Neural Turing Machine benchmark harness")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("sample", help="write one batch of a task to an .npz file")
    p.add_argument("--task", required=True)
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    for name in ("length", "repeats", "items", "n_in", "n_out"):
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=int)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("demo", help="the quick plan: ntm and lstm on copy, compared per test length")
    p.add_argument("--out", default="runs/reproduce", help="runs go to OUT/quick/")
    p.add_argument("--report", default="reports/quick")

    p = sub.add_parser("reproduce", help="run a versioned experiment plan (bench/plans), then report")
    p.add_argument("--plan", default="paper", help="a plan name from bench/plans (paper, quick) or a .yaml")
    p.add_argument("--out", default="runs/reproduce", help="runs go to OUT/<plan name>/")
    p.add_argument("--report", default=None, help="report folder (default reports/<plan name>)")
    p.add_argument("--no-report", action="store_true", help="train only")
    p.add_argument("--devices", type=int, help="devices per run (GPUs, or CPU processes with --strategy ddp)")
    p.add_argument("--accelerator", help="cpu, gpu or auto (default: the plan's, cpu)")
    p.add_argument("--strategy", help="e.g. ddp")
    p.add_argument("--tasks", help="only these of the plan's tasks, comma-separated (e.g. copy,ngrams)")
    p.add_argument("--models", help="only these of the plan's models, comma-separated (e.g. ntm,ntm-ff)")
    p.add_argument("--seeds", help="only these of the plan's seeds, comma-separated (e.g. 0,1)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at a time, each in its own process with cores/jobs threads")

    p = sub.add_parser("train", help="train one model on one task, then test it per length")
    add_run_options(p)

    p = sub.add_parser("evaluate", help="score a checkpoint on its task's test lengths")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", help="CSV file (default: test_metrics.csv beside the run)")

    p = sub.add_parser("predict", help="run a checkpoint on a batch file; write outputs and weights")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("report", help="paper-style figures, tables and index.html from stored runs")
    from reports.command import add_report_options

    add_report_options(p)
    p = sub.add_parser("sweep", help="an Optuna study: every trial a full run, tracked in W&B")
    p.add_argument("--config", required=True, help="sweep file, e.g. sweeps/smoke.yaml")
    p.add_argument("--trials", type=int, help="trials with a verdict in all (default: the file's)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--storage", help="SQLAlchemy URL (default: sqlite:///OUT/studies.db)")
    p.add_argument("--study", help="study name (default: the file's `study`, else its name)")
    p.add_argument("--out", default="runs/sweeps", help="trial folders go in OUT/STUDY/")

    p = sub.add_parser("sweep-status", help="a study's trials table and best trial")
    p.add_argument("--study", help="study name (or give --config)")
    p.add_argument("--config", help="sweep file whose study to show")
    p.add_argument("--storage", help="SQLAlchemy URL (default: sqlite:///OUT/studies.db)")
    p.add_argument("--out", default="runs/sweeps")
    p = sub.add_parser("bench", help="speed: step vs controller, data, scaling, copy convergence")
    p.add_argument("--quick", action="store_true", help="every section small (< 3 min on 2 cores)")
    p.add_argument("--only", default="speed,data,scaling,convergence",
                   help="comma-separated sections: speed, data, scaling, convergence")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when present)")
    p.add_argument("--threads", type=int, default=1, help="torch threads while timing steps")
    p.add_argument("--seeds", default="0,1,2", help="convergence seeds, e.g. 0,1,2")
    p.add_argument("--out", default="reports/bench")
    parser.commands = sub.choices
    return parser


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "sample":
        from .sample import sample_command

        return sample_command(args)
    if args.command == "demo":
        from .demo import demo_command

        return demo_command(Path(args.out), Path(args.report))
    if args.command == "reproduce":
        from .reproduce import load_plan, reproduce

        overrides = {k: getattr(args, k) for k in ("devices", "accelerator", "strategy")
                     if getattr(args, k) is not None}
        report = None if args.no_report else Path(args.report or f"reports/{load_plan(args.plan)['name']}")
        tasks, models, seeds = (None if value is None else comma_list(value)
                                for value in (args.tasks, args.models, args.seeds))
        return reproduce(args.plan, Path(args.out), report, overrides, tasks=tasks, jobs=args.jobs,
                         models=models, seeds=seeds)
    if args.command == "train":
        from .train_command import train_command

        return train_command(run_config(args))
    if args.command == "evaluate":
        from .checkpoint_commands import evaluate_command

        return evaluate_command(args.checkpoint, args.out)
    if args.command == "predict":
        from .checkpoint_commands import predict_command

        return predict_command(args.checkpoint, args.inputs, args.out)
    if args.command == "report":
        from reports.command import report_command

        return report_command(args)
    if args.command in ("sweep", "sweep-status"):
        from sweeps.command import status_command, sweep_command

        return sweep_command(args) if args.command == "sweep" else status_command(args)
    if args.command == "bench":
        from .speed import bench_command

        return bench_command(args)
    raise UsageError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    from datamodules.base import ShapeError

    from .allocator import keep_freed_memory
    from .errors import RunError

    try:
        args = build_parser().parse_args(argv)
        keep_freed_memory()
        return dispatch(args)
    except (UsageError, ConfigError, ShapeError, RunError) as error:
        print(f"ntmbench: error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # bad option values raised while building tasks and models
        if "\n" in str(error):
            raise
        print(f"ntmbench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
