"""Run folders: unique when unnamed, locked while a process trains in them, and refused when they
hold another run's config, so concurrent runs never overwrite each other's files."""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from pathlib import Path

import yaml

from models.schedule import BUDGET_SCHEDULES

from .config import DISPLAY_FIELDS, ConfigError, RunConfig, load_yaml
from .files import write_text

# A DDP launch re-runs the command in child processes; they find the folder rank zero chose here.
RUN_DIR_ENV = "NTMBENCH_RUN_DIR"


def unique_run_dir(cfg: RunConfig, parent: Path = Path("runs"), seeds=None) -> Path:
    """`runs/<task>-<model>-seed<seed>-<time>-<random>`: distinct for runs started together (a
    population of `seeds`: `...-seeds0-1-2-...`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    which = f"seeds{'-'.join(map(str, seeds))}" if seeds is not None else f"seed{cfg.seed}"
    return parent / f"{cfg.task}-{cfg.model}-{which}-{stamp}-{uuid.uuid4().hex[:6]}"


class RunLock:
    """An exclusive lock on DIR/.lock for as long as this process trains in DIR."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(run_dir / ".lock", "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise ConfigError(
                f"{run_dir} is in use by another ntmbench process; wait for it to finish or "
                f"choose another --out"
            ) from None

    def release(self) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def claim_config(cfg: RunConfig, write: bool) -> None:
    """Write DIR/config.yaml, or check that the one there is this run's (a resume): the same
    identity (RunConfig.identity: display settings such as `progress` do not count; the file
    keeps what the run was started with). A config
    that differs only in a larger `max_steps` extends the run: it resumes from its last
    checkpoint and trains on, as if it had been given that budget from the start. That holds only
    for a constant learning rate: a scheduled one (cosine) is a function of `max_steps`, so a
    raised budget would resume at another rate than the run had, and is refused."""
    config_file = cfg.run_dir / "config.yaml"
    current = cfg.identity()
    if config_file.exists():
        previous = stored_identity(cfg.run_dir)
        if previous == current:
            return  # the same run, maybe shown otherwise (--no-progress, another W&B project)
        changed = sorted(k for k in {*current, *previous} if previous.get(k) != current.get(k))
        if changed == ["max_steps"] and isinstance(previous["max_steps"], int):
            if current["max_steps"] < previous["max_steps"]:
                raise ConfigError(
                    f"{cfg.run_dir} holds a run of max_steps {previous['max_steps']}; a budget can "
                    f"only grow (got {current['max_steps']}): choose another --out for a shorter run"
                )
            if previous["lr_schedule"] in BUDGET_SCHEDULES:
                raise ConfigError(
                    f"{cfg.run_dir} holds a run of max_steps {previous['max_steps']} whose "
                    f"{previous['lr_schedule']} learning rate is scheduled over that budget, so it "
                    f"cannot be extended to {current['max_steps']}: choose another --out"
                )
            if write:
                extend_budget(cfg, previous["max_steps"])
            return
        raise ConfigError(
            f"{cfg.run_dir} holds a run with another config (differs in {', '.join(changed)}); "
            f"choose another --out or delete that folder"
        )
    elif write:
        write_config(cfg)


def stored_identity(run_dir: Path) -> dict:
    """The identity of the run recorded in DIR/config.yaml ({} if it is unreadable). A field the
    file lacks (it was written before the field existed, e.g. lr_schedule) reads as its default,
    which is what that run computed."""
    try:
        previous = load_yaml((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(previous, dict):
        return {}
    return {k: v for k, v in {**RunConfig().to_dict(), **previous}.items() if k not in DISPLAY_FIELDS}


def write_config(cfg: RunConfig) -> None:
    """DIR/config.yaml: the run's whole config, in the order of its fields (written atomically)."""
    write_text(cfg.run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def extend_budget(cfg: RunConfig, previous_steps: int) -> None:
    """Raise the run's recorded budget to `cfg.max_steps`. The test of the shorter budget is kept
    as test_metrics.max_steps-<previous>.csv; it is set aside before the config changes, so a kill
    in between never leaves a test that seems to be of the longer run."""
    tested = cfg.run_dir / "test_metrics.csv"
    if tested.exists():
        os.replace(tested, tested.with_name(f"test_metrics.max_steps-{previous_steps}.csv"))
    write_config(cfg)
    print(f"{cfg.run_dir}: budget raised from {previous_steps} to {cfg.max_steps} steps; "
          f"training on from its last checkpoint", flush=True)


def is_rank_zero() -> bool:
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("RANK", 0)) == 0
