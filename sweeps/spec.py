"""A sweep file: the task, the model, the fixed settings, the search space, the metric.

    # sweeps/smoke.yaml, abridged
    task: copy
    model: ntm
    metric: val/cost_bits        # a validation metric: the value optimized, and what pruning watches
    direction: minimize
    trials: 3                    # default for --trials
    sampler: {name: tpe, seed: 0}
    pruner: {name: median, n_startup_trials: 2}
    fixed: {preset: none, max_steps: 6, val_every: 3, model_options: {memory_size: 8}}
    space:
      lr: {low: 1e-3, high: 3e-2, log: true}     # low/high floats: a float
      batch_size: {low: 2, high: 4}              # low/high ints: an int (step: 1 unless given)
      model_options.controller_size: [8, 16]     # a list: one of its values

One trial's config is the fixed settings with the sampled values put in (`lr`, or
`model_options.controller_size` into `model_options`), built by `RunConfig.from_dict`: a bad key
anywhere fails at load with one line that names it, before any file is written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from core.config import RunConfig, load_yaml_file
from core.errors import ConfigError, OptionError, ShapeError
from datamodules.registry import TASKS, build_task
from models.metrics import METRICS as VAL_METRICS
from models.registry import MODELS, build_model, model_options

KEYS = ("description", "study", "task", "model", "metric", "direction", "trials", "sampler",
        "pruner", "fixed", "space")
NOT_SAMPLED = ("task", "model", "out", "devices", "accelerator", "strategy", "progress",
               "wandb_project", "wandb_entity", "wandb_mode", "wandb_log_model", "model_options",
               "task_options")
SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
PRUNERS = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # it names a folder too


@dataclass(frozen=True)
class Param:
    """One searched setting. `name` is a RunConfig field or `model_options.<option>` or
    `task_options.<option>`; the Optuna parameter has the same name."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def ends(self) -> tuple[Any, Any]:
        """The two extreme values (first and last choice), for checking a file before a trial."""
        if self.choices is not None:
            return self.choices[0], self.choices[-1]
        return self.low, self.high

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k != "name" and v not in (None, False)}


