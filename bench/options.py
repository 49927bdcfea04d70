"""The command line's vocabulary: the parser class, value types, and the flag sets that several
subcommands share (every RunConfig field as a flag; the report's flags).

Imports stay light (no torch, no pandas) so that `ntmbench --help` answers at once.
"""

from __future__ import annotations

import argparse
import re
import typing
from typing import Callable

from core.config import (ACCELERATORS, CONVERGED_BELOW, OPTIMIZERS, TEST_ON, WANDB_LOG_MODEL,
                         WANDB_MODES, RunConfig, load_yaml, load_yaml_file)
from core.errors import ConfigError, UsageError
from models.schedule import SCHEDULES

# the registries' names, written out so that --help imports no torch (tests/test_layers.py keeps
# them equal to datamodules/registry.py and models/registry.py)
TASK_NAMES = ("copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort")
MODEL_NAMES = ("ntm", "ntm-ff", "lstm")
PRESET_NAMES = ("paper", "none")


class Renamed(argparse.Action):
    """A flag's old name: using it is a one-line error naming the new one."""

    def __init__(self, option_strings, dest, new: str, values: dict | None = None, **kwargs) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs="?", help=argparse.SUPPRESS,
                         **kwargs)
        self.new, self.values = new, values or {}

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        value = self.values.get(values, values)
        raise UsageError(f"{parser.prog}: {option_string} is now {self.new}"
                         + (f" (e.g. {self.new} {value})" if value is not None else ""))


