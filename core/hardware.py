"""What a run trains on, recorded with it, and its training wall time at every validation, so
that reports can put the same experiment on different hardware side by side.

    RUN/hardware.json   one entry per start of the run (a resume on another machine adds one):
                        {"started": ..., "from_step": 0, "hardware": {"accelerator": "cpu",
                         "device": "AMD EPYC", "devices": 1, "torch_threads": 2, ...}}
    val/wall_s          seconds of training so far (fit only, summed across resumes), logged
                        beside every validation's metrics
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import lightning.pytorch as pl
import torch

from .config import RunConfig
from .files import write_text


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(cfg: RunConfig) -> dict:
    """The accelerator, device name and count, processes and threads a run trains with."""
    gpu = cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available())
    return {
        "accelerator": "cuda" if gpu else "cpu",
        "device": torch.cuda.get_device_name(0) if gpu and torch.cuda.is_available() else cpu_model(),
        "devices": cfg.devices,
        "strategy": cfg.strategy,
        "torch_threads": torch.get_num_threads(),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
    }


def describe_hardware(found: dict) -> str:
    """`hardware`'s dict as one label: `CPU, 2 threads`, `2 CPU processes (ddp), 1 thread each`,
    `1 GPU (NVIDIA H200)`, `2 GPUs (NVIDIA H200)`."""
    n = int(found.get("devices") or 1)
    if found.get("accelerator") == "cuda":
        return f"{n} GPU{'s' if n > 1 else ''} ({found.get('device', '?')})"
    label = "CPU" if n == 1 else f"{n} CPU processes ({found.get('strategy') or 'ddp'})"
    threads = found.get("torch_threads")
    if threads:
        label += f", {threads} thread{'s' if threads != 1 else ''}{' each' if n > 1 else ''}"
    return label


def record_hardware(cfg: RunConfig, from_step: int, population: dict | None = None) -> dict:
    """Append this start of the run to RUN/hardware.json -> the hardware (for a population
    member, also the population it shares the machine with: its members, seeds and folder)."""
    path = cfg.run_dir / "hardware.json"
    try:
        entries = json.loads(path.read_text()) if path.exists() else []
    except (OSError, ValueError):
        entries = []  # damaged: start the list again rather than stop the run
    found = hardware(cfg)
    if population is not None:
        found["population"] = population
    entries.append({"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "from_step": from_step, "hardware": found})
    write_text(path, json.dumps(entries, indent=2) + "\n")
    return found


class WallClock(pl.Callback):
    """Logs `val/wall_s`, the seconds spent training so far, at every validation. The count
    survives a resume (it is kept in the checkpoint), so a resumed run's clock goes on where the
    interrupted one's last checkpoint left it."""

    def __init__(self) -> None:
        self.before = 0.0  # seconds trained by earlier attempts, up to their checkpoint
        self.start: float | None = None

    def elapsed(self) -> float:
        return self.before + (time.perf_counter() - self.start if self.start is not None else 0.0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self.start is not None:
            pl_module.log("val/wall_s", self.elapsed(), logger=True, prog_bar=False)

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before = float(state_dict.get("elapsed", 0.0))