@dataclass(frozen=True)
class SweepSpec:
    path: str
    study: str
    task: str
    model: str
    metric: str
    direction: str
    trials: int
    base: RunConfig  # the fixed settings, with task and model; `out` is set per trial
    space: tuple[Param, ...]
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    description: str = ""

    @classmethod
    def load(cls, path: str | Path, fixed: dict[str, Any] | None = None) -> "SweepSpec":
        """The sweep file at `path`; `fixed` (`--set KEY=VALUE`) overrides its fixed settings."""
        path = Path(path)
        if not path.is_file():
            shipped = ", ".join(sorted(p.stem for p in Path(__file__).parent.glob("*.yaml")))
            raise ConfigError(f"sweep file {path} not found; shipped sweeps (sweeps/NAME.yaml): "
                              f"{shipped}")
        raw = load_yaml_file(path, "sweep file")
        if fixed:
            raw = with_fixed(raw, fixed)
        try:
            return cls.from_dict(raw, str(path))
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    @classmethod
    def from_dict(cls, raw: Any, path: str = "<sweep>") -> "SweepSpec":
        if not isinstance(raw, dict):
            raise ConfigError("a sweep file is a mapping with keys " + ", ".join(KEYS))
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise ConfigError(f"unknown key {', '.join(map(repr, unknown))}; "
                              f"valid keys: {', '.join(KEYS)}")
        for key in ("task", "model", "space"):
            if key not in raw:
                raise ConfigError(f"missing key {key!r}")
        study = str(raw.get("study") or Path(path).stem)
        if not STUDY_NAME.match(study):
            raise ConfigError(f"study name {study!r} may hold only letters, digits, '.', '_' and '-'")
        metric, direction = raw.get("metric", "val/cost_bits"), raw.get("direction", "minimize")
        if not (isinstance(metric, str) and metric.startswith("val/") and metric[4:] in VAL_METRICS):
            valid = ", ".join("val/" + m for m in VAL_METRICS)
            raise ConfigError(f"metric must be one of {valid} (got {metric!r})")
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"direction must be minimize or maximize (got {direction!r})")
        trials = raw.get("trials", 20)
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise ConfigError(f"trials must be an integer >= 1 (got {trials!r})")
        base = _base_config(raw["task"], raw["model"], raw.get("fixed") or {})
        space = _space(raw["space"], base)
        spec = cls(path=path, study=study, task=base.task, model=base.model, metric=metric,
                   direction=direction, trials=trials, base=base, space=space,
                   sampler=_component("sampler", raw.get("sampler") or {"name": "tpe"}, SAMPLERS),
                   pruner=_component("pruner", raw.get("pruner") or {"name": "none"}, PRUNERS),
                   description=str(raw.get("description", "")))
        spec.check()
        return spec

    # --- what a trial uses ---------------------------------------------------------------------

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.space}

    def trial_config(self, params: dict[str, Any], run_dir: str | Path) -> RunConfig:
        """The fixed settings with `params` put in, writing into `run_dir`."""
        values = self.base.to_dict()
        values["model_options"] = dict(values["model_options"])
        values["task_options"] = dict(values["task_options"])
        for name, value in params.items():
            group, dot, key = name.partition(".")
            if dot:
                values[group][key] = value
            else:
                values[name] = value
        values["out"] = str(run_dir)
        return RunConfig.from_dict(values)

    def sampler_for(self, trial_number: int) -> optuna.samplers.BaseSampler:
        """The sampler for one trial. With a `seed`, each trial's sampler is seeded from the seed
        and the trial number, so no two trials share a random stream whatever the workers, and a
        one-worker sweep is reproducible; without one, each draws from the OS."""
        options = dict(self.sampler)
        name, seed = options.pop("name"), options.pop("seed", None)
        if seed is not None:
            seed = (int(seed) * 1_000_003 + trial_number) % 2**32
        return SAMPLERS[name](seed=seed, **options)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        options = dict(self.pruner)
        return PRUNERS[options.pop("name")](**options)

    def identity(self) -> dict[str, Any]:
        """What a study is bound to: rerunning a study with another sweep file is refused."""
        base = self.base.identity()
        ident = {"task": self.task, "model": self.model, "metric": self.metric,
                 "direction": self.direction, "fixed": base,
                 "space": {p.name: p.describe() for p in self.space}}
        return json.loads(json.dumps(ident))  # as it reads back from the storage

    # --- checks ----------------------------------------------------------------------------------

    def check(self) -> None:
        """Build the task and the model with every searched value at its low end, then at its high
        end, so a value no trial could train with fails now, not in trial 7."""
        for end in (0, 1):
            params = {p.name: p.ends()[end] for p in self.space}
            where = "low" if end == 0 else "high"
            try:
                cfg = self.trial_config(params, "unused").resolved()
            except ConfigError as error:
                raise ConfigError(f"space at its {where} ends: {error}") from None
            try:
                task = build_task(cfg.task, **cfg.task_options)
                build_model(cfg.model, task.input_size, task.output_size, **cfg.model_options)
            except (OptionError, ShapeError) as error:
                raise ConfigError(f"space at its {where} ends: {error}") from None


def with_fixed(raw: Any, overrides: dict[str, Any]) -> Any:
    """A sweep file's mapping with `overrides` put into its fixed settings: RunConfig fields
    (`max_steps`) or single options (`model_options.memory_size`). A searched setting cannot be
    fixed this way (the space says what a trial samples)."""
    if not isinstance(raw, dict):
        return raw  # from_dict says what a sweep file must be
    searched = set(raw.get("space") or {}) if isinstance(raw.get("space"), dict) else set()
    fixed = dict(raw.get("fixed") or {}) if isinstance(raw.get("fixed"), dict) else {}
    for key, value in overrides.items():
        if key in searched:
            raise ConfigError(f"--set {key}: {key} is searched (space.{key}); edit the sweep file's "
                              f"space to change its range")
        group, dot, name = key.partition(".")
        if dot and group in ("model_options", "task_options"):
            fixed[group] = {**(fixed.get(group) or {}), name: value}
        else:
            fixed[key] = value
    return {**raw, "fixed": fixed}