def renamed(p: argparse.ArgumentParser, old: str, new: str, values: dict | None = None) -> None:
    """`old`, the flag's former name (`values`: its former values' new names)."""
    p.add_argument(old, action=Renamed, new=new, values=values)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the valid options."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "unrecognized arguments" in message:
            valid = sorted({s for a in self._actions if a.help != argparse.SUPPRESS  # not old names
                            for s in a.option_strings if s.startswith("--")})
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


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low` (`--jobs 0` -> "argument --jobs: must be an integer
    >= 1 (got '0')"). The one check of every counted flag."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low} (got {text!r})")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def seed_list(text: str) -> list[int]:
    """An argparse type: '0,1,2' -> [0, 1, 2], seeds >= 0, none twice."""
    try:
        seeds = [int(item) for item in comma_list(text)]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integers >= 0, e.g. 0,1,2 (got {text!r})")
    return seeds


def comma_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the comma lists of --tasks, --models, --seeds and --only."""
    return [item.strip() for item in text.split(",") if item.strip()]


def key_values(pairs: list[str] | None) -> dict[str, str]:
    """`["heads=2", "memory_size=64"]` -> `{"heads": "2", "memory_size": "64"}`."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {pair!r} (e.g. --model-option heads=2)")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def fixed_setting(text: str) -> tuple[str, object]:
    """An argparse type: `max_steps=200` -> ("max_steps", 200), the value read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. max_steps=200 (got {text!r})")
    return key.strip().replace("-", "_"), load_yaml(value.strip())


RUN_FLAGS = ("task", "model", "preset", "optimizer", "lr", "momentum", "clip", "lr_schedule",
             "warmup_steps", "batch_size", "curriculum",
             "max_steps", "seed", "val_every", "val_batches", "val_batch_size", "test_batch_size",
             "checkpoint_every", "test_on", "devices", "accelerator", "strategy", "out", "wandb_project",
             "wandb_entity", "wandb_mode", "wandb_log_model")
CHOICES = {"task": TASK_NAMES, "model": MODEL_NAMES, "preset": PRESET_NAMES, "optimizer": OPTIMIZERS,
           "lr_schedule": SCHEDULES,
           "test_on": TEST_ON, "accelerator": ACCELERATORS, "wandb_mode": WANDB_MODES,
           "wandb_log_model": WANDB_LOG_MODEL}
HINTS = {
    "task": "the task (datamodules/registry.py; default copy)",
    "model": "the model (models/registry.py; default ntm)",
    "preset": "paper (default: sizes and lr of the paper's tables) or none",
    "optimizer": ("rmsprop (default), rmsprop-centered (the form of Graves 2013, "
                  "models/optim.py) or adam"),
    "lr": "learning rate (default: the preset's)",
    "momentum": "RMSprop's momentum, Adam's beta1 (default 0.9)",
    "clip": "gradients clipped elementwise to [-clip, clip] (default 10)",
    "lr_schedule": "constant (default, the paper's) or cosine: the learning rate falls along half "
                   "a cosine to 0 at --max-steps",
    "warmup_steps": "updates of linear learning-rate warm-up from 0 (default 0)",
    "batch_size": "sequences per update (default 16)",
    "curriculum": ("updates over which the training range grows from its smallest shape to the "
                   "full range (copy, repeat copy, associative recall; default 0: no curriculum)"),
    "max_steps": "training updates (default 1000)",
    "seed": "weights and data stream (default 0)",
    "val_every": "updates between validations (default 200)",
    "val_batches": "validation batches (default 10)",
    "val_batch_size": "sequences per validation batch (default 100)",
    "test_batch_size": "sequences per test shape (default 100)",
    "checkpoint_every": "updates between checkpoints (default 200)",
    "test_on": "last (default) or best: test the checkpoint of the lowest validation cost",
    "devices": "devices (GPUs, or CPU processes with --strategy ddp; default 1)",
    "accelerator": "cpu (default), gpu or auto",
    "strategy": "Lightning's strategy, e.g. ddp (default auto)",
    "out": "the run folder (default: a unique runs/<task>-<model>-seed<s>-<time>-<id>)",
    "wandb_project": "W&B project (default ntmbench)",
    "wandb_mode": "offline (default, or WANDB_MODE when set), online or disabled",
    "wandb_entity": "W&B entity (default: the login's)",
    "wandb_log_model": "the run's model artifact: best (default: the checkpoint tested), all "
                       "(last and best) or none",
}
FIELD_TYPES = typing.get_type_hints(RunConfig)


def flag_type(name: str) -> Callable[[str], object] | None:
    """argparse's type for the flag of RunConfig field `name`: int, float or text."""
    kind = FIELD_TYPES[name]
    found = set(typing.get_args(kind)) or {kind}
    return int if int in found else float if float in found else None


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def name_flags(message: str, fields: list[str]) -> str:
    """A RunConfig error about fields given as flags, naming the flags: `lr must be > 0` ->
    `--lr must be > 0`."""
    for name in sorted(fields, key=len, reverse=True):
        message = re.sub(rf"(?<![\w-])(?:option ')?{name}'?(?![\w-])", flag_of(name), message)
    return message


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Flags for every RunConfig field. Only flags given on the command line are set (SUPPRESS),
    so they override a --config file and nothing else does."""
    d = RunConfig()
    p.add_argument("--config", help="a YAML file of RunConfig fields; flags override it")
    for name in RUN_FLAGS:
        p.add_argument(flag_of(name), dest=name, default=argparse.SUPPRESS, type=flag_type(name),
                       choices=CHOICES.get(name), help=HINTS.get(name, f"default: {getattr(d, name)!r}"))
    p.add_argument("--model-option", "-m", action="append", metavar="KEY=VALUE",
                   help="set a model option, e.g. -m heads=2 -m memory_size=64 (repeatable)")
    p.add_argument("--task-option", "-t", action="append", metavar="KEY=VALUE",
                   help="set a task option, e.g. -t max_length=10 (repeatable)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                   help="no progress bar")


def run_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of `train`: the --config file (if any), then the flags given."""
    values = load_config_file(args.config) if args.config else {}
    values.update({k: getattr(args, k) for k in (*RUN_FLAGS, "progress") if hasattr(args, k)})
    values["model_options"] = {**values.get("model_options", {}), **key_values(args.model_option)}
    values["task_options"] = {
        **values.get("task_options", {}),
        **{k: load_yaml(v) for k, v in key_values(args.task_option).items()},  # -t lengths=[30,50]
    }
    # the fields an error names as flags: those given as flags, and those whose names are no
    # words of prose (max_steps, lr), which the fix is a flag for
    named = {k for k in RUN_FLAGS if hasattr(args, k) or "_" in k or k == "lr"}
    try:
        return RunConfig.from_dict(values)
    except ConfigError as error:
        raise ConfigError(name_flags(str(error), sorted(named))) from None


def load_config_file(path: str) -> dict:
    """A RunConfig as YAML; an unreadable file, or a key that is no RunConfig field, is a
    one-line error naming the file."""
    values = load_yaml_file(path, "config")
    if not isinstance(values, dict):
        raise ConfigError(f"config {path} must hold a mapping of RunConfig fields, e.g. a run's "
                          f"config.yaml")
    RunConfig.check_keys(values, path)
    return values


def add_report_options(p: argparse.ArgumentParser) -> None:
    """The `ntmbench report` flags."""
    p.add_argument("--runs", action="append", metavar="DIR",
                   help="a folder of runs, searched recursively (repeatable; default: runs)")
    p.add_argument("--study", action="append", metavar="NAME",
                   help="an Optuna study to draw (repeatable; needs --storage)")
    p.add_argument("--storage", metavar="URL",
                   help="the studies' Optuna storage, e.g. sqlite:///sweeps.db or a journal file")
    p.add_argument("--wandb-project", metavar="ENTITY/PROJECT",
                   help="also read runs from the W&B API (needs network and a login)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder, e.g. reports/latest")
    p.add_argument("--threshold", type=float, default=CONVERGED_BELOW,
                   help="converged once the validation bit errors per sequence fall below this "
                        f"(default {CONVERGED_BELOW})")
    p.add_argument("--table-format", choices=("csv", "parquet"), default="csv",
                   help="format of the tidy table (parquet needs pyarrow)")
    p.add_argument("--shapes", type=at_least(1), default=3,
                   help="test shapes shown in the outputs-vs-targets figures (default 3)")
    add_wandb_options(p)


def add_wandb_options(p: argparse.ArgumentParser) -> None:
    """Where a command that is no training run (report, evaluate) logs its own W&B run."""
    p.add_argument("--wandb-mode", choices=WANDB_MODES, help=HINTS["wandb_mode"])
    p.add_argument("--wandb-entity", default="", help=HINTS["wandb_entity"])

