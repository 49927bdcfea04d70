"""What a freshly spawned trainer process sets first: the workers of `reproduce --workers` and of
`sweep --workers`, and a multi-device run's process (`bench/run_one.py`), share this start-up."""

from __future__ import annotations

import os

import torch

from .allocator import keep_freed_memory
from .console import RUN_BARS_ENV, quiet_console


def core_share(workers: int) -> int:
    """Torch threads for each of `workers` processes side by side: the cores shared out."""
    return max(1, (os.cpu_count() or 1) // workers)


def start_worker(workers: int) -> None:
    """In a spawned worker, before it trains: its own W&B service, the allocator setting of
    `ntmbench` (core/allocator.py; a spawned process does not inherit it) and its share of the
    cores as torch threads."""
    # W&B keeps its service's token in os.environ, and workers inherit the parent's: drop it, so
    # each worker gets its own service, which ends with it (a stopped worker's run would otherwise
    # stay "in use" in the parent's service, and a rerun could not resume it)
    os.environ.pop("WANDB_SERVICE", None)
    keep_freed_memory()
    quiet_console()  # as the parent's console (NTMBENCH_VERBOSE, inherited, says how)
    if workers > 1:  # side by side, the runs' bars would overwrite each other: the parent's only
        os.environ[RUN_BARS_ENV] = "0"
    torch.set_num_threads(core_share(workers))
