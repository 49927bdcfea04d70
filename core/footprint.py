"""The memory a run needs, estimated from its config before anything is allocated, so that a size
that cannot fit is one line naming the setting instead of a process the kernel kills (exit 137).

The estimate is a lower bound: what back-propagation through time must keep at the least (the
NTM's memory matrix, or the LSTM's cell and hidden state, at every step of the longest training
sequence, for every sequence of a batch), the weights with their gradients and optimizer state,
and one test batch's state at the longest test length. Real use is higher (activations, the
allocator's slack), so a run refused here could never have run.

    needed_bytes(cfg) for the paper NTM on copy, batch 16:          about 8 MB
    ... with -m memory_size=200000000:                             about 10 PB -> refused
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from datamodules.registry import build_task
from models.lstm import LSTMConfig
from models.ntm import NTMConfig
from models.registry import model_config

from .config import RunConfig
from .errors import ConfigError

FLOAT = 4  # bytes of a float32
SHAPE_DRAWS = 64  # training shapes drawn to find the longest training sequence


@dataclass(frozen=True)
class Footprint:
    train_bytes: int  # one training step: BPTT state of a batch + weights, gradients, optimizer
    test_bytes: int  # one test batch at the longest test shape (no gradients)
    steps: int  # time steps of the longest training sequence
    dominant: str  # the settings that make the state large, for the error message

    @property
    def bytes(self) -> int:
        return max(self.train_bytes, self.test_bytes)


def _longest(task, shapes: list[dict]) -> int:
    """Time steps of the longest of `shapes` (one sequence of each is drawn: tasks are cheap)."""
    generator = torch.Generator().manual_seed(0)
    return max(task.sample(generator, 1, **shape)["inputs"].shape[1] for shape in shapes)


def _sizes(config, inputs: int, outputs: int) -> tuple[int, int, str]:
    """(floats of state kept per sequence and step, parameters at the least, what dominates)."""
    if isinstance(config, NTMConfig):
        N, M = config.memory_size, config.memory_width
        C, L = config.controller_size, config.controller_layers
        heads = config.n_read + config.n_write
        state = N * M + heads * N + config.n_read * M + 2 * C * L
        params = C * (heads * M + inputs + config.n_read * M) + config.n_read * M * outputs
        if config.memory_init != "constant":
            params += N * M  # the initial memory: a parameter (learned) or a buffer (random)
        return state, params, f"memory_size={N} x memory_width={M}"
    if isinstance(config, LSTMConfig):
        S, L = config.size, config.layers
        return 2 * S * L, 4 * S * (S + inputs) * L + S * outputs, f"layers={L} x size={S}"
    return 0, 0, ""  # a model this estimate does not know: no check


def footprint(cfg: RunConfig) -> Footprint:
    """The lower-bound estimate for the resolved `cfg` (preset applied)."""
    task = build_task(cfg.task, **cfg.task_options)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_steps = _longest(task, [task.train_shape(generator) for _ in range(SHAPE_DRAWS)])
    test_steps = _longest(task, task.test_shapes())
    config = model_config(cfg.model, **cfg.model_options)
    state, params, dominant = _sizes(config, task.input_size, task.output_size)
    weights = 4 * params  # weights, gradients and two optimizer moments
    train = FLOAT * (weights + cfg.batch_size * train_steps * state)
    test = FLOAT * (params + cfg.test_batch_size * (state + test_steps * task.output_size))
    return Footprint(train, test, train_steps, dominant)


def available_bytes() -> int | None:
    """Memory the kernel can give this process now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_fits(cfg: RunConfig, available: int | None = None) -> Footprint:
    """Refuse, with one line naming the settings and the estimate, a CPU run that cannot fit in
    the memory available now (runs on an accelerator are left to its own allocator's error)."""
    estimate = footprint(cfg)
    available = available_bytes() if available is None else available
    if cfg.accelerator in ("cpu", "auto") and available is not None and estimate.bytes > available:
        which = "training" if estimate.train_bytes >= estimate.test_bytes else "testing"
        batch = (f"batch_size={cfg.batch_size} and sequences of up to {estimate.steps} steps"
                 if which == "training" else f"test_batch_size={cfg.test_batch_size}")
        raise ConfigError(
            f"{cfg.model} with {estimate.dominant}, {batch} needs at least about "
            f"{human(estimate.bytes)} for {which}; this machine has {human(available)} available: "
            f"lower the model's sizes (-m), the batch size or the task's lengths (-t)"
        )
    return estimate