def _base_config(task: Any, model: Any, fixed: Any) -> RunConfig:
    if not isinstance(fixed, dict):
        raise ConfigError(f"fixed must be a mapping of run settings (got {fixed!r})")
    for key, why in (("task", "set task at the top of the file"),
                     ("model", "set model at the top of the file"),
                     ("out", "trial folders are <--out>/<study>/trial_<n>")):
        if key in fixed:
            raise ConfigError(f"fixed.{key}: not allowed here ({why})")
    values = {**fixed, "task": task, "model": model, "out": "unused"}
    base = RunConfig.from_dict(values, where="fixed")
    if base.devices != 1:
        raise ConfigError("fixed.devices must be 1: a trial is one process; use --workers K "
                          "(or several machines) to run trials side by side")

    if base.task not in TASKS:
        raise ConfigError(f"unknown task {base.task!r}; choose one of: {', '.join(TASKS)}")
    if base.model not in MODELS:
        raise ConfigError(f"unknown model {base.model!r}; choose one of: {', '.join(MODELS)}")
    return base


def _space(raw: Any, base: RunConfig) -> tuple[Param, ...]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("space must map at least one setting to its range or choices")
    return tuple(_param(str(name), spec, base) for name, spec in raw.items())


def _param(name: str, spec: Any, base: RunConfig) -> Param:
    _check_target(name, base)
    where = f"space.{name}"
    if isinstance(spec, list):
        if not spec or not all(v is None or isinstance(v, (bool, int, float, str)) for v in spec):
            raise ConfigError(f"{where}: a list of choices must be non-empty and hold plain values")
        return Param(name, choices=tuple(spec))
    keys = set(spec) if isinstance(spec, dict) else set()
    if not {"low", "high"} <= keys or keys - {"low", "high", "log", "step"}:
        raise ConfigError(f"{where}: expected a list of choices or {{low, high[, log][, step]}} "
                          f"(got {spec!r})")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    numbers = [v for v in (low, high, step) if v is not None]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        raise ConfigError(f"{where}: low, high and step must be numbers (got {spec!r})")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false (got {log!r})")
    if not low < high:
        raise ConfigError(f"{where}: low must be < high (got {low} and {high})")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"{where}: a log range needs low > 0 and no step")
    integer = all(isinstance(v, int) for v in numbers)
    return Param(name, low=low, high=high, log=log, step=step, integer=integer)


def _check_target(name: str, base: RunConfig) -> None:
    group, dot, key = name.partition(".")
    fields = [f.name for f in dataclasses.fields(RunConfig)]
    if not dot:
        if name not in fields:
            searchable = [f for f in fields if f not in NOT_SAMPLED]
            raise ConfigError(f"space.{name}: unknown setting; search one of {', '.join(searchable)}, "
                              f"model_options.<option> or task_options.<option>")
        if name in NOT_SAMPLED:
            raise ConfigError(f"space.{name}: cannot be searched (search single options as "
                              f"model_options.<option> or task_options.<option>)")
        return
    if group == "model_options":
        valid = sorted(model_options(base.model))
    elif group == "task_options":
        valid = [f.name for f in dataclasses.fields(TASKS[base.task])]
    else:
        raise ConfigError(f"space.{name}: unknown group {group!r}; use model_options.<option> or "
                          f"task_options.<option>")
    if key not in valid:
        owner = base.model if group == "model_options" else base.task
        raise ConfigError(f"space.{name}: {owner} has no option {key!r}; valid: {', '.join(valid)}")


def _component(kind: str, raw: Any, registry: dict[str, type]) -> dict[str, Any]:
    """`{"name": "median", **kwargs}`, checked by building it once."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or raw.get("name") not in registry:
        got = raw.get("name") if isinstance(raw, dict) else raw
        raise ConfigError(f"{kind}.name must be one of {', '.join(registry)} (got {got!r})")
    options = {k: v for k, v in raw.items() if k != "name"}
    if kind == "sampler" and options.get("seed") is not None and not isinstance(options["seed"], int):
        raise ConfigError(f"sampler.seed must be an integer or null (got {options['seed']!r})")
    try:
        registry[raw["name"]](**options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{kind} {raw['name']}: {str(error).splitlines()[0]}") from None
    return dict(raw)
