"""Run folders: unique when unnamed, locked while a process trains in them, and refused when they
hold another run's config, so concurrent runs never overwrite each other's files."""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from pathlib import Path

import yaml

from .config import ConfigError, RunConfig
from .files import write_text

# A DDP launch re-runs the command in child processes; they find the folder rank zero chose here.
RUN_DIR_ENV = "NTMBENCH_RUN_DIR"


def unique_run_dir(cfg: RunConfig, parent: Path = Path("runs")) -> Path:
    """`runs/<task>-<model>-seed<seed>-<time>-<random>`: distinct for runs started together."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return parent / f"{cfg.task}-{cfg.model}-seed{cfg.seed}-{stamp}-{uuid.uuid4().hex[:6]}"


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
    """Write DIR/config.yaml, or check that the one there is this run's (a resume)."""
    config_file = cfg.run_dir / "config.yaml"
    if config_file.exists():
        try:
            previous = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError:
            previous = {}
        if previous != cfg.to_dict():
            changed = sorted(k for k in cfg.to_dict() if previous.get(k) != cfg.to_dict()[k])
            raise ConfigError(
                f"{cfg.run_dir} holds a run with another config (differs in {', '.join(changed)}); "
                f"choose another --out or delete that folder"
            )
    elif write:
        write_text(config_file, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def is_rank_zero() -> bool:
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("RANK", 0)) == 0
