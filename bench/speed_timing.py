"""Timing helpers for `ntmbench bench`: the training steps it times and a side-by-side timer.

A training step is forward, backward and optimizer step. Steps are timed in rounds: every round
runs a block of each step back to back, so all of them see the same machine load; a ratio is taken
within each round and the median over rounds is reported.

On a CPU the clock is the calling thread's CPU time (`time.thread_time`): with one thread every op
runs on it, and other processes on the machine then lengthen the wall time but hardly the CPU
time. Wall time is recorded too. On a GPU the clock is wall time, synchronized at block ends only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from datamodules.registry import build_task
from models.metrics import sequence_costs
from models.registry import build_model

Step = Callable[[], None]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_batch(batch: int, length: int, device: torch.device, seed: int = 0) -> dict[str, Tensor]:
    """One copy batch of `length` (T = 2 length + 1), as the harness trains on it."""
    generator = torch.Generator().manual_seed(seed)
    data = build_task("copy").sample(generator, batch, length=length)
    return {k: v.to(device) for k, v in data.items()}


def model_step(net: nn.Module, batch: dict[str, Tensor], lr: float = 1e-4) -> Step:
    """A training step of `net` on `batch`: the harness's loss (nats per sequence), Adam."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def step() -> None:
        loss = sequence_costs(net(batch["inputs"]), batch["targets"], batch["mask"]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def ntm_step(model: str, options: dict, batch: dict[str, Tensor], device: torch.device,
             seed: int = 0) -> Step:
    torch.manual_seed(seed)
    inputs, targets = batch["inputs"], batch["targets"]
    net = build_model(model, inputs.shape[-1], targets.shape[-1], **options).to(device)
    return model_step(net, batch)


def controller_step(input_size: int, size: int, batch: int, steps: int,
                    device: torch.device) -> Step:
    """The NTM's bare controller: the same nn.LSTMCell (input = external input + one read vector)
    run as a time loop over `steps` with `batch`, a minimal loss on its outputs, and Adam."""
    torch.manual_seed(0)
    cell = nn.LSTMCell(input_size, size).to(device)
    optimizer = torch.optim.Adam(cell.parameters(), lr=1e-4)
    x = torch.rand(batch, steps, input_size, device=device)

    def step() -> None:
        h = c = x.new_zeros(batch, size)
        outputs = []
        for t in range(steps):
            h, c = cell(x[:, t], (h, c))
            outputs.append(h)
        loss = torch.stack(outputs, 1).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def clocks(device: torch.device) -> Callable[[], tuple[float, float]]:
    """() -> (cpu seconds of this thread, wall seconds); on a GPU both are synchronized wall."""
    if device.type == "cuda":
        def now() -> tuple[float, float]:
            sync(device)
            t = time.perf_counter()
            return t, t
        return now
    return lambda: (time.thread_time(), time.perf_counter())


def calibrate(step: Step, device: torch.device, block_seconds: float) -> int:
    """How many calls of `step` make a block of about `block_seconds` (at least 1)."""
    now = clocks(device)
    start = now()[1]
    step()
    once = max(now()[1] - start, 1e-6)
    return max(1, round(block_seconds / once))


def interleaved(steps: dict[str, Step], device: torch.device, rounds: int,
                block_seconds: float) -> dict[str, dict[str, list[float]]]:
    """Per step name: {"cpu": [...], "wall": [...]} seconds per call, one value per round, all
    steps timed in every round (after one warm-up call each)."""
    now = clocks(device)
    for step in steps.values():
        step()
    calls = {name: calibrate(step, device, block_seconds) for name, step in steps.items()}
    out = {name: {"cpu": [], "wall": []} for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            cpu0, wall0 = now()
            for _ in range(calls[name]):
                step()
            cpu1, wall1 = now()
            out[name]["cpu"].append((cpu1 - cpu0) / calls[name])
            out[name]["wall"].append((wall1 - wall0) / calls[name])
    return out


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median over rounds of a[i] / b[i]."""
    return statistics.median(x / y for x, y in zip(a, b))


def first_call_seconds(step: Step, device: torch.device) -> float:
    """Wall seconds of the first call (for a compiled step: compiling plus one step)."""
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def compile_cache_counts() -> dict[str, int]:
    """Inductor's FX graph cache hits and misses so far in this process."""
    try:
        from torch._dynamo.utils import counters  # a private module: absent in some versions
    except ImportError:  # pragma: no cover - older torch
        return {}
    inductor = counters.get("inductor", {})
    return {"cache_hits": int(inductor.get("fxgraph_cache_hit", 0)),
            "cache_misses": int(inductor.get("fxgraph_cache_miss", 0))}
