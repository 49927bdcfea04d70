"""Experiment plans (`bench/plans/<name>.yaml`): tasks x models x seeds, each run a RunConfig.

    name: quick                 # runs go to <out>/<name>/<task>-<model>-seed<s>
    version: 1                  # bump when a change makes earlier runs incomparable
    defaults: {...}             # RunConfig fields shared by every run
    experiments:
      - task: copy
        seeds: [0, 1, 2]
        defaults: {...}         # RunConfig fields shared by this task's runs (optional)
        models:
          ntm: {max_steps: 1500, lr: 0.001}    # RunConfig fields for this model on this task
          lstm: {max_steps: 1500}

Every mapping of settings is RunConfig fields, checked by `RunConfig.from_dict` when the plan is
loaded; an unknown key at any level is a one-line error naming it and the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import RunConfig, load_yaml_file
from core.errors import ConfigError
from core.run_dir import stored_identity
from models.registry import batches_members

PLANS = Path(__file__).parent / "plans"
PLAN_KEYS = ("name", "version", "defaults", "experiments")
EXPERIMENT_KEYS = ("task", "seeds", "defaults", "models")
# set by the plan's structure, not by its settings
PLACED = ("task", "model", "seed", "out")


@dataclass
class PlannedRun:
    config: RunConfig

    @property
    def label(self) -> str:
        c = self.config
        return f"{c.task} / {c.model} / seed {c.seed} ({c.max_steps} steps)"

    def finished(self) -> bool:
        """Tested under this very run's settings (display settings such as `progress` aside)."""
        run = self.config.run_dir
        if not (run / "test_metrics.csv").exists():
            return False
        return stored_identity(run) == self.config.resolved().identity()


def _check_keys(where: str, raw: Any, valid: tuple[str, ...], required: tuple[str, ...]) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(valid)} (got {raw!r})")
    unknown = sorted(set(map(str, raw)) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(map(repr, unknown))}; valid keys: "
                          f"{', '.join(valid)}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing key {', '.join(map(repr, missing))}")
    return raw


def _settings(where: str, raw: Any) -> dict[str, Any]:
    """A mapping of RunConfig fields (None: none), its keys checked now."""
    raw = {} if raw is None else raw
    RunConfig.check_keys(raw, where, placed=PLACED,
                         why="the plan's experiments, models and seeds place every run")
    return dict(raw)


def load_plan(name: str) -> dict[str, Any]:
    """The plan `name` (a file of bench/plans, or a path to a .yaml), every level's keys checked."""
    path = Path(name) if name.endswith(".yaml") else PLANS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PLANS.glob("*.yaml")))
        raise ConfigError(f"no plan {name!r}; choose one of: {known} (or a path to a .yaml plan)")
    where = f"plan {path.name}"
    plan = _check_keys(where, load_yaml_file(path, "plan"), PLAN_KEYS,
                       ("name", "version", "experiments"))
    plan["defaults"] = _settings(f"{where}: defaults", plan.get("defaults"))
    if not isinstance(plan["experiments"], list) or not plan["experiments"]:
        raise ConfigError(f"{where}: experiments must be a non-empty list")
    for i, experiment in enumerate(plan["experiments"]):
        at = f"{where}: experiments[{i}]"
        _check_keys(at, experiment, EXPERIMENT_KEYS, ("task", "seeds", "models"))
        experiment["defaults"] = _settings(f"{at}.defaults", experiment.get("defaults"))
        if not isinstance(experiment["models"], dict) or not experiment["models"]:
            raise ConfigError(f"{at}.models: expected a mapping of model name -> settings")
        seeds = experiment["seeds"]
        if not isinstance(seeds, list) or not seeds or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ConfigError(f"{at}.seeds: expected a non-empty list of integers (got {seeds!r})")
        for model, settings in experiment["models"].items():
            experiment["models"][model] = _settings(f"{at}.models.{model}", settings)
    plan["path"] = str(path)
    return plan


def planned_runs(plan: dict[str, Any], out: Path, overrides: dict[str, Any]) -> list[PlannedRun]:
    """Every run of the plan as a full RunConfig (validated now, before anything runs), in the
    order they train: per task, seed by seed, every model of a seed before the next seed. A plan
    stopped part way then holds whole comparisons (all models at its first seeds)."""
    runs = []
    for i, experiment in enumerate(plan["experiments"]):
        for seed in experiment["seeds"]:
            for model, settings in experiment["models"].items():
                values = {**plan["defaults"], **experiment["defaults"], **settings, **overrides,
                          "task": experiment["task"], "model": model, "seed": seed}
                values["out"] = str(out / plan["name"] / f"{experiment['task']}-{model}-seed{seed}")
                where = f"plan {Path(plan['path']).name}: experiments[{i}].models.{model}"
                runs.append(PlannedRun(RunConfig.from_dict(values, where)))
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


@dataclass
class Job:
    """What one training process does: a solo run, or a population (the runs of one task and
    model that differ only in seed, trained together; core/population.py) kept in `population`."""

    runs: list[PlannedRun]
    population: Path | None = None

    @property
    def label(self) -> str:
        if self.population is None:
            return self.runs[0].label
        c = self.runs[0].config
        seeds = ",".join(str(r.config.seed) for r in self.runs)
        return f"{c.task} / {c.model} / seeds {seeds} ({c.max_steps} steps, one population)"


def population_dir(root: Path, runs: list[PlannedRun]) -> Path:
    """ROOT/populations/<task>-<model>-seeds0-1-2: where the population of `runs` is kept."""
    c = runs[0].config
    seeds = "-".join(str(r.config.seed) for r in runs)
    return root / "populations" / f"{c.task}-{c.model}-seeds{seeds}"


def training_jobs(pending: list[PlannedRun], root: Path, together: bool = True) -> list[Job]:
    """The pending runs as jobs. With `together`, the runs of one task and model that differ in
    seed only train as one population (on one device), in the order the plan lists them, where
    the model batches a population's members (models/registry.py: the NTMs; an LSTM population
    runs its members one after another, slower than alone). A run already started alone (its
    folder holds a checkpoint that no population of these runs keeps) resumes alone."""
    if not together:
        return [Job([run]) for run in pending]
    groups: dict[str, list[PlannedRun]] = {}
    for run in pending:
        identity = {k: v for k, v in run.config.resolved().identity().items() if k != "seed"}
        groups.setdefault(repr(sorted(identity.items())), []).append(run)
    out = []
    for group in groups.values():
        if (group[0].config.devices > 1 or len(group) == 1
                or not batches_members(group[0].config.model)):
            out += [Job([run]) for run in group]
            continue
        if not (population_dir(root, group) / "population.yaml").exists():
            started = [r for r in group if (r.config.run_dir / "checkpoints" / "last.ckpt").exists()]
            out += [Job([run]) for run in started]
            group = [r for r in group if r not in started]
        if len(group) > 1:
            out.append(Job(group, population_dir(root, group)))
        else:
            out += [Job([run]) for run in group]
    return out
